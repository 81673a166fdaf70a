"""Reading JSON that someone else wrote, within bounds checked before the parser runs.

Python's json parser recurses once per level of nesting: `[[[[...` a few thousand deep
raises RecursionError, which is not a ValueError and so slipped past every `except
ValueError` that guarded a parse (a 500 where the answer is "malformed"). And it reads
numbers no other JSON reader agrees on: integers beyond 2**53, 1e999 as infinity, NaN.
So the nesting is measured first, on the text, without recursion; numbers outside what
every reader reads exactly are refused while parsing. Everything wrong is MalformedError.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from doorwarden.crypto.errors import MalformedError

MAX_DEPTH = 32  # arrays and objects inside one another; our documents need under ten
MAX_SAFE_INTEGER = 2**53  # the largest every JSON reader (JavaScript's included) reads exactly

# A JSON string (escapes included). Outside strings valid JSON has no quote, so removing
# every match leaves the structure; brackets inside strings then no longer count.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def nested_deeper_than(text: str, max_depth: int) -> bool:
    """Whether `text` nests arrays and objects more than `max_depth` levels, or closes
    more than it opens. One loop over the brackets alone, stopping at the first level
    too deep: about 0.1 s for a megabyte of nothing but brackets."""
    depth = 0
    for bracket in _NOT_BRACKET.sub("", _STRING.sub("", text)):
        if bracket in "[{":
            depth += 1
            if depth > max_depth:
                return True
        else:
            depth -= 1
            if depth < 0:
                return True
    return False  # unclosed or mismatched brackets are the parser's to refuse: it can


def body_nested_deeper_than(body: bytes, max_depth: int = MAX_DEPTH) -> bool:
    """As nested_deeper_than, for a request body in any encoding json.loads reads (it
    guesses UTF-16 and -32 too): measured on the text the parser would see. Bytes that
    do not decode are not JSON; the parser refuses them without recursing."""
    try:
        text = body.decode(json.detect_encoding(body), "surrogatepass")
    except UnicodeDecodeError:
        return False
    return nested_deeper_than(text, max_depth)


def _integer(text: str) -> int:
    # Refused by length before int() runs: converting 4,000 digits is itself work.
    if len(text.lstrip("-")) > len(str(MAX_SAFE_INTEGER)):
        raise MalformedError(f"an integer of {len(text)} digits is out of range")
    value = int(text)
    if abs(value) > MAX_SAFE_INTEGER:
        raise MalformedError("an integer is out of range (beyond 2**53)")
    return value


def _real(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise MalformedError(f"a number is out of range ({text[:20]})")
    return value


def _constant(name: str) -> Any:
    raise MalformedError(f"{name} is not a JSON value")


def loads(data: bytes | str, *, max_bytes: int, max_depth: int = MAX_DEPTH) -> Any:
    """The value of the JSON document `data` (UTF-8 when bytes), or MalformedError."""
    size = len(data) if isinstance(data, bytes) else len(data.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise MalformedError(f"larger than {max_bytes} bytes")
    if isinstance(data, bytes):
        try:
            # Decoded here, not by json (which guesses UTF-16 and -32 too): the nesting
            # is measured on the very text that is then parsed.
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedError("not UTF-8") from None
    if nested_deeper_than(data, max_depth):
        raise MalformedError(f"nested deeper than {max_depth} levels")
    try:
        return json.loads(data, parse_int=_integer, parse_float=_real, parse_constant=_constant)
    except ValueError as exc:  # json.JSONDecodeError is one
        raise MalformedError(f"not JSON ({exc})") from None
