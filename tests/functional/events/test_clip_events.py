"""Events from verified clips (job `events.clips`): a person clip makes a person event, any
other a motion event, a ring clip is linked to the ring the agent sent instead of making
one; each exactly once, however often the job runs."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from doorwarden.clock import ManualClock
from doorwarden.config import Settings
from doorwarden.crypto.manifest import GENESIS
from doorwarden.events.clip_events import RING_WAIT, clip_events_job
from doorwarden.scheduler import run_now
from tests.factories import Camera, Factory
from tests.sealed_clips import seal_clip, upload


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"events_clip_interval_s": 0})


class Chain:
    def __init__(self, camera: Camera) -> None:
        self.camera = camera
        self.previous = GENESIS
        self.sequence = 0

    async def clip(self, start: datetime, labels: tuple[str, ...]) -> uuid.UUID:
        sealed = seal_clip(
            self.camera.id, self.camera.key, self.camera.recipients, self.sequence,
            self.previous, size=20_000, labels=labels,
            start=start.isoformat(timespec="milliseconds"),
        )  # fmt: skip
        response = await upload(self.camera.client, sealed)
        assert response.status_code in (200, 201), response.text
        self.previous, self.sequence = sealed.digest, self.sequence + 1
        return uuid.UUID(response.json()["clip_id"])


async def run_job(app: FastAPI) -> Any:
    return await run_now(app.state.sessionmaker, clip_events_job(app.state.clock.now))


async def timeline(owner: httpx.AsyncClient, home: uuid.UUID) -> list[dict[str, Any]]:
    response = await owner.get(f"/api/v1/households/{home}/events")
    assert response.status_code == 200, response.text
    body: list[dict[str, Any]] = response.json()
    return body


async def ring(camera: Camera, at: datetime, name: str = "front") -> str:
    body = {"id": str(uuid.uuid4()), "camera": name, "kind": "ring", "at": at.isoformat(),
            "source": "button"}  # fmt: skip
    response = await camera.client.post("/api/v1/device/events", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["event_id"])


async def test_clips_make_person_and_motion_events_and_ring_clips_link_once(
    factory: Factory, clock: ManualClock, app: FastAPI
) -> None:
    owner_user = await factory.user()
    home = await factory.household(owner_user)
    camera = await factory.camera(owner_user, home)
    owner = await factory.signed_in(owner_user)
    chain = Chain(camera)
    t0 = clock.now() - timedelta(minutes=10)
    person = await chain.clip(t0, ("motion", "person"))
    motion = await chain.clip(t0 + timedelta(minutes=1), ("motion",))
    ring_at = t0 + timedelta(minutes=2, seconds=3)
    # An earlier ring, outside the clip's span, must not be the one linked.
    await ring(camera, t0 + timedelta(minutes=1, seconds=30))
    ring_id = await ring(camera, ring_at)
    ring_clip = await chain.clip(t0 + timedelta(minutes=2), ("motion", "person", "ring"))
    first = await run_job(app)
    assert (len(first.made), len(first.linked)) == (2, 1)
    second = await run_job(app)
    assert (len(second.made), len(second.linked), second.waiting) == (0, 0, 0)
    listed = await timeline(owner, home)
    by_clip = {e["clip_id"]: e for e in listed if e["clip_id"]}
    assert by_clip[str(person)]["kind"] == "person"
    assert by_clip[str(motion)]["kind"] == "motion"
    assert by_clip[str(ring_clip)]["kind"] == "ring"
    assert by_clip[str(ring_clip)]["id"] == ring_id
    assert len(listed) == 4  # two from clips, two rings (one linked, one not)
    assert sorted(e["kind"] for e in listed) == ["motion", "person", "ring", "ring"]


async def test_a_ring_clip_waits_for_its_ring_then_stands_on_its_own(
    factory: Factory, clock: ManualClock, app: FastAPI
) -> None:
    owner_user = await factory.user()
    home = await factory.household(owner_user)
    camera = await factory.camera(owner_user, home)
    owner = await factory.signed_in(owner_user)
    chain = Chain(camera)
    start = clock.now() - timedelta(seconds=30)
    clip = await chain.clip(start, ("ring",))
    waiting = await run_job(app)
    assert (waiting.made, waiting.linked, waiting.waiting) == ([], [], 1)
    assert await timeline(owner, home) == []
    # The ring arrives late (the agent was offline): it is linked, not duplicated.
    ring_id = await ring(camera, start + timedelta(seconds=1))
    linked = await run_job(app)
    assert [e.id for e in linked.linked] == [uuid.UUID(ring_id)]
    [event] = await timeline(owner, home)
    assert (event["id"], event["clip_id"]) == (ring_id, str(clip))
    # A ring clip whose ring never comes is a motion event once the wait is over.
    lone = await chain.clip(clock.now() - timedelta(seconds=20), ("ring",))
    assert (await run_job(app)).waiting == 1
    clock.advance(RING_WAIT + timedelta(seconds=1))
    made = await run_job(app)
    assert [(e.kind, e.clip_id) for e in made.made] == [("motion", lone)]
    assert len(await timeline(owner, home)) == 2
    assert (await run_job(app)).made == []


async def test_a_ring_of_another_camera_of_the_agent_is_not_linked(
    factory: Factory, clock: ManualClock, app: FastAPI
) -> None:
    owner_user = await factory.user()
    home = await factory.household(owner_user)
    camera = await factory.camera(owner_user, home)
    chain = Chain(camera)
    start = clock.now() - timedelta(minutes=5)
    back_ring = await ring(camera, start + timedelta(seconds=2), name="back")
    clip = await chain.clip(start, ("ring", "camera:front"))
    clock.advance(RING_WAIT + timedelta(seconds=1))
    result = await run_job(app)
    assert result.linked == []
    [made] = result.made
    assert (made.kind, made.camera, made.clip_id) == ("motion", "front", clip)
    owner = await factory.signed_in(owner_user)
    rings = [e for e in await timeline(owner, home) if e["id"] == back_ring]
    assert rings[0]["clip_id"] is None
