"""The member set's nudge (devices/member_push.py): when a member's key changes, their
households' connected cameras are told over the control connection to fetch the signed
set now, and the agent's delivery loop then fetches it even though the set it holds is
younger than its pre-seal bound. On a real server (uvicorn on loopback) with a real
WebSocket client speaking the agent's side of the protocol, and a real Delivery."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest

from doorwarden.config import Settings
from doorwarden.crypto.keys import RecipientKey, b64e, key_id
from tests.factories import PASSWORD, Factory
from tests.functional.devices.e2e_agent import e2e_household, paired_delivery, signed_in
from tests.functional.live.test_live import Live, hello, live_server
from tests.live_server import running_server

pytestmark = [pytest.mark.db, pytest.mark.filterwarnings("ignore::DeprecationWarning:websockets")]


def _register(url: str, email: str) -> RecipientKey:
    key = RecipientKey.generate()
    with httpx.Client(base_url=url, timeout=30) as client:
        login = client.post("/api/v1/session", json={"email": email, "password": PASSWORD})
        assert login.status_code == 200, login.text
        done = client.put(
            "/api/v1/account/e2e-key",
            json={"public_key": b64e(key.public)},
            headers={"x-csrf-token": login.json()["csrf_token"]},
        )
        assert done.status_code == 200, done.text
    return key


async def test_a_members_new_key_nudges_the_households_connected_camera(
    settings: Settings, factory: Factory
) -> None:
    async with live_server(settings, factory) as live:
        await _nudged(live)


async def _nudged(live: Live) -> None:
    async with live.agent() as agent:
        await hello(agent)
        # A member of the camera's household (the shared user) registers a key.
        await asyncio.to_thread(_register, live.url, live.people["shared"].email)
        message = json.loads(await asyncio.wait_for(agent.recv(), 10))
        assert message == {"type": "member_set"}
        # Someone of another household only: this camera is not told.
        await asyncio.to_thread(_register, live.url, live.people["foreign"].email)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(agent.recv(), 1.0)


async def test_a_nudged_agent_fetches_the_set_before_its_bound(
    settings: Settings, factory: Factory, tmp_path: Path
) -> None:
    home, users, keys = await e2e_household(factory, members=2)
    live = settings.model_copy(update={"development": True})
    with running_server(live) as url:
        owner = await asyncio.to_thread(signed_in, url, users[0].email)

        def run() -> None:
            # A bound of an hour: only the nudge makes it fetch.
            delivery = paired_delivery(url, owner, home, tmp_path / "agent",
                                       member_set_max_age_s=3600)  # fmt: skip
            try:
                delivery.step()
                held = {k for k, _ in delivery.identity.recipients}
                assert held == {key_id(k.public) for k in keys}
                gone = owner.delete(f"/api/v1/households/{home}/members/{users[1].id}")
                assert gone.status_code == 204, gone.text
                delivery.step()
                assert {k for k, _ in delivery.identity.recipients} == held  # not yet
                delivery.members_changed({"type": "member_set"})
                delivery.step()
                assert {k for k, _ in delivery.identity.recipients} == {key_id(keys[0].public)}
            finally:
                delivery.stop()

        await asyncio.to_thread(run)
        await asyncio.to_thread(owner.close)
