"""The agent's health report reaches the real server (PUT /api/v1/device/health, the
server side of tests/functional/devices/test_device_health.py): a held clip and a
deferred one, as the household's owners then see them on the device listing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from doorwarden.agent.config.models import UploadConfig
from doorwarden.agent.delivery.identity import IdentityStore
from doorwarden.agent.delivery.worker import Delivery
from doorwarden.agent.recording.spool import Spool
from doorwarden.config import Settings
from tests.factories import Factory
from tests.functional.devices.test_agent_pairing import LiveHousehold, live_household, paired_state
from tests.unit.agent.delivery.paired import commit_plain


@pytest.fixture
async def home(settings: Settings, factory: Factory) -> AsyncIterator[LiveHousehold]:
    async with live_household(settings, factory) as live:
        yield live


def test_held_clips_are_reported_to_the_server_and_shown_to_the_owner(
    home: LiveHousehold, tmp_path: Path
) -> None:
    identity = paired_state(home, tmp_path / "state")
    store = IdentityStore(tmp_path / "state")
    upload = UploadConfig(part_bytes=16 * 1024, backoff_initial_s=0.05, backoff_max_s=0.4)
    spool = Spool(tmp_path / "spool")
    for _ in range(2):
        commit_plain(spool, size=30_000)
    delivery = Delivery(spool, store, upload, poll_s=0.1)
    delivery.recover()
    delivery.sealed.seal_pending(spool)
    first = delivery.sealed.pending()[0]
    data = bytearray(first.clip.read_bytes())
    data[len(data) // 2] ^= 0x01  # bit rot on the camera's card: the server holds it
    first.clip.write_bytes(bytes(data))
    delivery.start()
    assert delivery.finish(timeout_s=30)
    assert delivery.health.supported and delivery.health.sent >= 1

    [device] = [d for d in home.devices() if d["id"] == identity.device_id]
    health = device["health"]
    assert health is not None
    assert [(h["sequence"], h["code"]) for h in health["held"]] == [
        (0, delivery.status.held[0]["code"])
    ]
    assert health["deferred"] == [] and health["evicted"] == []
    assert health["spool"]["pending_clips"] == 1 and health["spool"]["disk_full"] is False
