"""The relay with an end-to-end stream (docs/live-view.md, "End-to-end live view"): the
init's "e2e" block is checked strictly and reaches the viewers as the camera signed it,
the sealed payloads are forwarded byte for byte (the late viewer's GOP too), and a
malformed block ends the camera's connection. The block is a real one (crypto/live.py)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection

from doorwarden.crypto.keys import RecipientKey, SigningKey, b64d
from doorwarden.crypto.live import DELTA, INIT, KEYFRAME, MAX_RECIPIENTS, LiveOpener, LiveSealer
from tests.functional.live.test_live import Live, close_code, control, hello, live, until_bytes

__all__ = ["live"]  # the fixture, used by name
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:websockets")
MIME = 'video/mp4; codecs="avc1.42c01f"'


async def next_init(viewer: ClientConnection) -> dict[str, object]:
    while True:
        message = await asyncio.wait_for(viewer.recv(), 5)
        if isinstance(message, str) and json.loads(message).get("type") == "init":
            body: dict[str, object] = json.loads(message)
            return body


async def test_the_relay_passes_the_signed_block_and_the_ciphertext_unchanged(live: Live) -> None:
    member, device = RecipientKey.generate(), SigningKey.generate()
    sealer = LiveSealer([member.public], str(live.device), device)
    sealed = [sealer.seal(INIT, b"ftyp-and-moov"), sealer.seal(KEYFRAME, b"moof-1")]
    sealed.append(sealer.seal(DELTA, b"moof-2"))
    async with live.agent() as agent:
        await hello(agent)
        async with live.watch("owner") as owner:
            assert await control(agent) == {"type": "start", "camera": "front"}
            init = {"type": "init", "camera": "front", "mime": MIME, "width": 320,
                    "height": 180, "audio": False, "e2e": sealer.block}  # fmt: skip
            await agent.send(json.dumps(init))
            await agent.send(bytes([0, 0]) + sealed[0])
            await agent.send(bytes([1, 0]) + sealed[1])
            await agent.send(bytes([2, 0]) + sealed[2])
            seen = await next_init(owner)
            assert seen["e2e"] == sealer.block and seen["mime"] == MIME
            assert [await until_bytes(owner) for _ in range(3)] == sealed
            async with live.watch("shared") as shared:  # from the channel's cache
                assert (await next_init(shared))["e2e"] == sealer.block
                got = [await until_bytes(shared) for _ in range(3)]
                assert got == sealed
            opener = LiveOpener(seen["e2e"], device.public, member)
            assert opener.open(INIT, got[0]) == b"ftyp-and-moov"
            assert opener.open(KEYFRAME, got[1]) == b"moof-1"


async def test_an_init_with_a_large_household_fits(live: Live) -> None:
    members = [RecipientKey.generate().public for _ in range(MAX_RECIPIENTS)]
    sealer = LiveSealer(members, str(live.device), SigningKey.generate())
    async with live.agent() as agent:
        await hello(agent)
        async with live.watch("owner") as owner:
            await control(agent)
            init = {"type": "init", "camera": "front", "mime": MIME, "e2e": sealer.block}
            assert len(json.dumps(init)) > 4096  # beyond the other messages' limit
            await agent.send(json.dumps(init))
            await agent.send(bytes([0, 0]) + sealer.seal(INIT, b"init"))
            assert (await next_init(owner))["e2e"] == sealer.block


@pytest.mark.parametrize(
    "change",
    [
        lambda b: {**b, "signature": "short"},
        lambda b: {**b, "recipients": []},
        lambda b: {**b, "extra": "field"},
        lambda b: {**b, "recipients": [{**b["recipients"][0], "wrapped": "x"}]},
        lambda b: "not an object",
    ],
)
async def test_a_malformed_e2e_block_closes_the_camera_s_connection(
    live: Live, change: Callable[[dict[str, Any]], object]
) -> None:
    sealer = LiveSealer([RecipientKey.generate().public], "dev", SigningKey.generate())
    async with live.agent() as agent:
        await hello(agent)
        init = {"type": "init", "camera": "front", "mime": MIME, "e2e": change(sealer.block)}
        await agent.send(json.dumps(init))
        assert await close_code(agent) == 1008


@pytest.mark.parametrize("who", ["foreign", "officer", "operator", "auditor"])
async def test_only_members_read_the_camera_s_key_for_live(live: Live, who: str) -> None:
    path = live.viewer_path() + "/key"
    async with live.signed_in("shared") as member:
        response = await member.get(path)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["device_id"] == str(live.device) and body["key_page"].startswith("/")
        assert len(b64d(body["public_key"], what="device key", length=32)) == 32
        other_household = await member.get(live.viewer_path(uuid.uuid4()) + "/key")
        assert other_household.status_code in (403, 404)
    async with live.signed_in(who) as outsider:
        assert (await outsider.get(path)).status_code == 403
