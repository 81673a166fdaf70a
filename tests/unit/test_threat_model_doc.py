"""docs/threat-model.md names, for every promise, the test that proves it: each named
test file and test function must exist, so the page cannot point at a test that was
renamed or removed."""

from __future__ import annotations

import ast
import re

from tests.paths import DOCS, ROOT

REFERENCE = re.compile(r"`(tests/[\w/]+\.py)(?:::(\w+))?`")
SHORT = re.compile(r"`::(\w+)`")


def _tests_in(path: str) -> set[str]:
    tree = ast.parse((ROOT / path).read_text())
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    }


def test_every_test_the_threat_model_names_exists() -> None:
    text = (DOCS / "threat-model.md").read_text()
    missing: list[str] = []
    named = 0
    for paragraph in text.split("\n\n"):
        last_file: str | None = None
        for match in re.finditer(f"{REFERENCE.pattern}|{SHORT.pattern}", paragraph):
            path, name, short = match.group(1), match.group(2), match.group(3)
            if path:
                last_file = path
                if not (ROOT / path).is_file():
                    missing.append(path)
                    continue
            else:
                path, name = last_file, short  # `::name` refers to the file just named
            if name and path:
                named += 1
                if name not in _tests_in(path):
                    missing.append(f"{path}::{name}")
    assert named >= 10  # the page names its tests
    assert missing == []
