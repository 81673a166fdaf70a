"""DESIGN.md rule 1 as the user meets it, and the import contracts that keep every rule.

The agent's and the verifiers' commands run in a fresh interpreter and must load none of
the server's libraries: a camera box (`pip install "doorwarden[agent]"`) does not have
them (tests/functional/packaging proves that on real installs). The contracts in
pyproject.toml run in `dev.py test`; here each one is shown to bite: a copy of the tree
gets one violating import, and `lint-imports` must name it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.paths import ROOT

SERVER_LIBRARIES = ("sqlalchemy", "fastapi", "alembic", "starlette", "uvicorn")

# Runs `python -m doorwarden ARGS` as the console script does, then (at exit, after Typer's
# sys.exit) prints which of the server's libraries were loaded, on a line of its own.
PROBE = f"""
import atexit, json, runpy, sys
def report():
    loaded = sorted(m for m in {SERVER_LIBRARIES!r} if m in sys.modules)
    sys.stdout.write("\\nLOADED " + json.dumps(loaded) + "\\n")
atexit.register(report)
sys.argv = ["doorwarden", *sys.argv[1:]]
runpy.run_module("doorwarden", run_name="__main__", alter_sys=True)
"""


def _run_probe(*args: str, cwd: Path) -> tuple[int, str, list[str]]:
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=cwd,
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("LOADED ")]
    assert lines, result.stdout + result.stderr
    return result.returncode, result.stdout + result.stderr, json.loads(lines[-1][7:])


def test_importing_the_agent_commands_loads_no_server_library() -> None:
    code = (
        "import json, sys\n"
        "import doorwarden.cli.agent\n"
        f"print(json.dumps([m for m in {SERVER_LIBRARIES!r} if m in sys.modules]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_importing_the_command_line_loads_no_server_library() -> None:
    """The whole app, as `doorwarden` builds it before it knows the command."""
    code = (
        "import json, sys\n"
        "import doorwarden.cli.app\n"
        f"print(json.dumps([m for m in {SERVER_LIBRARIES!r} if m in sys.modules]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


SYNTHETIC = (
    "spool_dir: spool\nstate_dir: state\ncameras:\n  - name: synth\n"
    "    source: {kind: synthetic, scene: object, duration_s: 4, enter_at_s: 1}\n"
    "    record: {pre_roll_s: 0, post_roll_s: 1, min_clip_s: 1, cooldown_s: 0}\n"
    "    detect: {kind: none}\n"
)


@pytest.mark.parametrize(
    "args",
    [
        ["agent", "--help"],
        ["agent", "run", "--help"],
        ["agent", "run", "--config", "agent.yaml", "--once"],
        ["agent", "check-config", "agent.yaml"],
        ["agent", "status", "--config", "agent.yaml"],
        ["verify", "--help"],
        ["verify", "spool"],
        ["verify-log", "--help"],
        ["keys", "new", "--out", "member.key"],
    ],
    ids=" ".join,
)
def test_agent_and_verifier_commands_load_no_server_library(
    args: list[str], tmp_path: Path
) -> None:
    (tmp_path / "agent.yaml").write_text(SYNTHETIC)
    (tmp_path / "spool").mkdir()
    code, output, loaded = _run_probe(*args, cwd=tmp_path)
    # `verify` on a folder without clips fails its check (1); everything else succeeds.
    assert code == (1 if args == ["verify", "spool"] else 0), output
    assert loaded == [], output


def _lint_imports() -> str:
    found = Path(sys.executable).with_name("lint-imports")
    script = str(found) if found.exists() else shutil.which("lint-imports")
    assert script, "import-linter is a development dependency (pyproject.toml, dev)"
    return script


# (contract id, the module given a violating import in a copy of the tree, what it imports)
VIOLATIONS = [
    ("agent-apart", "agent/probe.py", "doorwarden.db"),
    ("agent-apart", "verify/probe.py", "sqlalchemy"),
    ("kit-on-core", "formats/probe.py", "numpy"),
    ("server-apart", "clips/probe.py", "doorwarden.agent.capture.sources"),
    ("layers", "audit/probe.py", "doorwarden.legal.models"),
    ("layers", "roles.py", "doorwarden.accounts.models"),  # the kernel
    ("routers-apart", "live/probe/views.py", "doorwarden.clips.router"),
    ("services-below-http", "households/probe.py", "doorwarden.deps"),
    ("services-below-http", "clips/probe.py", "doorwarden.clips.views"),
]


@pytest.fixture(scope="module")
def tree_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """src/doorwarden and pyproject.toml, copied once; each test adds to its own copy."""
    base = tmp_path_factory.mktemp("tree")
    shutil.copytree(
        ROOT / "src" / "doorwarden",
        base / "src" / "doorwarden",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    shutil.copy(ROOT / "pyproject.toml", base / "pyproject.toml")
    return base


@pytest.mark.parametrize(("contract", "module", "imported"), VIOLATIONS)
def test_each_contract_refuses_a_violating_import(
    contract: str, module: str, imported: str, tree_copy: Path, tmp_path: Path
) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(tree_copy, tree)
    target = tree / "src" / "doorwarden" / module
    target.parent.mkdir(parents=True, exist_ok=True)
    for folder in target.relative_to(tree / "src").parents[:-1]:
        (tree / "src" / folder / "__init__.py").touch(exist_ok=True)
    with target.open("a") as f:
        f.write(f"\nimport {imported}\n")
    result = subprocess.run(
        [_lint_imports(), "--no-cache", "--no-logo", "--contract", contract],
        cwd=tree,
        # grimp finds `doorwarden` by importing it: the copy, not the installed tree.
        env={**os.environ, "PYTHONPATH": str(tree / "src")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "BROKEN" in output
    importer = "doorwarden." + module.removesuffix(".py").replace("/", ".")
    assert f"{importer} -> {imported}" in " ".join(output.split()), output  # long lines wrap
