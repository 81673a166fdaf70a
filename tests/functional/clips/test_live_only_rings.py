"""A doorbell press records a clip even on a live-only plan (issue 17, item 1): the
server stores a clip whose signed labels include "ring", at most
`live_only_ring_clips_per_hour` per camera and hour, keeps it
`live_only_ring_retention_days`, and refuses every other clip (403 live_only)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from doorwarden.accounts.models import User
from doorwarden.audit.models import AuditEvent
from doorwarden.clips.models import Clip
from doorwarden.clips.tasks import run_retention
from doorwarden.clock import ManualClock
from doorwarden.config import Settings
from doorwarden.crypto.manifest import GENESIS
from tests.factories import Camera, Factory, assert_error
from tests.sealed_clips import Sealed, seal_clip, upload

PER_HOUR = 2


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"live_only_ring_clips_per_hour": PER_HOUR})


async def live_only_home(factory: Factory) -> tuple[uuid.UUID, Camera, object, User]:
    owner = await factory.user()
    home = await factory.household(owner)
    camera = await factory.camera(owner, home)
    browser = await factory.signed_in(owner)
    plan = await browser.put(f"/api/v1/households/{home}/plan", json={"kind": "live_only"})
    assert plan.status_code == 200, plan.text
    return home, camera, browser, owner


def clip(
    camera: Camera, sequence: int, previous: str, labels: tuple[str, ...], **kw: object
) -> Sealed:
    return seal_clip(
        camera.id, camera.key, camera.recipients, sequence, previous,  # type: ignore[arg-type]
        size=3000, labels=labels, **kw,  # type: ignore[arg-type]
    )  # fmt: skip


async def offer(camera: Camera, sealed: Sealed) -> httpx.Response:
    url = f"/api/v1/device/clips/{sealed.sequence}"
    return await camera.client.put(url, content=sealed.manifest)


async def listed(browser: object, home: object) -> list[int]:
    response = await browser.get(f"/api/v1/households/{home}/clips")  # type: ignore[attr-defined]
    assert response.status_code == 200, response.text
    return sorted(c["sequence"] for c in response.json())


async def test_a_ring_clip_is_stored_and_any_other_clip_refused(factory: Factory) -> None:
    home, camera, browser, _ = await live_only_home(factory)
    ring = clip(camera, 0, GENESIS, ("motion", "ring"))
    done = await upload(camera.client, ring)
    assert done.status_code == 200 and done.json()["status"] == "verified", done.text
    assert await listed(browser, home) == [0]

    motion = clip(camera, 1, ring.digest, ("motion", "person"))
    refused = await camera.client.put("/api/v1/device/clips/1", content=motion.manifest)
    assert "live view only" in str(assert_error(refused, 403, "live_only")["message"])
    # "ring" must be a label of its own, and one the server records (and so counts):
    # pushed past the stored label set by long labels, it is not taken at its word.
    padding = tuple(str(n) * 40 for n in range(8))
    for sequence, labels in enumerate([("ringing",), ("doorbell-ring",), (*padding, "ring")], 1):
        sneaky = clip(camera, sequence, ring.digest, labels)
        answer = await camera.client.put(
            f"/api/v1/device/clips/{sequence}", content=sneaky.manifest
        )
        assert_error(answer, 403, "live_only")
    assert await listed(browser, home) == [0]

    # Offered again (the agent lost the answer): the stored clip, not a refusal.
    again = await camera.client.put("/api/v1/device/clips/0", content=ring.manifest)
    assert again.status_code == 200 and again.json()["status"] == "verified"


async def test_ring_clips_beyond_the_hourly_bound_are_refused(
    factory: Factory, clock: ManualClock
) -> None:
    home, camera, browser, owner = await live_only_home(factory)
    chain: list[Sealed] = []
    previous = GENESIS
    for sequence in range(PER_HOUR + 2):
        chain.append(clip(camera, sequence, previous, ("ring",)))
        previous = chain[-1].digest
    for sealed in chain[:PER_HOUR]:
        assert (await upload(camera.client, sealed)).status_code == 200
    over = chain[PER_HOUR]
    assert_error(await offer(camera, over), 403, "live_only")
    # A clip already offered is not counted against itself.
    last = chain[PER_HOUR - 1]
    again = await offer(camera, last)
    assert again.status_code == 200, again.text
    # Another camera of the household has its own bound.
    other = await factory.camera(owner, home, "Back door")
    assert (await upload(other.client, clip(other, 0, GENESIS, ("ring",)))).status_code == 200

    clock.advance(timedelta(minutes=59))
    assert_error(await offer(camera, over), 403, "live_only")
    clock.advance(timedelta(minutes=2))  # the first two are more than an hour old now
    for sealed in chain[PER_HOUR:]:
        assert (await upload(camera.client, sealed)).status_code == 200
    assert await listed(browser, home) == [0, 0, 1, 2, 3]


async def test_a_ring_clip_is_kept_a_day_then_expires(
    factory: Factory, app: FastAPI, clock: ManualClock, settings: Settings
) -> None:
    owner = await factory.user()
    home = await factory.household(owner)
    camera = await factory.camera(owner, home)
    browser = await factory.signed_in(owner)
    start = clock.now().isoformat(timespec="milliseconds")
    # Recorded while the plan stored recordings: a motion clip, and a ring.
    motion = clip(camera, 0, GENESIS, ("motion",), start=start)
    ring = clip(camera, 1, motion.digest, ("ring",), start=start)
    ids = []
    for sealed in (motion, ring):
        done = await upload(camera.client, sealed)
        assert done.status_code == 200, done.text
        ids.append(done.json()["clip_id"])
    plan = await browser.put(f"/api/v1/households/{home}/plan", json={"kind": "live_only"})
    assert plan.status_code == 200, plan.text
    days = settings.live_only_ring_retention_days
    assert days == 1  # the default

    async def expire(after: timedelta) -> int:
        now = clock.now() + after
        result = await run_retention(
            app.state.sessionmaker, app.state.clip_store, now, live_only_ring_days=days
        )
        return result.expired

    assert await expire(timedelta(minutes=1)) == 1  # the motion clip: live-only keeps none
    assert await listed(browser, home) == [1]
    assert await expire(timedelta(hours=23)) == 0  # the ring: kept for a day
    assert await listed(browser, home) == [1]
    assert await expire(timedelta(days=1, minutes=1)) == 1
    assert await listed(browser, home) == []
    assert len(await app.state.clip_store.list(f"households/{home}/")) == 0
    async with app.state.sessionmaker() as db:
        expired = (
            await db.execute(
                select(AuditEvent.target_id, AuditEvent.extra).where(
                    AuditEvent.tag == "clip:expire"
                )
            )
        ).all()
        assert {target: extra["retention_days"] for target, extra in expired} == {
            ids[0]: 0,
            ids[1]: 1,
        }
        rows = (await db.scalars(select(Clip.status))).all()
        assert sorted(rows) == ["deleted", "deleted"]
