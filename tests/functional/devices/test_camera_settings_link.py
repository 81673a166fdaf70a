"""Camera settings over the agent's control connection (docs/camera-settings.md,
docs/live-view.md): on a real server (uvicorn on loopback) with a real WebSocket client
speaking the agent's side of the protocol. Each settings message is checked as the agent
checks it: open_document with the key the pairing gave."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from doorwarden.config import Settings
from doorwarden.crypto.keys import b64d
from doorwarden.crypto.settings_sig import open_document
from doorwarden.formats.camera_settings import FIELDS
from tests.factories import Factory
from tests.functional.live.test_live import Live, live_server

pytestmark = [pytest.mark.db, pytest.mark.filterwarnings("ignore::DeprecationWarning:websockets")]
SQUARE = [[0.1, 0.1], [0.4, 0.1], [0.4, 0.4], [0.1, 0.4]]
JPEG = b"\xff\xd8\xff\xe0" + b"doorwarden-test-picture" * 100 + b"\xff\xd9"


async def text(agent: ClientConnection, timeout_s: float = 10) -> dict[str, Any]:
    message = await asyncio.wait_for(agent.recv(), timeout_s)
    assert isinstance(message, str), message[:40]
    body: dict[str, Any] = json.loads(message)
    return body


async def hello(agent: ClientConnection, cameras: list[str]) -> None:
    await agent.send(json.dumps({"type": "hello", "cameras": cameras, "version": 1}))
    assert (await text(agent))["type"] == "mode"  # always first (docs/modes.md)


def settings_key(live: Live) -> bytes:
    state = httpx.get(
        f"{live.url}/api/v1/device", headers={"authorization": f"Bearer {live.token}"}
    )
    assert state.status_code == 200, state.text
    return b64d(state.json()["settings_key"], what="key", length=32)


def opened(live: Live, message: dict[str, Any]) -> Any:
    assert message["type"] == "settings", message
    document = open_document(settings_key(live), message["document"], message["signature"])
    assert (document.device_id, document.camera) == (str(live.device), message["camera"])
    return document


def paths(live: Live, camera: str = "front") -> tuple[str, str]:
    base = f"/api/v1/households/{live.household}/devices/{live.device}/cameras/{camera}"
    return base + "/settings", base + "/snapshot"


async def until(check: Any, what: str, timeout_s: float = 10) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_a_change_reaches_the_connected_agent_signed_and_its_report_is_shown(
    settings: Settings, factory: Factory
) -> None:
    async with (
        live_server(settings, factory) as live,
        live.agent() as agent,
        live.signed_in("owner") as owner,
    ):
        await hello(agent, ["front", "back"])
        listed = await owner.get(
            f"/api/v1/households/{live.household}/devices/{live.device}/cameras"
        )
        assert listed.json() == {"cameras": ["front", "back"], "connected": True}
        settings_path, _ = paths(live)
        assert_unknown = await owner.get(paths(live, "porch")[0])
        assert assert_unknown.status_code == 404  # the agent announced no such camera

        started = time.monotonic()
        change = {"privacy_zones": [SQUARE], "motion.sensitivity": 0.25}
        response = await owner.put(settings_path, json={"version": 0, "settings": change})
        assert response.status_code == 200, response.text
        assert response.json()["connected"] is True
        document = opened(live, await text(agent))
        assert time.monotonic() - started < 1.0
        assert (document.version, document.settings) == (1, change)

        # The agent reports what it applied: every field, and where each came from.
        effective = dict.fromkeys(FIELDS) | change
        sources = dict.fromkeys(FIELDS, "file") | dict.fromkeys(change, "web")
        report = {"type": "settings_applied", "camera": "front", "version": 1, "ok": True,
                  "error": None, "effective": effective, "sources": sources}  # fmt: skip
        await agent.send(json.dumps(report))

        async def applied() -> Any:
            return (await owner.get(settings_path)).json()["applied"]

        shown = await until(applied, "the agent's report")
        assert (shown["version"], shown["ok"], shown["error"]) == (1, True, None)
        assert shown["effective"]["privacy_zones"] == [SQUARE]
        assert shown["sources"]["motion.sensitivity"] == "web"

        # A replayed older document refused by the agent changes nothing it applied.
        replay = report | {"ok": False, "error": "version 1 is not newer than applied 1"}
        await agent.send(json.dumps(replay))
        # A config the agent cannot use: shown with its error.
        second = await owner.put(
            settings_path, json={"version": 1, "settings": {"motion.min_area": 0.5}}
        )
        assert opened(live, await text(agent)).version == 2
        refused = report | {"version": 2, "ok": False, "error": "motion.min_area: too large"}
        await agent.send(json.dumps(refused))

        async def error_shown() -> Any:
            body = (await owner.get(settings_path)).json()["applied"]
            return body if body and body["version"] == 2 else None

        shown = await until(error_shown, "the agent's refusal")
        assert (shown["ok"], shown["error"]) == (False, "motion.min_area: too large")
        assert second.json()["version"] == 2

        # A report larger than other control messages (polygons) is taken.
        polygon = [[i / 100, i / 100] for i in range(64)]
        big = report | {"version": 2, "effective": effective | {"motion.zones": [polygon] * 16}}
        assert 4096 < len(json.dumps(big)) < 64 * 1024
        await agent.send(json.dumps(big))

        async def big_shown() -> Any:
            body = (await owner.get(settings_path)).json()["applied"]
            return body if body["ok"] else None

        assert len((await until(big_shown, "the big report"))["effective"]["motion.zones"]) == 16
        # Reports the server cannot use are ignored, and do not cut the link.
        await agent.send(json.dumps(report | {"camera": "porch"}))  # not in its hello
        await agent.send(json.dumps(report | {"version": "2"}))  # the wrong type
        await agent.send(json.dumps({"type": "settings_applied"}))
        # The link is still up: a reset reaches it too.
        reset = await owner.delete(settings_path)
        assert reset.status_code == 200, reset.text
        document = opened(live, await text(agent))
        assert (document.version, document.settings) == (3, {})
        assert (await owner.get(settings_path)).json()["applied"]["version"] == 2
        # Any other message above 4 KiB still closes it (docs/live-view.md).
        await agent.send(json.dumps({"type": "error", "camera": "front", "message": "x" * 5000}))
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(agent.recv(), 5)


async def test_settings_changed_while_the_agent_was_away_reach_it_when_it_connects(
    settings: Settings, factory: Factory
) -> None:
    async with live_server(settings, factory) as live, live.signed_in("owner") as owner:
        front, _ = paths(live)
        back, _ = paths(live, "back")
        for path, change in (
            (front, {"detection.enabled": False}),
            (back, {"detect.person": True}),
        ):
            response = await owner.put(path, json={"version": 0, "settings": change})
            assert response.status_code == 200, response.text
            assert response.json()["connected"] is False
        await owner.put(front, json={"version": 1, "settings": {"record.post_roll_s": 5.0}})
        async with live.agent() as agent:
            await hello(agent, ["front", "back"])  # the mode first
            received = {}
            for _ in range(2):
                document = opened(live, await text(agent))
                received[document.camera] = (document.version, document.settings)
            assert received == {
                "back": (1, {"detect.person": True}),
                "front": (2, {"record.post_roll_s": 5.0}),
            }
            # Nothing else is queued for it.
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(agent.recv(), 0.3)
        # A camera of another household never hears this one's settings.
        async with live.signed_in("foreign") as client:
            other = uuid.UUID((await client.get("/api/v1/households")).json()[0]["id"])
        camera = await factory.camera(live.people["foreign"], other)
        token = camera.client.headers["authorization"].removeprefix("Bearer ")
        await camera.client.aclose()
        async with live.agent(token) as theirs:
            await hello(theirs, ["front"])
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(theirs.recv(), 0.3)


async def answer_snapshot(agent: ClientConnection, reply: Any, *, index: int = 0) -> dict[str, Any]:
    ask = await text(agent)
    assert ask["type"] == "snapshot" and len(ask["id"]) == 32, ask
    if reply is None:
        return ask
    if isinstance(reply, bytes):
        await agent.send(bytes([0x20, index]) + bytes.fromhex(ask["id"]) + reply)
    else:
        error = {"type": "snapshot_error", "camera": ask["camera"], "id": ask["id"],
                 "message": reply}  # fmt: skip
        await agent.send(json.dumps(error))
    return ask


async def test_a_snapshot_comes_fresh_from_the_agent_and_is_never_kept(
    settings: Settings, factory: Factory
) -> None:
    async with (
        live_server(settings, factory) as live,
        live.agent() as agent,
        live.signed_in("owner") as owner,
    ):
        await hello(agent, ["front", "back"])
        _, front = paths(live)
        _, back = paths(live, "back")

        async def take(path: str, reply: Any, index: int = 0) -> httpx.Response:
            asked = asyncio.ensure_future(owner.post(path, timeout=15))
            ask = await answer_snapshot(agent, reply, index=index)
            assert ask["camera"] == path.rsplit("/", 2)[-2]
            return await asked

        got = await take(front, JPEG)
        assert got.status_code == 200, got.text
        assert got.headers["content-type"] == "image/jpeg"
        assert got.headers["cache-control"] == "no-store"
        assert got.content == JPEG
        assert (await take(back, JPEG, index=1)).content == JPEG

        failed = await take(front, "no frame decoded yet")
        assert failed.status_code == 502 and failed.json()["error"]["code"] == "snapshot_failed"
        assert "no frame decoded yet" in failed.json()["error"]["message"]
        not_jpeg = await take(front, b"\x89PNG\r\n\x1a\n" + b"x" * 100)
        assert not_jpeg.status_code == 502
        other_camera = await take(front, JPEG, index=1)  # back's picture for front
        assert other_camera.status_code == 502
        too_big = await take(front, JPEG[:4] + b"\x00" * (2 * 1024 * 1024))
        assert too_big.status_code == 502

        started = time.monotonic()
        silent = await take(front, None)
        assert silent.status_code == 504, silent.text
        assert silent.json()["error"]["code"] == "snapshot_timeout"
        assert 4.5 < time.monotonic() - started < 8
        # Its late answer is dropped; the link stays up and the next one works.
        await agent.send(bytes([0x20, 0]) + uuid.uuid4().bytes + JPEG)
        assert (await take(front, JPEG)).status_code == 200

        unknown = await owner.post(paths(live, "porch")[1])
        assert unknown.status_code == 409

        events = (await owner.get(f"/api/v1/households/{live.household}/audit-events")).json()
        snaps = [e for e in events if e["tag"] == "camera:snapshot"]
        assert len(snaps) == 3  # each picture seen, and only those
        assert {s["extra"]["camera"] for s in snaps} == {"front", "back"}
        assert all(s["extra"]["bytes"] == len(JPEG) for s in snaps)

        # Shared members, like staff, get no picture (test_camera_settings_api.py: all).
        async with live.signed_in("shared") as shared:
            assert (await shared.post(front)).status_code == 403
