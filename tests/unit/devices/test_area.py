"""devices/area.py's conversion of stored ids: the UUIDs it makes from SQLite's 32
hex digits are the same objects uuid.UUID makes, in every way callers use them."""

from __future__ import annotations

import copy
import pickle
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from doorwarden.devices.area import _uuid


@given(st.uuids(version=4) | st.uuids())
def test_a_stored_id_becomes_an_equal_uuid(value: uuid.UUID) -> None:
    made = _uuid(value.hex)
    assert type(made) is uuid.UUID
    assert made == value and hash(made) == hash(value)
    assert (str(made), made.hex, made.int, made.bytes) == (
        str(value), value.hex, value.int, value.bytes,
    )  # fmt: skip
    assert (made.version, made.variant, made.is_safe) == (
        value.version, value.variant, uuid.SafeUUID.unknown,
    )  # fmt: skip
    assert pickle.loads(pickle.dumps(made)) == value  # noqa: S301 - our own bytes
    assert copy.deepcopy(made) == value
    assert sorted([made, uuid.UUID(int=0), uuid.UUID(int=2**128 - 1)])[1] == value
    with pytest.raises(TypeError, match="immutable"):  # as any UUID
        made.int = 1  # type: ignore[misc]


def test_a_driver_uuid_is_kept_and_anything_else_refused() -> None:
    value = uuid.uuid4()
    assert _uuid(value) is value
    for bad in ("", "abc", value.hex[:-1], value.hex + "0", str(value), "z" * 32):
        with pytest.raises(ValueError, match=r"not a stored UUID|invalid literal"):
            _uuid(bad)
