"""Object keys: how they are built and the one function that decides which are allowed.

Keys look like `households/<uuid>/devices/<uuid>/2026/11/25/000000000042.clip.dws`: the
household first, so one household's objects share a prefix (listing, export, deletion
on account closure, a per-household lifecycle rule on S3), then the device and the UTC
day, so no directory grows without bound.

Validation is an allow-list, not a deny-list: a key is slash-separated segments of ASCII
letters, digits, `_`, `-` and `.`, none empty, none starting with `.`. That rules out
`..`, absolute paths, backslashes, NUL, and every other way a key could name a file
outside the local root, and keeps keys identical on a file system and S3. Segments that
start with `.` are reserved for the store's own temporary files.
"""

from __future__ import annotations

import re
import uuid
from datetime import date

from doorwarden.storage.base import InvalidKey

MAX_KEY_LENGTH = 1024  # S3's limit, in bytes; keys are ASCII, so also in characters
MAX_SEGMENT_LENGTH = 255  # NAME_MAX on Linux file systems
_SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")


def _shown(key: str) -> str:
    # Enough of a refused key to recognise it, without echoing megabytes into a log.
    return repr(key if len(key) <= 80 else key[:80] + "...")


def validate_key(key: str) -> str:
    """Return `key` unchanged if it is allowed, else raise `InvalidKey` saying why."""
    if not isinstance(key, str):
        raise InvalidKey(f"an object key must be a string, not {type(key).__name__}")
    reason = _problem(key)
    if reason is not None:
        raise InvalidKey(f"invalid object key {_shown(key)}: {reason}")
    return key


def validate_prefix(prefix: str) -> str:
    """Check a list prefix (whole segments, optional trailing "/"); return it without
    the trailing "/". The empty prefix (everything) is allowed."""
    if not isinstance(prefix, str):
        raise InvalidKey(f"a key prefix must be a string, not {type(prefix).__name__}")
    trimmed = prefix.removesuffix("/")
    if prefix == "":
        return ""
    reason = _problem(trimmed)
    if reason is not None:
        raise InvalidKey(f"invalid key prefix {_shown(prefix)}: {reason}")
    return trimmed


def _problem(key: str) -> str | None:
    # The specific checks come first so the message names the actual mistake.
    if key == "":
        return "it is empty"
    if len(key) > MAX_KEY_LENGTH:
        return f"it is {len(key)} characters long; the limit is {MAX_KEY_LENGTH}"
    if "\x00" in key:
        return "it contains a NUL character"
    if "\\" in key:
        return "it contains a backslash"
    if key.startswith("/"):
        return "it is absolute (starts with '/')"
    for segment in key.split("/"):
        if segment == "":
            return "it has an empty segment ('//' or a trailing '/')"
        if segment in (".", ".."):
            return f"it has a {segment!r} segment"
        if segment.startswith("."):
            return f"segment {segment!r} starts with '.', which is reserved for the store"
        if len(segment) > MAX_SEGMENT_LENGTH:
            return f"a segment is longer than {MAX_SEGMENT_LENGTH} characters"
        if not _SEGMENT.fullmatch(segment):
            return f"segment {_shown(segment)} has characters other than A-Z a-z 0-9 _ - ."
    return None


def object_key(household_id: uuid.UUID, device_id: uuid.UUID, day: date, name: str) -> str:
    """The key of object `name` recorded by `device_id` of `household_id` on UTC `day`.

    `name` is a single segment, e.g. "000000000042.clip.dws" (docs/clip-pipeline.md).
    """
    if not isinstance(household_id, uuid.UUID) or not isinstance(device_id, uuid.UUID):
        raise InvalidKey("household_id and device_id must be UUIDs")
    if "/" in name:
        raise InvalidKey(f"object name {_shown(name)} must be a single segment (no '/')")
    return validate_key(f"households/{household_id}/devices/{device_id}/{day:%Y/%m/%d}/{name}")
