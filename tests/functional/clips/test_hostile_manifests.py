"""A camera (or whoever holds its device token) sends a manifest built to break the
parser rather than to describe a clip: nested thousands deep, numbers no JSON reader
agrees on, text that has no UTF-8 form. Each is refused with `malformed_manifest`, as
any other manifest that is not one, and nothing is stored."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.factories import Factory, assert_error
from tests.sealed_clips import seal_clip


def _nested(depth: int) -> bytes:
    return b'{"manifest":' * depth + b"{}" + b"}" * depth


def _altered(change: Callable[[dict[str, Any]], None]) -> Callable[[bytes], bytes]:
    """A real signed manifest with one field changed (the signature is checked after the
    structure, so these reach everything the parser and the signature check do)."""

    def alter(manifest: bytes) -> bytes:
        data = json.loads(manifest)
        change(data["manifest"])
        return json.dumps(data).encode()

    return alter


def _set(field: str, value: object) -> Callable[[dict[str, Any]], None]:
    return lambda manifest: manifest.__setitem__(field, value)


def _spliced(field: str, raw: bytes) -> Callable[[bytes], bytes]:
    """The field's value replaced by raw JSON text (what json.dumps will not write)."""

    def splice(manifest: bytes) -> bytes:
        spliced, count = re.subn(
            rb'"%s":\d+' % field.encode(), b'"%s":%s' % (field.encode(), raw), manifest
        )
        assert count == 1
        return spliced

    return splice


HOSTILE: dict[str, Callable[[bytes], bytes]] = {
    "arrays 200k deep": lambda _: b"[" * 200_000 + b"]" * 200_000,
    "objects 50k deep": lambda _: _nested(50_000),
    "unclosed, 500k deep": lambda _: b"[" * 500_000,
    "deep inside a label": _altered(_set("labels", [[[[[[[[["x"]]]]]]]]] * 2)),
    "deep inside a recipient": _altered(
        lambda m: m["recipients"].__setitem__(0, json.loads("[" * 500 + "]" * 500))
    ),
    "size beyond 2**53": _altered(_set("size", 10**100)),
    "sequence of 4000 digits": _altered(_set("sequence", int("9" * 4000))),
    "number of 5000 digits": _spliced("motion_score", b"9" * 5000),
    "float of 1000 digits": _spliced("width", b"1." + b"0" * 1000),
    "Infinity": _spliced("height", b"-Infinity"),
    "lone surrogate in a label": _altered(_set("labels", ["\ud800"])),
    "lone surrogate in the codec": _altered(_set("codec", "h264\udfff")),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
async def test_hostile_manifests_are_malformed_not_a_server_error(
    factory: Factory, name: str
) -> None:
    owner = await factory.user()
    home = await factory.household(owner)
    camera = await factory.camera(owner, home)
    sealed = seal_clip(camera.id, camera.key, camera.recipients, 0, size=10_000)
    body = HOSTILE[name](sealed.manifest)
    refused = await camera.client.put("/api/v1/device/clips/0", content=body)
    assert_error(refused, 422, "malformed_manifest")
    # Nothing was kept: the genuine manifest is then accepted as the first offer.
    offered = await camera.client.put("/api/v1/device/clips/0", content=sealed.manifest)
    assert offered.status_code == 201, offered.text
