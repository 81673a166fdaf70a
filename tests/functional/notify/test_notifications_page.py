"""The notifications page: a member's own rules as a form (saved by the same service and
validation as the API) and their recent deliveries, each with every attempt."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from doorwarden.accounts.models import User
from doorwarden.audit.models import AuditEvent
from doorwarden.audit.tags import Tag
from doorwarden.clock import ManualClock
from doorwarden.config import Settings
from doorwarden.roles import Role
from tests.factories import Factory, make_client
from tests.functional.notify.dispatch_setup import dispatch, ring, settings_overrides
from tests.push_service import PushService

DEFAULTS = {
    "cameras": None,
    "kinds": ["ring", "person", "integrity_alert", "legal_notice"],
    "quiet_hours": None,
    "cooldown_s": 60,
    "email": False,
    "saved": False,
}
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def push() -> Iterator[PushService]:
    with PushService() as service:
        yield service


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update=settings_overrides(None))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 12, 6, 12, 0, tzinfo=UTC))


def checked(html: str, name: str, value: str) -> bool:
    tag = re.search(rf'<input type="checkbox" name="{name}" value="{re.escape(value)}"[^>]*>', html)
    assert tag is not None, (name, value)
    return " checked" in tag.group(0)


async def form_client(factory: Factory, user: User, page: str) -> httpx.AsyncClient:
    """A signed-in browser: the CSRF token from the page's form, not the API header."""
    client = await factory.signed_in(user)
    del client.headers["x-csrf-token"]
    seen = await client.get(page)
    assert seen.status_code == 200, seen.text
    match = TOKEN.search(seen.text)
    assert match is not None
    client.headers["x-test-token"] = match.group(1)
    return client


def with_token(client: httpx.AsyncClient, data: Mapping[str, object]) -> dict[str, object]:
    return {"csrf_token": client.headers["x-test-token"], **data}


async def test_the_form_shows_the_defaults_and_saves_through_the_service(
    app: FastAPI, factory: Factory
) -> None:
    owner, shared = await factory.user(), await factory.user()
    home = await factory.household(owner)
    await factory.share(home, owner, shared)
    front = await factory.camera(owner, home, "Front door")
    back = await factory.camera(owner, home, "Back door")
    page = f"/households/{home}/notifications"
    api = f"/api/v1/households/{home}/notification-rules"
    me = await form_client(factory, owner, page)

    html = (await me.get(page)).text
    assert "these are the defaults" in html
    assert checked(html, "all_cameras", "1")
    for camera in (front, back):
        assert not checked(html, "cameras", str(camera.id))
    for kind in DEFAULTS["kinds"]:  # type: ignore[union-attr]
        assert checked(html, "kinds", kind)
    assert not checked(html, "kinds", "motion")
    assert not checked(html, "email", "1")
    assert 'name="cooldown_s" type="number" min="0" max="86400" step="1" value="60"' in html
    assert "No notifications yet." in html
    # The household page links here.
    assert f'href="{page}"' in (await me.get(f"/households/{home}")).text

    saved = await me.post(
        page,
        data=with_token(
            me,
            {
                "cameras": [str(back.id)],
                "kinds": ["motion", "ring"],
                "quiet_start": "22:30",
                "quiet_end": "07:00",
                "cooldown_s": "0",
                "email": "1",
            },
        ),
    )
    assert saved.status_code == 303, saved.text
    assert saved.headers["location"] == f"{page}?done=saved"
    rules = {
        "cameras": [str(back.id)],
        "kinds": ["ring", "motion"],
        "quiet_hours": {"start": "22:30", "end": "07:00"},
        "cooldown_s": 0,
        "email": True,
        "saved": True,
    }
    token = await factory.with_token(owner)
    assert (await token.get(api)).json() == rules
    html = (await me.get(saved.headers["location"])).text
    assert "Your notification rules are saved." in html
    assert not checked(html, "all_cameras", "1")
    assert checked(html, "cameras", str(back.id)) and not checked(html, "cameras", str(front.id))
    assert checked(html, "kinds", "motion") and not checked(html, "kinds", "person")
    assert 'value="22:30"' in html and 'value="07:00"' in html
    assert checked(html, "email", "1")
    # The shared member's rules are their own: still the defaults.
    them = await factory.with_token(shared)
    assert (await them.get(api)).json() == DEFAULTS

    # Back to every camera, no quiet hours, nothing by e-mail.
    again = await me.post(
        page, data=with_token(me, {"all_cameras": "1", "kinds": ["ring"], "cooldown_s": "30"})
    )
    assert again.status_code == 303, again.text
    assert (await token.get(api)).json() == {
        "cameras": None,
        "kinds": ["ring"],
        "quiet_hours": None,
        "cooldown_s": 30,
        "email": False,
        "saved": True,
    }
    for client in (me, token, them, front.client, back.client):
        await client.aclose()


async def test_a_refused_form_comes_back_with_the_reason_and_saves_nothing(
    app: FastAPI, factory: Factory
) -> None:
    owner, other = await factory.user(), await factory.user()
    home, elsewhere = await factory.household(owner), await factory.household(other, "B")
    mine = await factory.camera(owner, home, "Front door")
    theirs = await factory.camera(other, elsewhere, "Their door")
    page = f"/households/{home}/notifications"
    api = f"/api/v1/households/{home}/notification-rules"
    me = await form_client(factory, owner, page)
    token = await factory.with_token(owner)
    good = {"kinds": ["ring"], "cooldown_s": "60"}
    bad_forms = [
        ({**good, "cameras": [str(theirs.id)]}, "not cameras of this household"),
        ({**good, "cameras": [str(mine.id), str(uuid.uuid4())]}, "not cameras of this household"),
        ({**good, "cameras": ["not-an-id"]}, "Cameras:"),
        ({**good, "quiet_start": "25:00", "quiet_end": "07:00"}, "Quiet hours: a time of day"),
        ({**good, "quiet_start": "7am", "quiet_end": "09:00"}, "Quiet hours: a time of day"),
        ({**good, "quiet_start": "22:00"}, "Quiet hours: give both a start and an end"),
        ({**good, "quiet_start": "08:00", "quiet_end": "08:00"}, "Quiet hours: start and end"),
        ({**good, "cooldown_s": "86401"}, "Cooldown:"),
        ({**good, "cooldown_s": "soon"}, "Cooldown: a whole number of seconds"),
        ({**good, "kinds": ["ring", "fireworks"]}, "Kinds:"),
    ]
    for data, reason in bad_forms:
        refused = await me.post(page, data=with_token(me, data))
        assert refused.status_code == 400, (data, refused.text)
        assert reason in refused.text, (data, refused.text)
        assert 'role="alert"' in refused.text
        # Nothing saved, and no audit record either.
        assert (await token.get(api)).json() == DEFAULTS, data
    # The form comes back as typed.
    refused = await me.post(
        page,
        data=with_token(me, {"kinds": ["motion"], "quiet_start": "25:00", "quiet_end": "07:00"}),
    )
    assert 'value="25:00"' in refused.text
    assert checked(refused.text, "kinds", "motion") and not checked(refused.text, "kinds", "ring")
    async with app.state.sessionmaker() as db:
        tags = await db.scalars(select(AuditEvent.tag).where(AuditEvent.household_id == home))
        assert Tag.notify_rules_update not in set(tags)
    for client in (me, token, mine.client, theirs.client):
        await client.aclose()


async def test_csrf_staff_strangers_and_the_signed_out(app: FastAPI, factory: Factory) -> None:
    owner = await factory.user()
    home = await factory.household(owner)
    page = f"/households/{home}/notifications"
    api = f"/api/v1/households/{home}/notification-rules"
    form = {"all_cameras": "1", "kinds": ["ring"], "cooldown_s": "60"}
    # A signed-in browser without the token (no header, no field) is refused.
    me = await factory.signed_in(owner)
    del me.headers["x-csrf-token"]
    assert (await me.post(page, data=form)).status_code == 403
    assert (await me.post(page, data={**form, "csrf_token": "forged"})).status_code == 403
    token = await factory.with_token(owner)
    assert (await token.get(api)).json() == DEFAULTS
    for role in (Role.operator_admin, Role.auditor, Role.legal_reviewer):
        staff = await factory.signed_in(await factory.user(role))
        assert (await staff.get(page)).status_code == 403
        assert (await staff.post(page, data=form)).status_code == 403
        await staff.aclose()
    stranger = await factory.signed_in(await factory.user())
    assert (await stranger.get(page)).status_code == 403
    assert (await stranger.post(page, data=form)).status_code == 403
    assert (await token.get(api)).json() == DEFAULTS
    anonymous = make_client(app)
    response = await anonymous.get(page)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")
    for client in (me, token, stranger, anonymous):
        await client.aclose()


async def test_the_page_lists_a_rings_delivery_with_its_attempts(
    app: FastAPI, factory: Factory, clock: ManualClock, push: PushService
) -> None:
    owner, other = await factory.user(), await factory.user()
    home, elsewhere = await factory.household(owner), await factory.household(other, "B")
    camera = await factory.camera(owner, home)
    their_camera = await factory.camera(other, elsewhere)
    me = await factory.signed_in(owner)
    made = await me.post(
        "/api/v1/account/push-subscriptions", json=push.subscribe().to_json("phone")
    )
    assert made.status_code == 201, made.text
    await ring(camera.client, clock.now())
    await dispatch(app)
    listed = (await me.get("/api/v1/account/notifications")).json()
    assert len(listed) == 1 and listed[0]["status"] == "delivered"

    html = (await me.get(f"/households/{home}/notifications")).text
    assert 'id="deliveries"' in html
    row = html.split('id="deliveries"', 1)[1]
    assert listed[0]["title"] in row
    assert "<td>ring</td>" in row and "<td>delivered</td>" in row
    assert "push: sent, <time" in row
    assert clock.now().strftime("%Y-%m-%d %H:%M") in row
    # Another household's page of one's own lists only that household's deliveries.
    await factory.share(elsewhere, other, owner)
    theirs = (await me.get(f"/households/{elsewhere}/notifications")).text
    assert "No notifications yet." in theirs
    for client in (me, camera.client, their_camera.client):
        await client.aclose()
