"""Bounded JSON reading: nesting measured without recursion before the parser runs,
numbers every reader agrees on, everything wrong a MalformedError (never RecursionError)."""

from __future__ import annotations

import json
import time

import pytest

from doorwarden.crypto.errors import MalformedError
from doorwarden.crypto.strict_json import MAX_SAFE_INTEGER, loads, nested_deeper_than

BIG = 10 * 1024 * 1024


def test_ordinary_documents_read_as_json_does() -> None:
    document = {
        "a": [1, -2, 3.5, True, None, "x"],
        "b": {"c": [[{"d": "e"}]]},
        "unicode": "café ✓",
        "brackets in text": '[[[{{{ "\\"',
    }
    text = json.dumps(document)
    assert loads(text, max_bytes=BIG) == document
    assert loads(text.encode(), max_bytes=BIG) == document
    assert loads(json.dumps(document, ensure_ascii=False).encode(), max_bytes=BIG) == document


@pytest.mark.parametrize("depth", [1, 5, 32])
def test_nesting_up_to_the_limit_is_read(depth: int) -> None:
    assert loads("[" * depth + "]" * depth, max_bytes=BIG, max_depth=32) is not None
    assert loads('{"a":' * depth + "1" + "}" * depth, max_bytes=BIG, max_depth=32)


@pytest.mark.parametrize(
    "text",
    [
        "[" * 33 + "]" * 33,
        '{"a":' * 33 + "1" + "}" * 33,
        "[" * 1_000_000 + "]" * 1_000_000,  # far past the interpreter's recursion limit
        "[" * 1_000_000,  # unclosed
        '[{"a": [' * 20 + "]}]" * 20,  # mixed: 60 levels
        '"' + "[" * 10 + '"' + "[" * 40,  # brackets after a string still count
        "[}",  # unpaired
    ],
)
def test_deeper_or_unpaired_nesting_is_malformed(text: str) -> None:
    with pytest.raises(MalformedError):
        loads(text, max_bytes=BIG, max_depth=32)


def test_brackets_inside_strings_do_not_nest() -> None:
    text = json.dumps(["[" * 10_000, '\\"{{{{', "]]]]"])
    assert not nested_deeper_than(text, 2)
    assert loads(text, max_bytes=BIG, max_depth=2) == ["[" * 10_000, '\\"{{{{', "]]]]"]


def test_an_escaped_quote_does_not_end_a_string() -> None:
    # Were \" taken as the end of the string, the brackets after it would count: the
    # scanner would refuse valid JSON (and, worse, could skip real brackets elsewhere).
    text = '["\\"' + "[" * 50 + '"]'
    assert loads(text, max_bytes=BIG, max_depth=2) == ['"' + "[" * 50]


@pytest.mark.parametrize(
    "text",
    [
        str(MAX_SAFE_INTEGER + 1),
        "-" + str(MAX_SAFE_INTEGER + 1),
        "9" * 5000,  # beyond Python's own int_max_str_digits: was a ValueError, now ours
        "[" + "1" * 4000 + "]",
        "1e400",
        "-1e400",
        "NaN",
        "[Infinity]",
        "-Infinity",
    ],
)
def test_numbers_outside_what_every_reader_reads_are_malformed(text: str) -> None:
    with pytest.raises(MalformedError):
        loads(text, max_bytes=BIG)


def test_the_largest_safe_integers_are_read() -> None:
    assert loads(f"[{MAX_SAFE_INTEGER}, -{MAX_SAFE_INTEGER}, 1.5e300]", max_bytes=BIG) == [
        MAX_SAFE_INTEGER,
        -MAX_SAFE_INTEGER,
        1.5e300,
    ]


@pytest.mark.parametrize(
    "data", [b"", b"not json", b"[1,]", b'{"a" 1}', b"\xff\xfe[\x00]\x00", b'"\xc3"']
)
def test_what_is_not_json_or_not_utf8_is_malformed(data: bytes) -> None:
    with pytest.raises(MalformedError):
        loads(data, max_bytes=BIG)


def test_size_is_bounded_in_bytes_before_anything_is_parsed() -> None:
    with pytest.raises(MalformedError, match="larger than 10 bytes"):
        loads(b"[" + b"1," * 10 + b"1]", max_bytes=10)
    with pytest.raises(MalformedError, match="larger than 10 bytes"):
        loads('"ééééé"', max_bytes=10)  # 7 characters, 12 bytes


def test_measuring_a_megabyte_of_brackets_is_quick() -> None:
    hostile = "[" * (1 << 20)
    started = time.perf_counter()
    with pytest.raises(MalformedError):
        loads(hostile, max_bytes=BIG)
    assert time.perf_counter() - started < 1.0
