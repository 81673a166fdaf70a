"""A court-sealed hold is not revealed to its target by a refused deletion (issue 16, item 8).

While a non-disclosure order runs, deleting a held clip answers as any clip that cannot be
deleted now (`409 not_deletable_now`, a message naming no legal process), on the API and
on the player page alike. A hold the household has been told of keeps saying what it is.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from doorwarden.accounts.models import User
from doorwarden.clips.models import Clip, ClipHold, ClipStatus
from doorwarden.clock import ManualClock
from tests.factories import Factory, assert_error
from tests.sealed_clips import seal_clip, upload

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
# What would tell a resident that a legal process touches the clip.
TELLING = ("legal", "hold", "court", "order", "warrant", "preserv", "disclos", "request")


async def held_clip(
    factory: Factory, app: FastAPI, *, hidden_until: datetime | None
) -> tuple[uuid.UUID, str, User]:
    """A household's clip under one hold, and its owner."""
    owner = await factory.user()
    home = await factory.household(owner)
    camera = await factory.camera(owner, home)
    sealed = seal_clip(camera.id, camera.key, camera.recipients, 0, size=3000)
    done = await upload(camera.client, sealed)
    assert done.status_code == 200, done.text
    clip_id = str(done.json()["clip_id"])
    await add_hold(app, clip_id, hidden_until=hidden_until)
    return home, clip_id, owner


async def clients_of(factory: Factory, owner: User) -> tuple[httpx.AsyncClient, httpx.AsyncClient]:
    """The owner's API client, and a browser whose forms carry their own CSRF token."""
    page = await factory.signed_in(owner)
    del page.headers["x-csrf-token"]
    return await factory.signed_in(owner), page


async def add_hold(app: FastAPI, clip_id: str, *, hidden_until: datetime | None) -> None:
    async with app.state.sessionmaker.begin() as db:
        db.add(
            ClipHold(
                clip_id=uuid.UUID(clip_id),
                reason="Preservation request (case 2026-CR-17)",
                hidden_until=hidden_until,
            )
        )


async def delete_on_page(page: httpx.AsyncClient, home: uuid.UUID, clip_id: str) -> httpx.Response:
    player = f"/households/{home}/clips/{clip_id}"
    shown = await page.get(player)
    assert shown.status_code == 200, shown.text
    token = CSRF_FIELD.search(shown.text)
    assert token is not None
    return await page.post(
        f"{player}/delete", data={"confirm": "yes", "csrf_token": token.group(1)}
    )


def main_part(html: str) -> str:
    """The page without its shared header and footer (which link the legal-process policy)."""
    start, end = html.find("<main"), html.find("</main>")
    assert start != -1 and end != -1, html
    return html[start:end]


async def clip_status(app: FastAPI, clip_id: str) -> ClipStatus:
    async with app.state.sessionmaker() as db:
        status = await db.scalar(select(Clip.status).where(Clip.id == uuid.UUID(clip_id)))
        assert status is not None
        return status


async def test_a_sealed_hold_answers_as_a_clip_that_cannot_go_now(
    factory: Factory, app: FastAPI, clock: ManualClock
) -> None:
    """The attack: the target deletes a clip and reads `legal_hold` in the refusal."""
    until = clock.now() + timedelta(days=30)
    home, clip_id, owner = await held_clip(factory, app, hidden_until=until)
    api, page = await clients_of(factory, owner)

    refused = await api.delete(f"/api/v1/households/{home}/clips/{clip_id}")
    error = assert_error(refused, 409, "not_deletable_now")
    assert error["details"] is None
    said = refused.text.lower()
    assert not [word for word in TELLING if word in said], said
    assert until.isoformat()[:10] not in refused.text

    shown = await delete_on_page(page, home, clip_id)
    assert shown.status_code == 409
    body = main_part(shown.text)
    assert str(error["message"]) in body  # the same answer as the API's
    assert "<video" in body  # the player, not an error page
    told = body.lower().replace(str(error["message"]).lower(), "")
    assert 'id="legal-hold"' not in told and "legal" not in told, body
    assert until.isoformat()[:10] not in shown.text
    assert await clip_status(app, clip_id) is ClipStatus.verified


async def test_once_the_order_ends_the_hold_says_what_it_is(
    factory: Factory, app: FastAPI, clock: ManualClock
) -> None:
    until = clock.now() + timedelta(days=30)
    home, clip_id, owner = await held_clip(factory, app, hidden_until=until)
    clock.advance(timedelta(days=30, seconds=1))
    api, page = await clients_of(factory, owner)  # a month on: a fresh session
    refused = await api.delete(f"/api/v1/households/{home}/clips/{clip_id}")
    assert "legal hold" in str(assert_error(refused, 409, "legal_hold")["message"])
    shown = await delete_on_page(page, home, clip_id)
    assert shown.status_code == 409 and "under a legal hold" in shown.text
    assert 'id="legal-hold"' in shown.text


async def test_a_hold_the_household_knows_of_is_named_beside_a_sealed_one(
    factory: Factory, app: FastAPI, clock: ManualClock
) -> None:
    """Naming the told hold reveals nothing the page does not already show."""
    home, clip_id, owner = await held_clip(
        factory, app, hidden_until=clock.now() + timedelta(days=30)
    )
    api, _ = await clients_of(factory, owner)
    await add_hold(app, clip_id, hidden_until=None)
    refused = await api.delete(f"/api/v1/households/{home}/clips/{clip_id}")
    assert_error(refused, 409, "legal_hold")


async def test_a_released_sealed_hold_no_longer_stops_the_owner(
    factory: Factory, app: FastAPI, clock: ManualClock
) -> None:
    home, clip_id, owner = await held_clip(
        factory, app, hidden_until=clock.now() + timedelta(days=30)
    )
    api, _ = await clients_of(factory, owner)
    async with app.state.sessionmaker.begin() as db:
        for hold in (await db.scalars(select(ClipHold))).all():
            hold.released_at = clock.now()
    deleted = await api.delete(f"/api/v1/households/{home}/clips/{clip_id}")
    assert deleted.status_code == 204, deleted.text
