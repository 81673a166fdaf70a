"""JSON built to break a parser or what runs after it, and bodies made from it: a whole
document of it, or an ordinary body with one value (at any depth) replaced by it."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

# Raw JSON text, spliced in where json.dumps would refuse to write it (or would escape it).
HOSTILE_VALUES: dict[str, str] = {
    # Past the interpreter's recursion limit: RecursionError in any parser that recurses.
    "arrays 5000 deep": "[" * 5000 + "]" * 5000,
    "objects 5000 deep": '{"a":' * 5000 + "1" + "}" * 5000,
    # Parsed by Python, then walked by validators, services, encoders, the database.
    "arrays 300 deep": "[" * 300 + "]" * 300,
    "objects 300 deep": '{"type":' * 300 + "1" + "}" * 300,
    "integer of 30 digits": "9" * 30,
    "negative integer of 30 digits": "-" + "9" * 30,
    "integer of 5000 digits": "9" * 5000,  # past Python's int_max_str_digits
    "float 1e400": "1e400",
    "float of 2000 digits": "0." + "1" * 2000,
    "NaN": "NaN",
    "-Infinity": "-Infinity",
    "lone surrogate": '"\\ud800"',
    "surrogate pair split": '"\\udc00\\ud800"',
    "NUL": '"a\\u0000b"',
    "100k characters": '"' + "x" * 100_000 + '"',
}
# Whole documents: the body itself is the attack.
HOSTILE_DOCUMENTS: dict[str, str] = {
    **HOSTILE_VALUES,
    "unclosed, 200k deep": "[" * 200_000,
    "mixed 3000 deep": '[{"a":' * 3000 + "1" + "}]" * 3000,
}
_MARK = "\u0000hostile\u0000"


def _paths(value: Any, depth: int = 3) -> Iterator[tuple[Any, ...]]:
    """Every place in `value` a value sits, down to `depth` levels."""
    if depth == 0:
        return
    items: Iterable[tuple[Any, Any]]
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return
    for key, item in items:
        yield (key,)
        for rest in _paths(item, depth - 1):
            yield (key, *rest)


def _replaced(base: Any, path: tuple[Any, ...]) -> Any:
    """A copy of `base` with the value at `path` replaced by the mark."""
    if not path:
        return _MARK
    copy: Any = dict(base) if isinstance(base, dict) else list(base)
    head = path[0]
    copy[head] = _replaced(base[head] if len(path) > 1 else None, path[1:])
    return copy


def hostile_bodies(base: Any, keys: Iterable[str] = ()) -> Iterator[tuple[str, str]]:
    """(what, JSON text): every hostile document; then `base` with each value in it, and
    each of `keys` at its top level (optional fields the base leaves out), made hostile."""
    yield from HOSTILE_DOCUMENTS.items()
    places = list(_paths(base)) if isinstance(base, dict | list) else []
    if isinstance(base, dict):
        places += [(key,) for key in keys if key not in base]
    marked = json.dumps(_MARK)
    for path in places:
        template = json.dumps(_replaced(base, path))
        for name, raw in HOSTILE_VALUES.items():
            where = ".".join(map(str, path))
            yield f"{where} = {name}", template.replace(marked, raw)
