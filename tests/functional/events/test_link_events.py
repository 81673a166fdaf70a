"""Rings over the agent's control connection (docs/live-view.md, `event`/`event_ack`), on
a real server with a real WebSocket client: acked only once stored, a replay acked with
the same event, every refusal an ack the agent can act on, the link kept up."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection

from doorwarden.config import Settings
from tests.factories import Factory
from tests.functional.live.test_live import Live, close_code, control, hello, live_server

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:websockets")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"events_clip_interval_s": 0})


@pytest.fixture
async def live(settings: Settings, factory: Factory) -> AsyncIterator[Live]:
    async with live_server(settings, factory) as server:
        yield server


def ring(at: datetime | None = None, /, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "event",
        "id": str(uuid.uuid4()),
        "camera": "front",
        "kind": "ring",
        "at": (at or datetime.now(UTC)).isoformat(),
        "source": "cli",
    }
    body.update(changes)
    return body


async def send(agent: ClientConnection, message: dict[str, Any]) -> dict[str, Any]:
    await agent.send(json.dumps(message))
    while True:  # other control messages (the household's mode) may come first
        ack = await control(agent)
        if ack["type"] == "event_ack":
            return ack


async def timeline(live: Live) -> list[dict[str, Any]]:
    async with live.signed_in("owner") as owner:
        response = await owner.get(f"/api/v1/households/{live.household}/events")
        assert response.status_code == 200, response.text
        body: list[dict[str, Any]] = response.json()
        return body


async def test_a_ring_is_acked_once_stored_and_a_replay_gets_the_same_event(live: Live) -> None:
    async with live.agent() as agent:
        await hello(agent, ["front", "back"])
        message = ring(camera="back")
        ack = await send(agent, message)
        assert set(ack) == {"type", "id", "event_id"} and ack["id"] == message["id"]
        # Stored before the ack: the owner's timeline has it now.
        [event] = await timeline(live)
        assert (event["id"], event["camera"], event["kind"]) == (ack["event_id"], "back", "ring")
        assert event["new"] is True
        replay = await send(agent, message)
        assert replay == ack
    # After a reconnect too (the agent lost the ack and resends).
    async with live.agent() as agent:
        await hello(agent, ["front", "back"])
        assert await send(agent, message) == ack
    assert len(await timeline(live)) == 1


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"at": "2026-12-06T11:00:00"}, "malformed"),
        ({"kind": "motion"}, "malformed"),
        ({"kind": "doorbell"}, "malformed"),
        ({"source": "detector"}, "malformed"),
        ({"camera": "garage"}, "unknown_camera"),
        ({"at": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}, "time_out_of_range"),
        ({"at": (datetime.now(UTC) - timedelta(days=8)).isoformat()}, "time_out_of_range"),
        ({"extra": True}, "malformed"),
    ],
)
async def test_refusals_are_acks_and_the_link_stays_up(
    live: Live, changes: dict[str, Any], code: str
) -> None:
    async with live.agent() as agent:
        await hello(agent)
        bad = ring(**changes)
        ack = await send(agent, bad)
        assert ack["id"] == bad["id"] and ack["refused"] == code, ack
        assert "event_id" not in ack and ack["message"]
        good = await send(agent, ring())
        assert "event_id" in good
    assert len(await timeline(live)) == 1


async def test_an_event_without_a_usable_id_is_refused_with_no_id(live: Live) -> None:
    async with live.agent() as agent:
        await hello(agent)
        for bad_id in (None, 7, "x" * 65):
            ack = await send(agent, ring(id=bad_id))
            assert ack["refused"] == "malformed"
            assert ack["id"] is None  # nothing the agent could match it to
    assert await timeline(live) == []


@pytest.mark.parametrize("text", ["{not json", "[" * 3000, json.dumps(ring(pad="x" * 5000))])
async def test_text_that_is_not_a_bounded_json_object_closes_the_link(
    live: Live, text: str
) -> None:
    async with live.agent() as agent:
        await hello(agent)
        await agent.send(text)
        assert await close_code(agent) == 1008
    assert await timeline(live) == []


async def test_a_ring_flood_over_the_link_is_refused_and_counted(live: Live) -> None:
    acks = []
    async with live.agent() as agent:
        await hello(agent)
        now = datetime.now(UTC)
        for i in range(9):
            acks.append(await send(agent, ring(now + timedelta(milliseconds=i))))
    assert ["event_id" in a for a in acks] == [True] * 6 + [False] * 3
    assert {a.get("refused") for a in acks[6:]} == {"too_many_rings"}
    assert all(1 <= a["retry_after"] <= 60 for a in acks[6:])
    async with live.signed_in("owner") as owner:
        response = await owner.get(f"/api/v1/households/{live.household}/events/refusals")
        assert response.status_code == 200, response.text
        assert [r["refused"] for r in response.json()] == [3]
    assert len(await timeline(live)) == 6


async def test_over_http_a_connected_agents_cameras_are_checked(live: Live) -> None:
    headers = {"authorization": f"Bearer {live.token}"}
    body = {k: v for k, v in ring(camera="garage").items() if k != "type"}
    # A loaded CI machine once took longer than httpx's default 5 s to answer.
    async with httpx.AsyncClient(base_url=live.url, headers=headers, timeout=30) as camera:
        # Not connected: any well-formed name is taken (the server stores no camera list).
        assert (await camera.post("/api/v1/device/events", json=body)).status_code == 201
        async with live.agent() as agent:
            await hello(agent, ["front"])
            other = {**body, "id": str(uuid.uuid4())}
            response = await camera.post("/api/v1/device/events", json=other)
            assert response.status_code == 422, response.text
            assert response.json()["error"]["code"] == "unknown_camera"
