"""Canonical JSON: the one byte string a signature covers.

Keys sorted, no whitespace, UTF-8, and no floats at all: float formatting differs between
languages and versions, so a verifier written elsewhere could produce other bytes for the
same manifest. Times and scores are integers (milliseconds, per-mille).
"""

from __future__ import annotations

import json
from typing import Any

from doorwarden.crypto.errors import MalformedError


def _check(value: Any, path: str) -> None:
    if value is None or isinstance(value, bool | str):
        return
    if isinstance(value, int):
        if abs(value) > 2**53:  # beyond what every JSON parser reads exactly
            raise MalformedError(f"{path}: integer out of range")
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check(item, f"{path}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise MalformedError(f"{path}: keys must be strings")
            _check(item, f"{path}.{key}")
        return
    raise MalformedError(f"{path}: {type(value).__name__} is not allowed in canonical JSON")


def canonical_json(value: Any) -> bytes:
    _check(value, "$")
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")
