"""Key building and the allow-list every store method applies first."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest

from doorwarden.storage import (
    MAX_KEY_LENGTH,
    InvalidKey,
    StorageError,
    object_key,
    validate_key,
    validate_prefix,
)

HOUSEHOLD = uuid.UUID("0b5e1d0c-8c1b-4f7e-9a57-1d2a3b4c5d6e")
DEVICE = uuid.UUID("9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a")


def test_object_key_layout() -> None:
    key = object_key(HOUSEHOLD, DEVICE, date(2026, 11, 5), "000000000042.clip.dws")
    assert key == (
        "households/0b5e1d0c-8c1b-4f7e-9a57-1d2a3b4c5d6e/"
        "devices/9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a/2026/11/05/000000000042.clip.dws"
    )
    assert validate_key(key) == key


def test_object_key_takes_the_date_of_a_datetime() -> None:
    moment = datetime(2026, 11, 25, 23, 59, tzinfo=UTC)
    assert object_key(HOUSEHOLD, DEVICE, moment, "t").endswith("/2026/11/25/t")


@pytest.mark.parametrize("name", ["a/b", "../x", "", ".tmp-x", "x\x00"])
def test_object_key_refuses_a_bad_name(name: str) -> None:
    with pytest.raises(InvalidKey):
        object_key(HOUSEHOLD, DEVICE, date(2026, 11, 25), name)


def test_object_key_wants_uuids() -> None:
    with pytest.raises(InvalidKey):
        object_key("../../etc", DEVICE, date(2026, 11, 25), "x")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "key",
    ["a", "a/b", "A-Z_0.9/x.y.z", "households/h/devices/d/2026/11/25/000000000001.thumb.dws"],
)
def test_valid_keys(key: str) -> None:
    assert validate_key(key) == key


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("", "empty"),
        ("../x", "'..' segment"),
        ("a/..", "'..' segment"),
        ("a/./b", "'.' segment"),
        ("/etc/passwd", "absolute"),
        ("a//b", "empty segment"),
        ("a/", "empty segment"),
        ("a\\b", "backslash"),
        ("a\x00b", "NUL"),
        ("x" * (MAX_KEY_LENGTH + 1), "limit is 1024"),
        ("a/" + "x" * 256, "longer than 255"),
        (".tmp-1", "reserved"),
        ("a b", "characters other than"),
        ("a/b\n", "characters other than"),
        ("caf\u00e9", "characters other than"),
    ],
)
def test_invalid_keys(key: str, reason: str) -> None:
    with pytest.raises(InvalidKey, match=reason) as caught:
        validate_key(key)
    assert len(str(caught.value)) < 300  # a 2000-character key is not echoed whole


def test_non_string_key() -> None:
    with pytest.raises(InvalidKey):
        validate_key(b"a/b")  # type: ignore[arg-type]


def test_invalid_key_is_a_value_error_and_a_storage_error() -> None:
    assert issubclass(InvalidKey, ValueError)
    assert issubclass(InvalidKey, StorageError)


def test_longest_key_is_allowed() -> None:
    key = "/".join(["x" * 255] * 4) + "/" + "y" * (MAX_KEY_LENGTH - 1024)
    key = key[:MAX_KEY_LENGTH].rstrip("/")
    assert validate_key(key) == key


@pytest.mark.parametrize(
    ("prefix", "trimmed"), [("", ""), ("a", "a"), ("a/", "a"), ("a/b/", "a/b"), ("h1", "h1")]
)
def test_valid_prefixes(prefix: str, trimmed: str) -> None:
    assert validate_prefix(prefix) == trimmed


@pytest.mark.parametrize("prefix", ["/", "//", "a//", "../", "/a", "a\\", ".tmp-", "a/../b/"])
def test_invalid_prefixes(prefix: str) -> None:
    with pytest.raises(InvalidKey):
        validate_prefix(prefix)
