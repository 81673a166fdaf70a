"""From an event to a push on a real push service and an e-mail on a real SMTP server:
who is told, what the rules silence, and every attempt recorded."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI

from doorwarden.clips.models import AlertKind, IntegrityAlert
from doorwarden.clock import ManualClock
from doorwarden.config import Settings
from doorwarden.events.models import EventKind
from doorwarden.notify.models import NotificationStatus
from doorwarden.roles import Role
from tests.factories import Factory
from tests.functional.notify.dispatch_setup import (
    add_event,
    dispatch,
    notifications_of,
    ring,
    settings_overrides,
)
from tests.push_service import PushService
from tests.smtp_server import SmtpServer


@pytest.fixture
def settings(settings: Settings, smtp: SmtpServer) -> Settings:
    return settings.model_copy(update=settings_overrides(smtp.port))


@pytest.fixture
def clock() -> ManualClock:
    # 12:00 in London (the factories' households): outside any quiet hours below.
    return ManualClock(datetime(2026, 12, 6, 12, 0, tzinfo=UTC))


async def test_a_ring_reaches_every_members_push_and_the_opted_in_inbox(
    app: FastAPI, factory: Factory, clock: ManualClock, push: PushService, smtp: SmtpServer
) -> None:
    owner, shared, stranger = await factory.user(), await factory.user(), await factory.user()
    home = await factory.household(owner)
    await factory.share(home, owner, shared)
    elsewhere = await factory.household(stranger, "Elsewhere")
    camera = await factory.camera(owner, home)
    await factory.camera(stranger, elsewhere)
    subs = {}
    for user in (owner, shared, stranger):
        client = await factory.signed_in(user)
        sub = push.subscribe()
        made = await client.post("/api/v1/account/push-subscriptions", json=sub.to_json("phone"))
        assert made.status_code == 201, made.text
        subs[user.id] = sub
        await client.aclose()
    # Staff subscribe to nothing and are nobody's household member.
    me = await factory.signed_in(owner)
    assert (
        await me.put(
            f"/api/v1/households/{home}/notification-rules", json={"kinds": ["ring"], "email": True}
        )
    ).status_code == 200
    event_id = await ring(camera.client, clock.now())
    await dispatch(app)
    received = push.received
    assert {r.token for r in received} == {subs[owner.id].token, subs[shared.id].token}
    payload = push.for_token(subs[owner.id].token)[0].json()
    assert set(payload) == {"v", "kind", "id", "title", "body", "url", "thumbnail", "at"}
    assert payload["v"] == 1 and payload["kind"] == "ring"
    assert payload["url"] == f"/households/{home}/cameras/{camera.id}/live"
    assert payload["thumbnail"] is None  # no clip linked yet
    assert "Home" not in (payload["title"] + payload["body"])  # never the household's name
    assert datetime.fromisoformat(payload["at"]) == clock.now()
    # The owner opted in to e-mail; the shared member did not.
    assert len(smtp.to(owner.email)) == 1 and smtp.to(shared.email) == []
    mail = smtp.to(owner.email)[0].message
    assert mail["Subject"] == payload["title"]
    assert f"/households/{home}/cameras/{camera.id}/live" in mail.get_payload(decode=True).decode()
    assert push.for_token(subs[stranger.id].token) == []
    # Each member sees their own deliveries, with every attempt.
    mine = (await me.get("/api/v1/account/notifications")).json()
    assert len(mine) == 1 and mine[0]["id"] == payload["id"] and mine[0]["status"] == "delivered"
    assert sorted((a["channel"], a["status"]) for a in mine[0]["attempts"]) == [
        ("email", "sent"),
        ("push", "sent"),
    ]
    assert (await notifications_of(app, stranger.id)) == []
    # Replayed: the same ring again makes nothing new; another run sends nothing again.
    await dispatch(app)
    assert len(push.received) == 2 and len(smtp.messages) == 1
    assert event_id
    # Staff have no notifications to list.
    auditor = await factory.signed_in(await factory.user(Role.auditor))
    assert (await auditor.get("/api/v1/account/notifications")).status_code == 403
    for limit in ("0", "201", "x"):
        assert (await me.get(f"/api/v1/account/notifications?limit={limit}")).status_code == 422
    await auditor.aclose()
    await me.aclose()


async def test_rules_decide_who_is_told_of_what(
    app: FastAPI, factory: Factory, clock: ManualClock
) -> None:
    owner, shared = await factory.user(), await factory.user()
    home = await factory.household(owner)
    await factory.share(home, owner, shared)
    front = await factory.camera(owner, home, "Front door")
    back = await factory.camera(owner, home, "Back door")
    me, them = await factory.signed_in(owner), await factory.signed_in(shared)
    rules = f"/api/v1/households/{home}/notification-rules"
    # Owner: only the front camera, quiet 11:00-13:00 London time, a 5 minute cooldown.
    assert (
        await me.put(
            rules,
            json={
                "cameras": [str(front.id)],
                "kinds": ["ring", "person", "motion"],
                "quiet_hours": {"start": "11:00", "end": "13:00"},
                "cooldown_s": 300,
            },
        )
    ).status_code == 200
    # Away: person and motion notify (at home only rings would).
    away = await me.put(f"/api/v1/households/{home}/mode", json={"mode": "away"})
    assert away.status_code == 200, away.text
    # Shared: rings only, no cooldown.
    assert (await them.put(rules, json={"kinds": ["ring"], "cooldown_s": 0})).status_code == 200
    now = clock.now()  # 12:00 UTC = 12:00 London: the owner's quiet hours
    await add_event(app, home, front.id, EventKind.person, now)  # quiet: silenced
    await ring(front.client, now)  # a ring ignores quiet hours
    await add_event(app, home, back.id, EventKind.person, now)  # not the owner's camera
    await dispatch(app)
    assert [n.kind for n in await notifications_of(app, owner.id)] == ["ring"]
    assert [n.kind for n in await notifications_of(app, shared.id)] == ["ring"]
    # After the quiet hours: a person, then motion 60 s later (cooldown), then a ring.
    later = now + timedelta(hours=2)
    clock.advance(timedelta(hours=2))
    await add_event(app, home, front.id, EventKind.person, later)
    await add_event(app, home, front.id, EventKind.motion, later + timedelta(seconds=60))
    await ring(front.client, later + timedelta(seconds=90))  # rings ignore the cooldown
    await add_event(app, home, front.id, EventKind.motion, later + timedelta(seconds=400))
    await dispatch(app)
    owners = [(n.kind, n.occurred_at - later) for n in await notifications_of(app, owner.id)]
    assert owners[1:] == [
        ("person", timedelta(0)),
        # motion at +60 s: within the person's 300 s cooldown, silenced
        ("ring", timedelta(seconds=90)),  # rings ignore the cooldown
        ("motion", timedelta(seconds=400)),  # 310 s after the ring: past the cooldown
    ]
    assert [n.kind for n in await notifications_of(app, shared.id)] == ["ring", "ring"]
    await me.aclose()
    await them.aclose()


async def test_an_integrity_alert_tells_owners_only(
    app: FastAPI, factory: Factory, clock: ManualClock, smtp: SmtpServer
) -> None:
    owner, shared = await factory.user(), await factory.user()
    home = await factory.household(owner)
    await factory.share(home, owner, shared)
    camera = await factory.camera(owner, home)
    for user in (owner, shared):
        client = await factory.signed_in(user)
        put = await client.put(
            f"/api/v1/households/{home}/notification-rules",
            json={"kinds": ["integrity_alert"], "email": True},
        )
        assert put.status_code == 200
        await client.aclose()
    async with app.state.sessionmaker.begin() as db:
        db.add(
            IntegrityAlert(
                id=uuid.uuid4(),
                household_id=home,
                device_id=camera.id,
                sequence=3,
                kind=AlertKind.gap,
                detail="clip 2 is missing",
                created_at=clock.now(),
            )
        )
    await dispatch(app)
    await dispatch(app)  # handled once
    (note,) = await notifications_of(app, owner.id)
    assert note.kind == "integrity_alert" and note.status is NotificationStatus.delivered
    assert note.url == f"/households/{home}/cameras"
    assert await notifications_of(app, shared.id) == []
    assert len(smtp.to(owner.email)) == 1 and smtp.to(shared.email) == []
