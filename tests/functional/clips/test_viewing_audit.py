"""Every way of fetching a clip's bytes is audited, once per viewing (issue 16, item 5).

A player fetches one viewing in many Range requests (metadata, then seeks): each must not
write its own event, but a viewing that never asks for byte 0 must not escape the trail
either. One viewing is one user, one clip, one client address and a time window; the record
of the last audited viewing is the audit event itself, in the database, so several server
processes agree on it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from doorwarden.accounts.models import User
from doorwarden.audit.models import AuditEvent
from doorwarden.clock import ManualClock
from doorwarden.config import Settings
from doorwarden.main import create_app
from tests.factories import BASE_URL, Factory
from tests.sealed_clips import Sealed, seal_clip, upload

WINDOW = timedelta(minutes=10)  # the default of clip_view_audit_window_minutes


async def views(app: FastAPI, clip_id: str) -> list[AuditEvent]:
    async with app.state.sessionmaker() as db:
        query = (
            select(AuditEvent)
            .where(AuditEvent.tag == "clip:view", AuditEvent.target_id == clip_id)
            .order_by(AuditEvent.occurred_at)
        )
        return list((await db.scalars(query)).all())


async def home_with_clip(factory: Factory) -> tuple[uuid.UUID, User, Sealed, str]:
    owner = await factory.user()
    home = await factory.household(owner)
    camera = await factory.camera(owner, home)
    sealed = seal_clip(camera.id, camera.key, camera.recipients, 0, size=200_000)
    done = await upload(camera.client, sealed)
    assert done.status_code == 200, done.text
    return home, owner, sealed, str(done.json()["clip_id"])


def video_url(home: uuid.UUID, clip_id: str) -> str:
    return f"/api/v1/households/{home}/clips/{clip_id}/video"


async def test_a_viewing_that_skips_byte_zero_is_still_audited(
    factory: Factory, app: FastAPI
) -> None:
    """The attack: `Range: bytes=1-` streams all but one byte, and wrote no event."""
    home, owner, sealed, clip_id = await home_with_clip(factory)
    browser = await factory.signed_in(owner)
    part = await browser.get(video_url(home, clip_id), headers={"range": "bytes=1-"})
    assert part.status_code == 206 and part.content == sealed.plaintext[1:]
    # A suffix range never names byte 0 either.
    assert (await browser.get(video_url(home, clip_id), headers={"range": "bytes=-10"})).is_success
    [event] = await views(app, clip_id)
    assert event.actor_user_id == owner.id and event.household_id == home
    assert event.client_address == "198.51.100.7"


async def test_one_viewing_is_one_event_however_many_ranges(
    factory: Factory, app: FastAPI, clock: ManualClock
) -> None:
    home, owner, sealed, clip_id = await home_with_clip(factory)
    browser = await factory.signed_in(owner)
    url = video_url(home, clip_id)
    for header in ("bytes=0-1", "bytes=70000-", "bytes=5-99", "bytes=0-", None, "bytes=-100"):
        got = await browser.get(url, headers={"range": header} if header else {})
        assert got.is_success, (header, got.text)
    assert len(await views(app, clip_id)) == 1
    # Within the window, still the same viewing, even just before its end.
    clock.advance(WINDOW - timedelta(seconds=1))
    assert (await browser.get(url, headers={"range": "bytes=9-"})).status_code == 206
    assert len(await views(app, clip_id)) == 1
    # Past it, a seek that does not start at byte 0 opens the next viewing on record.
    clock.advance(timedelta(seconds=2))
    assert (await browser.get(url, headers={"range": "bytes=9-"})).status_code == 206
    assert len(await views(app, clip_id)) == 2
    # A refused range serves nothing and records nothing.
    clock.advance(WINDOW * 2)
    bad = await browser.get(url, headers={"range": f"bytes={len(sealed.plaintext)}-"})
    assert bad.status_code == 416
    assert len(await views(app, clip_id)) == 2


async def test_each_member_and_each_address_is_its_own_viewing(
    factory: Factory, app: FastAPI
) -> None:
    home, owner, _, clip_id = await home_with_clip(factory)
    partner = await factory.user()
    await factory.share(home, owner, partner)
    url = video_url(home, clip_id)
    at_home = await factory.signed_in(owner)
    elsewhere = await factory.signed_in(owner, address="203.0.113.9")
    shared = await factory.signed_in(partner)
    for client in (at_home, elsewhere, shared, at_home, elsewhere, shared):
        assert (await client.get(url, headers={"range": "bytes=3-"})).status_code == 206
    seen = {(e.actor_user_id, e.client_address) for e in await views(app, clip_id)}
    assert len(await views(app, clip_id)) == 3
    assert seen == {
        (owner.id, "198.51.100.7"),
        (owner.id, "203.0.113.9"),
        (partner.id, "198.51.100.7"),
    }


async def test_a_viewing_is_one_event_across_server_processes(
    factory: Factory, app: FastAPI, settings: Settings, clock: ManualClock
) -> None:
    """A second app on the same database shares nothing with the first but the database:
    it must see the first one's viewing, and one memory-only record would not."""
    home, owner, _, clip_id = await home_with_clip(factory)
    first = await factory.signed_in(owner)
    second_app = create_app(settings, clock=clock)
    async with second_app.router.lifespan_context(second_app):
        transport = httpx.ASGITransport(app=second_app, client=("198.51.100.7", 40001))
        async with httpx.AsyncClient(
            transport=transport, base_url=BASE_URL, cookies=first.cookies, headers=first.headers
        ) as second:
            url = video_url(home, clip_id)
            assert (await first.get(url, headers={"range": "bytes=0-1"})).status_code == 206
            assert (await second.get(url, headers={"range": "bytes=2-"})).status_code == 206
            assert len(await views(app, clip_id)) == 1
            clock.advance(WINDOW + timedelta(seconds=1))
            assert (await second.get(url, headers={"range": "bytes=2-"})).status_code == 206
            assert (await first.get(url, headers={"range": "bytes=5-"})).status_code == 206
            assert len(await views(app, clip_id)) == 2


@pytest.fixture
async def every_request_app(settings: Settings, clock: ManualClock) -> AsyncIterator[FastAPI]:
    strict = settings.model_copy(update={"clip_view_audit_window_minutes": 0})
    application = create_app(strict, clock=clock)
    async with application.router.lifespan_context(application):
        yield application


async def test_a_zero_window_audits_every_request(every_request_app: FastAPI) -> None:
    factory = Factory(every_request_app)
    home, owner, _, clip_id = await home_with_clip(factory)
    browser = await factory.signed_in(owner)
    for header in ("bytes=0-1", "bytes=2-", "bytes=2-"):
        assert (await browser.get(video_url(home, clip_id), headers={"range": header})).is_success
    assert len(await views(every_request_app, clip_id)) == 3


async def test_downloads_exports_and_thumbnails_are_audited_every_time(
    factory: Factory, app: FastAPI
) -> None:
    """The other routes that serve a clip's bytes: each fetch is on record."""
    home, owner, _, clip_id = await home_with_clip(factory)
    browser = await factory.signed_in(owner)
    base = f"/api/v1/households/{home}/clips/{clip_id}"
    for _ in range(2):
        for path in ("download", "sealed", "thumbnail"):
            assert (await browser.get(f"{base}/{path}")).status_code == 200, path
    async with app.state.sessionmaker() as db:
        rows = (
            await db.scalars(
                select(AuditEvent.tag).where(
                    AuditEvent.target_id == clip_id, AuditEvent.actor_user_id == owner.id
                )
            )
        ).all()
    assert sorted(rows) == ["clip:download"] * 4 + ["clip:thumbnail:view"] * 2
    # No other verb reaches the bytes unaudited (HEAD is not served by these routes).
    for path in ("video", "download", "sealed", "thumbnail"):
        head = await browser.head(f"{base}/{path}")
        assert head.status_code == 405 and head.content == b"", path
