"""Delivery when things fail, with the app clock moved by hand: a mail server that is down
(every attempt recorded failed, retried on the backoff, delivered once it is back, nothing
lost and nothing sent twice), the day after which a notification is given up, a push
service that says a subscription is gone (410: removed, audited, recorded expired), and
one that says "later" (429 with Retry-After: nothing sent before then)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text

from doorwarden.audit.models import AuditEvent
from doorwarden.clock import ManualClock
from doorwarden.config import Settings
from doorwarden.notify.dispatch import BACKOFF_MAX_S, GIVE_UP, JOB_NAME, backoff_s
from doorwarden.notify.models import Notification, NotificationAttempt, NotificationStatus
from doorwarden.notify.push_models import PushSubscription
from doorwarden.scheduler import lock_key
from tests.factories import Camera, Factory
from tests.functional.notify.dispatch_setup import (
    dispatch,
    notifications_of,
    ring,
    settings_overrides,
)
from tests.push_service import BrowserSubscription, PushService
from tests.smtp_server import SmtpServer


@pytest.fixture
def settings(settings: Settings, smtp: SmtpServer) -> Settings:
    return settings.model_copy(update=settings_overrides(smtp.port))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 12, 6, 12, 0, tzinfo=UTC))


@dataclass
class Member:
    user_id: uuid.UUID
    email: str
    client: httpx.AsyncClient
    camera: Camera
    subs: list[BrowserSubscription]


async def member(factory: Factory, push: PushService, *, email: bool, phones: int = 1) -> Member:
    """An owner with one camera, `phones` push subscriptions, rings only, e-mail or not."""
    owner = await factory.user()
    home = await factory.household(owner)
    camera = await factory.camera(owner, home)
    client = await factory.signed_in(owner)
    subs = []
    for n in range(phones):
        sub = push.subscribe()
        made = await client.post(
            "/api/v1/account/push-subscriptions", json=sub.to_json(f"phone {n}")
        )
        assert made.status_code == 201, made.text
        subs.append(sub)
    rules = await client.put(
        f"/api/v1/households/{home}/notification-rules",
        json={"kinds": ["ring"], "cooldown_s": 0, "email": email},
    )
    assert rules.status_code == 200, rules.text
    return Member(owner.id, owner.email, client, camera, subs)


async def attempts_of(app: FastAPI, notification_id: uuid.UUID) -> list[NotificationAttempt]:
    async with app.state.sessionmaker() as db:
        rows = await db.scalars(
            select(NotificationAttempt)
            .where(NotificationAttempt.notification_id == notification_id)
            .order_by(NotificationAttempt.at, NotificationAttempt.id)
        )
        return list(rows)


async def only_notification(app: FastAPI, user_id: uuid.UUID) -> Notification:
    (note,) = await notifications_of(app, user_id)
    return note


async def test_mail_server_down_is_retried_on_the_backoff_and_delivered_once_when_back(
    app: FastAPI, factory: Factory, clock: ManualClock, push: PushService, smtp: SmtpServer
) -> None:
    me = await member(factory, push, email=True)
    smtp.stop()
    await ring(me.camera.client, clock.now())
    await dispatch(app)
    note = await only_notification(app, me.user_id)
    # The push went; the e-mail failed, was recorded, and waits the first backoff.
    assert len(push.received) == 1
    attempts = await attempts_of(app, note.id)
    assert sorted((a.channel, a.status) for a in attempts) == [
        ("email", "failed"),
        ("push", "sent"),
    ]
    failed = next(a for a in attempts if a.channel == "email")
    assert failed.error and failed.subscription_id is None
    assert note.status is NotificationStatus.pending and note.tries == 1
    assert note.next_attempt_at == clock.now() + timedelta(seconds=backoff_s(1))
    assert backoff_s(1) == 5.0 and backoff_s(2) == 10.0 and backoff_s(3) == 20.0

    # Not due yet: nothing is tried.
    clock.advance(timedelta(seconds=backoff_s(1) - 1))
    await dispatch(app)
    assert len(await attempts_of(app, note.id)) == 2
    # Due, still down: one more failed e-mail, the push not sent again, a longer wait.
    clock.advance(timedelta(seconds=1))
    await dispatch(app)
    note = await only_notification(app, me.user_id)
    attempts = await attempts_of(app, note.id)
    assert [(a.channel, a.status) for a in attempts][-1] == ("email", "failed")
    assert len(attempts) == 3 and len(push.received) == 1
    assert note.tries == 2 and note.next_attempt_at == clock.now() + timedelta(seconds=10)
    # The member sees every attempt, and when the next one is.
    listed = (await me.client.get("/api/v1/account/notifications")).json()
    assert listed[0]["status"] == "pending"
    assert [a["status"] for a in listed[0]["attempts"] if a["channel"] == "email"] == [
        "failed",
        "failed",
    ]
    assert datetime.fromisoformat(listed[0]["next_attempt_at"]) == note.next_attempt_at

    # The mail server is back: at the next due time the e-mail goes, once.
    smtp.start()
    clock.advance(timedelta(seconds=10))
    await dispatch(app)
    note = await only_notification(app, me.user_id)
    assert note.status is NotificationStatus.delivered and note.next_attempt_at is None
    assert len(smtp.to(me.email)) == 1 and len(push.received) == 1
    statuses = [(a.channel, a.status) for a in await attempts_of(app, note.id)]
    assert statuses.count(("email", "sent")) == 1 and statuses.count(("push", "sent")) == 1
    # Nothing more, however long one waits.
    clock.advance(timedelta(hours=2))
    await dispatch(app)
    assert len(smtp.messages) == 1 and len(push.received) == 1
    assert len(await attempts_of(app, note.id)) == len(statuses)
    await me.client.aclose()


async def test_several_rings_while_mail_is_down_all_arrive_once(
    app: FastAPI, factory: Factory, clock: ManualClock, push: PushService, smtp: SmtpServer
) -> None:
    me = await member(factory, push, email=True, phones=2)
    smtp.stop()
    for n in range(5):
        await ring(me.camera.client, clock.now() + timedelta(seconds=n))
        await dispatch(app)
        clock.advance(timedelta(seconds=7))  # a ring's minute allows six
    # Each retried a few times meanwhile; the server comes back.
    smtp.start()
    clock.advance(timedelta(minutes=5))
    await dispatch(app)
    notes = await notifications_of(app, me.user_id)
    assert len(notes) == 5 and {n.status for n in notes} == {NotificationStatus.delivered}
    ids = sorted(m.message["Message-ID"] for m in smtp.to(me.email))
    assert len(ids) == 5 and len(set(ids)) == 5
    for sub in me.subs:
        assert len(push.for_token(sub.token)) == 5
    assert sorted(r.json()["id"] for r in push.received) == sorted([str(n.id) for n in notes] * 2)
    await me.client.aclose()


async def test_a_notification_failing_for_a_day_is_given_up_and_says_so(
    app: FastAPI, factory: Factory, clock: ManualClock, push: PushService, smtp: SmtpServer
) -> None:
    me = await member(factory, push, email=True, phones=0)
    smtp.stop()
    made = clock.now()
    await ring(me.camera.client, made)
    waits = []
    while True:
        await dispatch(app)
        note = await only_notification(app, me.user_id)
        if note.next_attempt_at is None:
            break
        waits.append((note.next_attempt_at - clock.now()).total_seconds())
        clock.advance(note.next_attempt_at - clock.now())
        assert clock.now() - made < GIVE_UP + timedelta(seconds=BACKOFF_MAX_S)
    # 5 s doubling to the hour, then hourly, until a day after it was made.
    doubling = [backoff_s(n) for n in range(1, 11)]
    assert waits[:10] == doubling and doubling[-1] < BACKOFF_MAX_S
    assert waits[10:] and set(waits[10:]) == {BACKOFF_MAX_S}
    assert note.status is NotificationStatus.gave_up and note.done_at == clock.now()
    assert clock.now() - made >= GIVE_UP
    attempts = await attempts_of(app, note.id)
    assert len(attempts) == len(waits) + 1 and {a.status for a in attempts} == {"failed"}
    listed = (await me.client.get("/api/v1/account/notifications")).json()
    assert listed[0]["status"] == "gave_up" and listed[0]["next_attempt_at"] is None
    assert len(listed[0]["attempts"]) == len(attempts)
    # Given up is final: the server coming back sends nothing.
    smtp.start()
    clock.advance(timedelta(hours=1))
    await dispatch(app)
    assert smtp.messages == [] and len(await attempts_of(app, note.id)) == len(attempts)
    await me.client.aclose()


async def test_a_gone_subscription_is_removed_audited_and_recorded_expired(
    app: FastAPI, factory: Factory, clock: ManualClock, push: PushService
) -> None:
    me = await member(factory, push, email=False, phones=2)
    gone, alive = me.subs
    push.respond(gone.token, 410)
    await ring(me.camera.client, clock.now())
    await dispatch(app)
    note = await only_notification(app, me.user_id)
    attempts = await attempts_of(app, note.id)
    assert sorted((a.status, a.http_status) for a in attempts) == [
        ("expired", 410),
        ("sent", 201),
    ]
    # Delivered (the other phone took it), not retried for the gone one.
    assert note.status is NotificationStatus.delivered
    listed = (await me.client.get("/api/v1/account/push-subscriptions")).json()
    assert [s["label"] for s in listed] == ["phone 1"]
    expired = next(a for a in attempts if a.status == "expired")
    async with app.state.sessionmaker() as db:
        assert await db.get(PushSubscription, expired.subscription_id) is None
        audited = await db.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(
                AuditEvent.tag == "push:subscription:expire",
                AuditEvent.target_id == str(expired.subscription_id),
            )
        )
    assert audited == 1
    # The next ring goes to the phone that is left, and tries the gone one no more.
    clock.advance(timedelta(seconds=30))
    await ring(me.camera.client, clock.now())
    await dispatch(app)
    assert len(push.for_token(alive.token)) == 2 and push.for_token(gone.token) == []
    # A member whose only subscription is gone: recorded, nothing left to try.
    push.respond(alive.token, 404)
    clock.advance(timedelta(seconds=30))
    await ring(me.camera.client, clock.now())
    await dispatch(app)
    last = (await notifications_of(app, me.user_id))[-1]
    assert [(a.status, a.http_status) for a in await attempts_of(app, last.id)] == [
        ("expired", 404)
    ]
    assert last.status is NotificationStatus.gave_up and last.next_attempt_at is None
    assert (await me.client.get("/api/v1/account/push-subscriptions")).json() == []
    await me.client.aclose()


async def test_a_push_service_429_is_retried_no_sooner_than_its_retry_after(
    app: FastAPI, factory: Factory, clock: ManualClock, push: PushService
) -> None:
    me = await member(factory, push, email=False, phones=2)
    busy, fine = me.subs
    push.respond(busy.token, 429, {"Retry-After": "120"})
    await ring(me.camera.client, clock.now())
    await dispatch(app)
    note = await only_notification(app, me.user_id)
    attempts = await attempts_of(app, note.id)
    assert sorted((a.status, a.http_status) for a in attempts) == [
        ("failed", 429),
        ("sent", 201),
    ]
    # Retry-After (120 s) beats the first backoff (5 s).
    assert note.status is NotificationStatus.pending
    assert note.next_attempt_at == clock.now() + timedelta(seconds=120)
    push.respond(busy.token, 201)
    clock.advance(timedelta(seconds=119))
    await dispatch(app)
    assert push.for_token(busy.token) == [] and len(await attempts_of(app, note.id)) == 2
    clock.advance(timedelta(seconds=1))
    await dispatch(app)
    assert len(push.for_token(busy.token)) == 1
    assert len(push.for_token(fine.token)) == 1  # the phone that took it is not sent again
    note = await only_notification(app, me.user_id)
    assert note.status is NotificationStatus.delivered
    # A Retry-After shorter than the backoff: the backoff wins; an HTTP date is ignored.
    for retry_after, wait in (("1", 5.0), ("Wed, 21 Oct 2026 07:28:00 GMT", 5.0)):
        push.respond(busy.token, 429, {"Retry-After": retry_after})
        clock.advance(timedelta(seconds=30))
        await ring(me.camera.client, clock.now())
        await dispatch(app)
        last = (await notifications_of(app, me.user_id))[-1]
        assert last.next_attempt_at == clock.now() + timedelta(seconds=wait)
    # A 5xx is retried too, and a 400 is the service's final word: not retried.
    push.respond(busy.token, 503)
    clock.advance(timedelta(seconds=30))
    await ring(me.camera.client, clock.now())
    await dispatch(app)
    last = (await notifications_of(app, me.user_id))[-1]
    assert last.status is NotificationStatus.pending
    push.respond(busy.token, 400)
    clock.advance(timedelta(seconds=30))
    await ring(me.camera.client, clock.now())
    await dispatch(app)
    last = (await notifications_of(app, me.user_id))[-1]
    assert last.status is NotificationStatus.delivered and last.next_attempt_at is None
    await me.client.aclose()


async def test_a_wake_that_finds_the_job_busy_sends_the_ring_once_it_is_free(
    app: FastAPI, factory: Factory, clock: ManualClock, push: PushService, settings: Settings
) -> None:
    """On PostgreSQL a turn holds the job's advisory lock (the 1 s tick, or another
    instance), and may have claimed before the ring committed: the ring's wake waits for
    the lock rather than leave the ring to the next tick."""
    if not str(settings.database_url).startswith("postgresql"):
        pytest.skip("the job's lock is PostgreSQL's (SQLite serves one process)")
    me = await member(factory, push, email=False)
    async with app.state.sessionmaker() as db:
        await db.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(JOB_NAME)})
        await ring(me.camera.client, clock.now())  # its wake finds the lock taken
        await asyncio.sleep(0.1)  # the wake tries meanwhile (no time is asserted)
        assert push.received == []
        await db.rollback()  # the lock is released
    await app.state.notify_dispatcher.idle()  # only the wake ran the job: no dispatch()
    assert len(push.received) == 1
    assert (await only_notification(app, me.user_id)).status is NotificationStatus.delivered
    await me.client.aclose()
