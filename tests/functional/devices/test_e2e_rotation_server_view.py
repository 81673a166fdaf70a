"""What the server still sees of an end-to-end household (docs/e2e.md): a notification
for an event on an end-to-end clip carries its text and time but no image, where the
same event on a standard clip links the thumbnail; the clip's times, camera, labels and
motion score stay listed; the thumbnail and the video are never served."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI

from doorwarden.clock import ManualClock
from doorwarden.config import Settings
from doorwarden.crypto.keys import RecipientKey, b64e
from doorwarden.events.models import EventKind
from tests.factories import Factory, assert_error
from tests.functional.notify.dispatch_setup import (
    add_event,
    dispatch,
    notifications_of,
    settings_overrides,
)
from tests.sealed_clips import seal_clip, upload


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update=settings_overrides(None))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 12, 6, 12, 0, tzinfo=UTC))  # outside quiet hours


async def _home_with_a_person_clip(
    app: FastAPI, factory: Factory, clock: ManualClock, *, e2e: bool
) -> tuple[uuid.UUID, uuid.UUID, httpx.AsyncClient, str]:
    owner = await factory.user()
    home = await factory.household(owner)
    browser = await factory.signed_in(owner)
    key = RecipientKey.generate()
    await browser.put("/api/v1/account/e2e-key", json={"public_key": b64e(key.public)})
    if e2e:
        switched = await browser.put(f"/api/v1/households/{home}/encryption", json={"mode": "e2e"})
        assert switched.status_code == 200, switched.text
    rules = await browser.put(
        f"/api/v1/households/{home}/notification-rules", json={"kinds": ["person"]}
    )
    assert rules.status_code == 200, rules.text
    away = await browser.put(f"/api/v1/households/{home}/mode", json={"mode": "away"})
    assert away.status_code == 200, away.text  # at home, only rings notify
    camera = await factory.camera(owner, home)
    recipients = [key.public] if e2e else camera.recipients
    sealed = seal_clip(
        camera.id, camera.key, recipients, 0, size=60_000,
        start=clock.now().isoformat(timespec="milliseconds"), mode="e2e" if e2e else "standard",
    )  # fmt: skip
    done = await upload(camera.client, sealed)
    assert done.json()["status"] == "verified", done.text
    clip_id = uuid.UUID(done.json()["clip_id"])
    await add_event(app, home, camera.id, EventKind.person, clock.now(), clip_id=clip_id)
    await dispatch(app)
    return owner.id, home, browser, str(clip_id)


async def test_an_end_to_end_clip_is_notified_without_an_image(
    app: FastAPI, factory: Factory, clock: ManualClock
) -> None:
    standard_owner, *_ = await _home_with_a_person_clip(app, factory, clock, e2e=False)
    [told] = await notifications_of(app, standard_owner)
    assert told.thumbnail is not None  # the control: a standard clip's picture is linked

    owner, home, browser, clip_id = await _home_with_a_person_clip(app, factory, clock, e2e=True)
    [told] = await notifications_of(app, owner)
    assert told.thumbnail is None
    assert told.title and told.body  # what happened, and when, in words

    [listed] = (await browser.get(f"/api/v1/households/{home}/clips")).json()
    assert listed["id"] == clip_id and listed["labels"] == ["motion", "person"]
    assert listed["start_at"] and listed["duration_ms"] == 12_000
    for path in ("thumbnail", "video"):
        refused = await browser.get(f"/api/v1/households/{home}/clips/{clip_id}/{path}")
        assert_error(refused, 409, "end_to_end")
