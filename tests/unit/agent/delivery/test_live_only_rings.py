"""On a live-only plan the delivery loop still seals and uploads the clips of doorbell
presses (labelled "ring" in their sidecar), and only those, to a real server (uvicorn on
loopback); the other clips wait in the plain spool, and clips sealed before the plan
changed wait in the sealed spool, until the plan stores recordings again (issue 17)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from doorwarden.agent.config.models import UploadConfig
from doorwarden.agent.delivery.identity import IdentityStore
from doorwarden.agent.delivery.outcomes import OutcomeKind
from doorwarden.agent.delivery.sealer import SealedSpool
from doorwarden.agent.delivery.upload_status import request_retry
from doorwarden.agent.delivery.worker import Delivery
from doorwarden.agent.recording.spool import Spool, SpoolEntry
from doorwarden.config import Settings
from tests.factories import Factory
from tests.functional.devices.test_agent_pairing import (
    LiveHousehold,
    live_household,
    paired_state,
)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # One ring clip an hour per camera: the second one shows what the agent does with a
    # ring clip the server refuses (it waits; the loop goes on).
    return settings.model_copy(update={"live_only_ring_clips_per_hour": 1})


@pytest.fixture
async def home(settings: Settings, factory: Factory) -> AsyncIterator[LiveHousehold]:
    async with live_household(settings, factory) as live:
        yield live


def commit(spool: Spool, *labels: str) -> SpoolEntry:
    """A finished clip in the plain spool, as the recorder commits it (labels sorted)."""
    tmp = spool.tmp_path()
    tmp.write_bytes(os.urandom(3000))
    start = datetime.now(UTC)
    meta = {
        "camera": "front",
        "start_utc": start.isoformat(timespec="milliseconds"),
        "end_utc": (start + timedelta(seconds=2)).isoformat(timespec="milliseconds"),
        "duration_s": 2.0,
        "labels": sorted(labels),
        "peak_score": 0.25,
        "codec": "h264",
        "width": 160,
        "height": 96,
    }
    return spool.commit(tmp, b"\xff\xd8 thumb", meta)


def delivery(spool: Spool, store: IdentityStore) -> Delivery:
    upload = UploadConfig(part_bytes=4096, backoff_initial_s=0.05, backoff_max_s=0.4)
    return Delivery(spool, store, upload, poll_s=0.1)


def test_a_live_only_plan_delivers_the_ring_clips_only(home: LiveHousehold, tmp_path: Path) -> None:
    store = IdentityStore(tmp_path / "state")
    identity = paired_state(home, store.state_dir)
    spool = Spool(tmp_path / "spool")
    # Sealed while the plan stored recordings, not yet uploaded: sequence 0.
    commit(spool, "motion")
    early = SealedSpool(spool.directory, identity, store.signing_key())
    early.recover(spool)
    assert early.seal_pending(spool) == [0]

    home.set_plan("live_only")
    motion = commit(spool, "motion", "person")
    commit(spool, "motion", "ring")
    commit(spool, "ring")  # past the server's bound of one an hour
    other_motion = commit(spool, "motion")
    with capture_logs() as logs:
        first = delivery(spool, store)
        first.start()
        assert not first.finish(timeout_s=30)  # live-only: not everything could go

    blocked = first.blocked
    assert blocked is not None and blocked.kind is OutcomeKind.live_only
    assert first.rings_only and first.delivered == 1
    [stored] = home.clips()
    assert stored["sequence"] == 1 and "ring" in stored["labels"]
    # The other clips stayed where they were: the motion clips unsealed, the clip sealed
    # before the plan changed not offered, the second ring waiting (refused: the bound).
    assert [e.id for e in spool.entries()] == [motion.id, other_motion.id]
    assert [p.sequence for p in first.sealed.pending()] == [0, 2]
    assert set(first.status.deferred) == {2} and first.status.deferred[2]["code"] == "live_only"
    assert first.status.stopped is not None and first.status.stopped["code"] == "live_only"
    [line] = [e for e in logs if e["event"] == "delivery.live_only"]
    assert "only doorbell clips" in line["effect"]
    assert "upload.delivered" in [e["event"] for e in logs]

    # The owner stores recordings again: the next start delivers everything, the
    # waiting ring included once a person asks (`doorwarden agent retry --all`).
    home.set_plan("recording")
    request_retry(store.state_dir, None)
    second = delivery(spool, store)
    second.start()
    assert second.finish(timeout_s=30)
    assert second.blocked is None and spool.entries() == []
    assert sorted(c["sequence"] for c in home.clips()) == [0, 1, 2, 3, 4]
