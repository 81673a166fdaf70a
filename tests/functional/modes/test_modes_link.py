"""The mode reaches the agents over their control connection (docs/modes.md): on a real
server (uvicorn on loopback) with a real WebSocket agent, then with the agent's own link
and its mode.json, across restarts of the agent and of the server."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection

from doorwarden.agent.delivery.identity import DeviceIdentity, Plan
from doorwarden.agent.live.link import LiveLink
from doorwarden.agent.live.mode import MODE_FILE, ModeState
from doorwarden.config import Settings
from tests.factories import Factory
from tests.functional.live.test_live import Live, live_server
from tests.live_server import running_server

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:websockets")
ON = {"record": True, "detect": True}
OFF = {"record": False, "detect": False}


async def next_text(agent: ClientConnection) -> dict[str, Any]:
    message = await asyncio.wait_for(agent.recv(), 10)
    assert isinstance(message, str)
    body: dict[str, Any] = json.loads(message)
    return body


async def hello(agent: ClientConnection, cameras: list[str]) -> None:
    await agent.send(json.dumps({"type": "hello", "cameras": cameras, "version": 1}))


async def test_the_agent_hears_the_mode_on_connect_and_on_every_change(
    settings: Settings, factory: Factory
) -> None:
    async with (
        live_server(settings, factory) as live,
        live.agent() as agent,
        live.signed_in("owner") as owner,
    ):
        await hello(agent, ["front", "back"])
        assert await next_text(agent) == {
                "type": "mode", "mode": "home", "cameras": {"front": ON, "back": ON},
            }  # fmt: skip
        set_away = await owner.put(
            f"/api/v1/households/{live.household}/mode", json={"mode": "away"}
        )
        assert set_away.status_code == 200, set_away.text
        assert await next_text(agent) == {
                "type": "mode", "mode": "away", "cameras": {"front": ON, "back": ON},
            }  # fmt: skip
        # The camera's settings in the mode in force: sent as soon as they change.
        change = {"modes": {"away": {"cameras": {str(live.device): {**OFF, "notify": True}}}}}
        response = await owner.put(f"/api/v1/households/{live.household}/modes", json=change)
        assert response.status_code == 200, response.text
        assert await next_text(agent) == {
                "type": "mode", "mode": "away", "cameras": {"front": OFF, "back": OFF},
            }  # fmt: skip
        # Refused changes send nothing: the next message is the owner's next change.
        async with live.signed_in("shared") as shared:
            refused = await shared.put(
                f"/api/v1/households/{live.household}/mode", json={"mode": "home"}
            )
            assert refused.status_code == 403
            snooze = await shared.post(
                f"/api/v1/households/{live.household}/snoozes", json={"hours": 1, "scope": "me"}
            )
            assert snooze.status_code == 201  # a snooze is about notifications only
        async with live.signed_in("foreign") as foreign:
            refused = await foreign.put(
                f"/api/v1/households/{live.household}/mode", json={"mode": "home"}
            )
            assert refused.status_code == 403
        await owner.put(f"/api/v1/households/{live.household}/mode", json={"mode": "disarmed"})
        assert await next_text(agent) == {
                "type": "mode", "mode": "disarmed", "cameras": {"front": OFF, "back": OFF},
            }  # fmt: skip


async def test_another_households_change_is_not_sent_to_this_agent(
    settings: Settings, factory: Factory
) -> None:
    async with live_server(settings, factory) as live:
        # The neighbour's household gets a camera and an agent of its own.
        foreign = live.people["foreign"]
        async with live.signed_in("foreign") as client:
            listed = await client.get("/api/v1/households")
            other = uuid.UUID(listed.json()[0]["id"])
        camera = await factory.camera(foreign, other)
        token = camera.client.headers["authorization"].removeprefix("Bearer ")
        await camera.client.aclose()
        async with live.agent() as mine, live.agent(token) as theirs:
            await hello(mine, ["front"])
            await hello(theirs, ["porch"])
            assert (await next_text(mine))["mode"] == "home"
            assert (await next_text(theirs))["mode"] == "home"
            async with live.signed_in("foreign") as client:
                response = await client.put(
                    f"/api/v1/households/{other}/mode", json={"mode": "away"}
                )
                assert response.status_code == 200
            assert await next_text(theirs) == {
                "type": "mode",
                "mode": "away",
                "cameras": {"porch": ON},
            }
            async with live.signed_in("owner") as owner:
                await owner.put(
                    f"/api/v1/households/{live.household}/mode", json={"mode": "disarmed"}
                )
            # Mine heard only its own household's change.
            assert (await next_text(mine))["mode"] == "disarmed"


def wait_for(check: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def saved_mode(state_dir: Path) -> str | None:
    try:
        return str(json.loads((state_dir / MODE_FILE).read_text())["mode"])
    except (FileNotFoundError, ValueError):
        return None


def agent_link(live: Live, state: ModeState) -> LiveLink:
    identity = DeviceIdentity(
        server=live.url, device_id=str(live.device), household_id=str(live.household),
        token=live.token, mode="standard", recipients=[], plan=Plan("recording", None),
    )  # fmt: skip
    link = LiveLink(identity, ["front"])
    link.handlers["mode"] = state.on_message
    return link


async def test_the_agents_mode_survives_restarts_of_the_agent_and_the_server(
    settings: Settings, factory: Factory, tmp_path: Path
) -> None:
    state_dir = tmp_path / "agent-state"
    async with live_server(settings, factory) as live:
        state = ModeState(state_dir, ["front"])
        link = agent_link(live, state)
        link.start()
        try:
            await asyncio.to_thread(
                wait_for, lambda: state.mode == saved_mode(state_dir) == "home", "home"
            )
            async with live.signed_in("owner") as owner:
                response = await owner.put(
                    f"/api/v1/households/{live.household}/mode", json={"mode": "disarmed"}
                )
                assert response.status_code == 200
            await asyncio.to_thread(
                wait_for, lambda: state.mode == saved_mode(state_dir) == "disarmed", "disarmed"
            )
            assert state.switches["front"].recording_enabled is False
        finally:
            await asyncio.to_thread(link.stop)
        # The agent restarts offline: it starts in the mode it saved.
        offline = ModeState(state_dir, ["front"])
        assert offline.mode == "disarmed"
        assert offline.switches["front"].recording_enabled is False
        # Meanwhile the owner switches to away.
        async with live.signed_in("owner") as owner:
            await owner.put(f"/api/v1/households/{live.household}/mode", json={"mode": "away"})
    # The server restarts too (same database): the agent hears "away" when it connects.
    update = {"development": True}
    with running_server(settings.model_copy(update=update)) as url:
        live.url = url
        restarted = ModeState(state_dir, ["front"])
        link = agent_link(live, restarted)
        link.start()
        try:
            await asyncio.to_thread(
                wait_for, lambda: restarted.mode == saved_mode(state_dir) == "away", "away"
            )
            assert restarted.switches["front"].recording_enabled is True
        finally:
            await asyncio.to_thread(link.stop)
