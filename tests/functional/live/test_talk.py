"""Two-way talk on a real server (uvicorn on loopback) with real WebSocket clients: a
viewer's talk messages, relayed to an agent played by a WebSocket client that speaks the
protocol of docs/talk.md. The relay forwards audio as opaque bytes, so what matters is
which bytes reach whom, and what ends a talk. The browser's side (microphone, Opus) is
tested in chromium in tests/e2e/test_talk.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus

from doorwarden import policy
from doorwarden.config import Settings
from doorwarden.live import talk as talk_module
from doorwarden.policy import Action
from tests.factories import Factory
from tests.functional.live.test_live import (
    Live,
    fragment,
    hello,
    live_server,
    stream_init,
    until_bytes,
)

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:websockets")

START_OPUS = json.dumps({"type": "talk", "action": "start", "codec": "opus"})
START_WEBM = json.dumps({"type": "talk", "action": "start", "codec": "webm"})
STOP = json.dumps({"type": "talk", "action": "stop"})


@pytest.fixture
async def live(settings: Settings, factory: Factory) -> AsyncIterator[Live]:
    async with live_server(settings, factory) as server:
        yield server


async def agent_says(agent: ClientConnection, kind: str) -> dict[str, Any]:
    """The agent's next control message of type `kind` (start/stop for video are skipped)."""
    while True:
        message = await asyncio.wait_for(agent.recv(), 10)
        if isinstance(message, str) and (body := json.loads(message))["type"] == kind:
            return dict(body)


async def agent_audio(agent: ClientConnection) -> bytes:
    while True:
        message = await asyncio.wait_for(agent.recv(), 10)
        if isinstance(message, bytes):
            return message


async def talk_state(viewer: ClientConnection) -> dict[str, Any]:
    """The viewer's next talk message (video and stream states are skipped)."""
    while True:
        message = await asyncio.wait_for(viewer.recv(), 10)
        if isinstance(message, str) and (body := json.loads(message))["type"] == "talk":
            return dict(body)


async def closed_with(ws: ClientConnection) -> tuple[int, str]:
    try:
        while True:
            await asyncio.wait_for(ws.recv(), 10)
    except ConnectionClosed as exc:
        return (exc.rcvd.code, exc.rcvd.reason) if exc.rcvd is not None else (-1, "")


async def open_talk(
    agent: ClientConnection, viewer: ClientConnection, start: str = START_OPUS
) -> dict[str, Any]:
    """Start a talk and have the agent open it; the agent's talk_start."""
    await viewer.send(start)
    assert await talk_state(viewer) == {"type": "talk", "state": "connecting", "message": None}
    started = await agent_says(agent, "talk_start")
    await agent.send(json.dumps({**started, "type": "talk_state", "state": "open"}))
    assert (await talk_state(viewer))["state"] == "open"
    return started


async def streaming(agent: ClientConnection, viewer: ClientConnection) -> None:
    """The camera streams and `viewer` receives it."""
    await stream_init(agent)
    await agent.send(fragment(1, key=True))
    assert await until_bytes(viewer) == b"ftyp-and-moov"
    assert await until_bytes(viewer) == b"fragment-1"


async def still_streams(agent: ClientConnection, viewer: ClientConnection, n: int) -> None:
    await agent.send(fragment(n, key=False))
    assert await until_bytes(viewer) == f"fragment-{n}".encode()


def audits(live: Live, tag: str, count: int = 1) -> list[dict[str, Any]]:
    """The household's `tag` events, oldest first, once there are `count` (written as the
    server notices a talk ended: moments after)."""
    path = f"{live.url}/api/v1/households/{live.household}/audit-events"
    for _ in range(100):
        response = httpx.get(path, headers={"Cookie": live.cookie("owner")})
        assert response.status_code == 200, response.text
        found = [e for e in response.json() if e["tag"] == tag]
        if len(found) >= count:
            return found[::-1]
        time.sleep(0.1)
    raise AssertionError(f"fewer than {count} {tag} events")


async def test_a_member_talks_and_the_camera_gets_the_audio_byte_exact(live: Live) -> None:
    packets = [os.urandom(n) for n in (1, 80, 160, 3_999, 4_000)]
    async with live.agent() as agent, live.watch("shared", camera="back") as viewer:
        await hello(agent, ["front", "back"])
        started = await open_talk(agent, viewer)
        assert started["camera"] == "back" and started["codec"] == "opus"
        assert re.fullmatch(r"[0-9a-f]{32}", started["session"])
        for packet in packets:
            await viewer.send(packet)
        for packet in packets:  # in order, behind 0x10 and the camera's index (1: "back")
            assert await agent_audio(agent) == b"\x10\x01" + packet
        await asyncio.sleep(0.3)
        await viewer.send(STOP)
        assert await agent_says(agent, "talk_stop") == {
            "type": "talk_stop", "camera": "back", "session": started["session"],
        }  # fmt: skip
        assert (await talk_state(viewer))["state"] == "ended"
    [start] = audits(live, "talk:start")
    [end] = audits(live, "talk:end")
    shared = str(live.people["shared"].id)
    assert start["actor_user_id"] == end["actor_user_id"] == shared
    assert start["target_id"] == end["target_id"] == str(live.device)
    assert start["extra"] == {"camera": "back", "codec": "opus", "session": started["session"]}
    assert end["extra"]["duration_s"] >= 0.3
    assert end["extra"]["bytes"] == sum(len(p) for p in packets)
    assert end["extra"]["packets"] == len(packets)
    assert (end["extra"]["ended_by"], end["extra"]["outcome"]) == ("talker", "stopped")
    assert end["extra"]["codec"] == "opus"


async def test_webm_chunks_are_relayed_as_they_came(live: Live) -> None:
    chunks = [os.urandom(32 * 1024), os.urandom(700)]
    async with live.agent() as agent, live.watch("owner") as viewer:
        await hello(agent)
        started = await open_talk(agent, viewer, START_WEBM)
        assert started["codec"] == "webm"
        for chunk in chunks:
            await viewer.send(chunk)
        for chunk in chunks:
            assert await agent_audio(agent) == b"\x10\x00" + chunk


async def test_one_talker_per_camera_a_second_is_told_busy(live: Live) -> None:
    async with (
        live.agent() as agent,
        live.watch("owner") as owner,
        live.watch("shared") as shared,
    ):
        await hello(agent)
        await streaming(agent, owner)
        first = await open_talk(agent, owner)
        await shared.send(START_OPUS)
        busy = await talk_state(shared)
        assert busy["state"] == "busy" and "someone else" in busy["message"].lower()
        await shared.send(b"audio sent anyway, at once")  # in flight as busy came: dropped
        await still_streams(agent, shared, 2)  # its stream is untouched
        await owner.send(STOP)
        assert (await agent_says(agent, "talk_stop"))["session"] == first["session"]
        second = await open_talk(agent, shared)  # free again
        assert second["session"] != first["session"]
    assert len(audits(live, "talk:start", 2)) == 2


@pytest.mark.parametrize(
    ("start", "message", "code", "reason"),
    [
        (START_OPUS, b"x" * 4_001, 1009, "too large"),
        (START_WEBM, b"x" * (32 * 1024 + 1), 1009, "too large"),
        (None, b"not talking", 1003, "viewers cannot send media"),
        (None, "not json", 1007, "must be JSON"),
        (None, json.dumps({"type": "chat", "text": "hi"}), 1003, "unknown message type"),
        (None, json.dumps({"type": "talk", "action": "shout"}), 1003, "unknown talk action"),
        (None, json.dumps({"type": "talk", "action": "start", "codec": "mp3"}), 1003, "codec"),
        (None, json.dumps({"type": "talk", "pad": "x" * 1_100}), 1009, "too long"),
        (None, "[" * 500 + "]" * 500, 1007, "must be JSON"),
    ],
)
async def test_bad_talk_input_closes_only_that_viewer_with_a_reason(
    live: Live, start: str | None, message: str | bytes, code: int, reason: str
) -> None:
    async with (
        live.agent() as agent,
        live.watch("owner") as bystander,
        live.watch("shared") as culprit,
    ):
        await hello(agent)
        await streaming(agent, bystander)
        if start is not None:
            await open_talk(agent, culprit, start)
        await culprit.send(message)
        got_code, got_reason = await closed_with(culprit)
        assert (got_code, reason in got_reason) == (code, True), got_reason
        if start is not None:  # the talk it held ended with it
            assert (await agent_says(agent, "talk_stop"))["camera"] == "front"
        await still_streams(agent, bystander, 2)  # nobody else noticed
        await bystander.send(START_OPUS)  # and the camera is free to talk through
        assert (await talk_state(bystander))["state"] == "connecting"
    if start is not None:
        assert audits(live, "talk:end")[0]["extra"]["ended_by"] == "talk-too-large"


async def flood(ws: ClientConnection) -> None:
    for _ in range(2_000):
        await ws.send(b"x" * 4_000)
        await asyncio.sleep(0.001)


async def test_audio_faster_than_the_limit_is_cut_off(live: Live) -> None:
    async with (
        live.agent() as agent,
        live.watch("owner") as bystander,
        live.watch("shared") as flooder,
    ):
        await hello(agent)
        await streaming(agent, bystander)
        await open_talk(agent, flooder)
        started = time.monotonic()
        with pytest.raises(ConnectionClosed):  # 4 kB at 1 kHz: 4 MB/s
            await flood(flooder)
        code, reason = await closed_with(flooder)
        assert code == 1008 and "KiB/s" in reason, reason
        assert time.monotonic() - started < 5
        await still_streams(agent, bystander, 2)
    [end] = audits(live, "talk:end")
    assert end["extra"]["ended_by"] == "talk-too-fast"
    assert 0 < end["extra"]["bytes"] <= 3 * talk_module.BURST_BYTES


async def test_speech_at_opus_rates_is_never_limited(live: Live) -> None:
    async with live.agent() as agent, live.watch("owner") as viewer:
        await hello(agent)
        await open_talk(agent, viewer)
        # 4 s of 20 ms packets at 512 kbit/s (Opus speech is 16 to 64), paced as a browser
        # sends them: nearly twice the burst allowance in all, so the rate is what passes.
        for _ in range(200):
            await viewer.send(b"s" * 1_280)
            await asyncio.sleep(0.02)
        for _ in range(200):
            assert len(await agent_audio(agent)) == 1_282


async def test_the_camera_relays_its_own_failure_and_close(live: Live) -> None:
    async with live.agent() as agent, live.watch("owner") as viewer:
        await hello(agent)
        await viewer.send(START_OPUS)
        started = await agent_says(agent, "talk_start")
        words = "This camera has no speaker configured."
        stale = {**started, "type": "talk_state", "state": "closed", "session": "0" * 32}
        await agent.send(json.dumps(stale))  # another session's: ignored
        failed = {**started, "type": "talk_state", "state": "failed", "message": words}
        await agent.send(json.dumps(failed))
        states = [await talk_state(viewer) for _ in range(2)]
        assert [s["state"] for s in states] == ["connecting", "failed"]
        assert states[1]["message"] == words
        await viewer.send(b"late audio")  # in flight when it failed: dropped, not an offence
        await open_talk(agent, viewer)  # the camera is free again
    first = audits(live, "talk:end", 2)[0]
    assert (first["extra"]["ended_by"], first["extra"]["outcome"]) == ("agent", "failed")


async def test_a_talk_the_camera_closes_ends_in_the_browser(live: Live) -> None:
    async with live.agent() as agent, live.watch("owner") as viewer:
        await hello(agent)
        started = await open_talk(agent, viewer)
        closed = {**started, "type": "talk_state", "state": "closed", "message": "No audio."}
        await agent.send(json.dumps(closed))
        assert await talk_state(viewer) == {
            "type": "talk",
            "state": "ended",
            "message": "No audio.",
        }
    [end] = audits(live, "talk:end")
    assert (end["extra"]["ended_by"], end["extra"]["outcome"]) == ("agent", "closed")


async def test_a_camera_that_never_answers_fails_the_talk(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(talk_module, "OPEN_TIMEOUT_S", 0.3)
    async with live.agent() as agent, live.watch("owner") as viewer:
        await hello(agent)
        await viewer.send(START_OPUS)
        started = await agent_says(agent, "talk_start")
        assert (await talk_state(viewer))["state"] == "connecting"
        failed = await talk_state(viewer)
        assert failed["state"] == "failed" and "did not answer" in failed["message"]
        assert (await agent_says(agent, "talk_stop"))["session"] == started["session"]
    [end] = audits(live, "talk:end")
    assert (end["extra"]["ended_by"], end["extra"]["outcome"]) == ("timeout", "failed")


async def test_the_talker_leaving_ends_the_talk(live: Live) -> None:
    async with live.agent() as agent:
        await hello(agent)
        async with live.watch("owner") as viewer:
            started = await open_talk(agent, viewer)
        assert (await agent_says(agent, "talk_stop"))["session"] == started["session"]
    [end] = audits(live, "talk:end")
    assert end["extra"]["ended_by"] == "talker"


async def test_the_camera_going_offline_ends_the_talk(live: Live) -> None:
    async with live.watch("owner") as viewer:
        async with live.agent() as agent:
            await hello(agent)
            await open_talk(agent, viewer)
        ended = await talk_state(viewer)
        assert ended["state"] == "ended" and "offline" in ended["message"]
        await viewer.send(START_OPUS)  # nobody to talk to now
        failed = await talk_state(viewer)
        assert failed["state"] == "failed" and "offline" in failed["message"]
    [end] = audits(live, "talk:end")
    assert end["extra"]["ended_by"] == "agent-offline"


async def test_removing_the_camera_ends_the_talk(live: Live) -> None:
    async with live.agent() as agent, live.watch("owner") as viewer:
        await hello(agent)
        await open_talk(agent, viewer)
        async with live.signed_in("owner") as client:
            path = f"/api/v1/households/{live.household}/devices/{live.device}"
            assert (await client.delete(path)).status_code == 204
        ended = await talk_state(viewer)
        assert ended["state"] == "ended" and "removed" in ended["message"]
    [end] = audits(live, "talk:end")
    assert end["extra"]["ended_by"] == "camera-removed"


async def test_a_member_removed_while_talking_is_cut_off(
    settings: Settings, factory: Factory
) -> None:
    async with (
        live_server(settings, factory, live_recheck_s=0.3) as live,
        live.agent() as agent,
        live.watch("shared") as viewer,
    ):
        await hello(agent)
        started = await open_talk(agent, viewer)
        async with live.signed_in("owner") as client:
            shared = live.people["shared"].id
            gone = await client.delete(f"/api/v1/households/{live.household}/members/{shared}")
            assert gone.status_code == 204, gone.text
        ended = await talk_state(viewer)
        assert ended["state"] == "ended" and "no longer" in ended["message"]
        assert (await closed_with(viewer))[0] == 4403
        assert (await agent_says(agent, "talk_stop"))["session"] == started["session"]
        [end] = audits(live, "talk:end")
        assert end["extra"]["ended_by"] == "revoked"
        assert end["actor_user_id"] == str(shared)


async def test_talk_is_decided_by_its_own_policy_action(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Members may talk (the rule is live view's); the socket still asks `live:talk` itself,
    # so a rule that refused it would be obeyed.
    def refuse(_p: policy.Principal, _r: policy.Resource) -> policy.Decision:
        return policy.Decision(False, "refused for this test")

    monkeypatch.setitem(policy.RULES, Action.talk, refuse)
    async with live.agent() as agent, live.watch("owner") as viewer:
        await hello(agent)
        await viewer.send(START_OPUS)
        refused = await talk_state(viewer)
        assert refused["state"] == "failed" and "may not talk" in refused["message"]
        await viewer.send(b"audio anyway")  # the refusal's grace: dropped
        await asyncio.sleep(talk_module.LATE_AUDIO_S + 0.2)
        await viewer.send(b"audio long after")
        assert (await closed_with(viewer))[0] == 1003


@pytest.mark.parametrize("who", ["officer", "reviewer", "operator", "auditor", "foreign"])
async def test_nobody_outside_the_household_can_open_the_socket_to_talk(
    live: Live, who: str
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with live.watch(who) as viewer:
            await viewer.send(START_OPUS)
    assert refused.value.response.status_code == 403
    async with httpx.AsyncClient(headers={"Cookie": live.cookie(who)}) as client:
        page = await client.get(live.url + live.page_path())
    assert page.status_code == 403 and 'id="talk-button"' not in page.text


async def test_the_live_page_offers_talk_and_the_camera_page_says_when_it_last_happened(
    live: Live,
) -> None:
    async with live.signed_in("shared") as client:
        page = await client.get(live.page_path())
        assert page.status_code == 200
        assert 'id="talk-button"' in page.text and "/static/talk.js" in page.text
        cameras = await client.get(f"/households/{live.household}/cameras")
        assert "Last talk" not in cameras.text
    async with live.agent() as agent, live.watch("shared") as viewer:
        await hello(agent)
        await open_talk(agent, viewer)
        await viewer.send(STOP)
        await talk_state(viewer)
    [end] = audits(live, "talk:end")
    async with live.signed_in("owner") as client:
        cameras = await client.get(f"/households/{live.household}/cameras")
        assert "Last talk:" in cameras.text
        shown = re.search(r'Last talk: <time datetime="([^"]+)"', cameras.text)
        assert shown is not None, cameras.text
        assert shown.group(1).startswith(end["occurred_at"][:19])  # the time of talk:end
        assert shown.group(1).endswith("+00:00")  # an aware time, shown in the home's zone
