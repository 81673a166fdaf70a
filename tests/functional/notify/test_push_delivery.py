"""send_push through a real push service on loopback (tests/push_service.py): the payload
decrypts with the browser's keys, the VAPID JWT verifies, TTL and Urgency arrive; dead
subscriptions come back as expired and are removed; failures say whether to retry."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from doorwarden.audit.models import AuditEvent
from doorwarden.clock import ManualClock
from doorwarden.config import Settings
from doorwarden.main import create_app
from doorwarden.notify import subscriptions
from doorwarden.notify.push import PushSender, PushStatus, send_push
from doorwarden.notify.push_models import PushSubscription
from doorwarden.notify.vapid import instance_vapid_key
from tests.factories import Factory
from tests.push_service import BrowserSubscription, PushService

URL = "/api/v1/account/push-subscriptions"
PAYLOAD = {
    "v": 1,
    "kind": "ring",
    "id": str(uuid.uuid4()),
    "title": "Someone is at the door",
    "body": "Front door · à l'instant",
    "url": f"/households/{uuid.uuid4()}/live/{uuid.uuid4()}",
    "thumbnail": None,
    "at": "2026-12-06T11:00:00+00:00",
}


@pytest.fixture
def push_service() -> Iterator[PushService]:
    with PushService() as service:
        yield service


@pytest.fixture
async def dev_app(settings: Settings, clock: ManualClock) -> AsyncIterator[FastAPI]:
    """Development mode: plain-http loopback endpoints are allowed (as in the demo)."""
    application = create_app(settings.model_copy(update={"development": True}), clock=clock)
    async with application.router.lifespan_context(application):
        yield application


async def _subscribed(app: FastAPI, browser: BrowserSubscription) -> PushSubscription:
    factory = Factory(app)
    c = await factory.signed_in(await factory.user())
    created = await c.post(URL, json=browser.to_json("Laptop"))
    assert created.status_code == 201, created.text
    async with app.state.sessionmaker() as db:
        row = await db.get(PushSubscription, uuid.UUID(created.json()["id"]))
        assert row is not None
        db.expunge(row)
        return row


async def test_a_push_arrives_decrypted_with_a_valid_vapid_jwt(
    dev_app: FastAPI, push_service: PushService
) -> None:
    browser = push_service.subscribe()
    row = await _subscribed(dev_app, browser)
    settings = dev_app.state.settings
    vapid = instance_vapid_key(settings)
    sent_at = datetime.now().astimezone()
    result = await send_push(row, PAYLOAD, ttl=90, urgency="high", vapid=vapid, development=True)
    assert result.status is PushStatus.sent, result
    assert result.http_status == 201 and result.error is None
    (message,) = push_service.for_token(browser.token)
    assert message.json() == PAYLOAD
    assert message.headers["ttl"] == "90" and message.headers["urgency"] == "high"
    assert message.headers["content-encoding"] == "aes128gcm"
    assert message.claims["aud"] == push_service.origin
    assert message.claims["sub"] == settings.public_base_url.rstrip("/")
    assert message.claims["exp"] <= sent_at.timestamp() + 12 * 3600 + 1
    # k= is the key browsers were given to subscribe with.
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=dev_app), base_url="http://t"
    ) as c:
        assert message.vapid_key == (await c.get("/api/v1/notify/vapid-public-key")).json()["key"]
    assert push_service.refused == []


async def test_a_gone_subscription_is_expired_and_removed(
    dev_app: FastAPI, push_service: PushService
) -> None:
    browser = push_service.subscribe()
    row = await _subscribed(dev_app, browser)
    vapid = instance_vapid_key(dev_app.state.settings)
    for status in (410, 404):
        push_service.respond(browser.token, status)
        result = await send_push(row, PAYLOAD, ttl=60, vapid=vapid, development=True)
        assert result.status is PushStatus.expired and result.http_status == status
    now = dev_app.state.clock.now()
    async with dev_app.state.sessionmaker.begin() as db:
        assert await subscriptions.remove_expired(
            db, subscription_id=row.id, http_status=410, now=now
        )
    async with dev_app.state.sessionmaker.begin() as db:
        assert await db.get(PushSubscription, row.id) is None
        expired = AuditEvent.tag == "push:subscription:expire"
        assert await db.scalar(select(func.count()).select_from(AuditEvent).where(expired)) == 1
        # Twice (a member revoked it meanwhile): nothing to do, no second event.
        assert not await subscriptions.remove_expired(
            db, subscription_id=row.id, http_status=410, now=now
        )
    assert push_service.for_token(browser.token) == []


@pytest.mark.parametrize(
    ("status", "headers", "retryable", "retry_after"),
    [
        (429, {"Retry-After": "7"}, True, 7.0),
        (500, {}, True, None),
        (503, {"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}, True, None),
        (400, {}, False, None),
        (403, {}, False, None),  # e.g. the VAPID key does not match the subscription's
        (413, {}, False, None),
    ],
)
async def test_failures_say_whether_to_retry(
    push_service: PushService,
    status: int,
    headers: dict[str, str],
    retryable: bool,
    retry_after: float | None,
    settings: Settings,
) -> None:
    browser = push_service.subscribe()
    push_service.respond(browser.token, status, headers)
    vapid = instance_vapid_key(settings)
    result = await send_push(browser, PAYLOAD, ttl=60, vapid=vapid, development=True)
    assert result.status is PushStatus.failed and result.http_status == status
    assert result.retryable is retryable and result.retry_after_s == retry_after
    assert result.error


async def test_a_redirect_is_not_followed(push_service: PushService, settings: Settings) -> None:
    browser, elsewhere = push_service.subscribe(), push_service.subscribe()
    push_service.respond(browser.token, 307, {"Location": elsewhere.endpoint})
    vapid = instance_vapid_key(settings)
    result = await send_push(browser, PAYLOAD, ttl=60, vapid=vapid, development=True)
    assert result.status is PushStatus.failed and result.http_status == 307
    assert not result.retryable and result.error == "redirect refused"
    assert push_service.received == []


async def test_outside_development_a_loopback_endpoint_is_never_contacted(
    push_service: PushService, settings: Settings
) -> None:
    browser = push_service.subscribe()
    vapid = instance_vapid_key(settings)
    result = await send_push(browser, PAYLOAD, ttl=60, vapid=vapid)
    assert result.status is PushStatus.failed and not result.retryable
    assert result.error is not None and result.error.startswith("endpoint_refused")
    assert push_service.received == [] and push_service.refused == []


async def test_nothing_listening_is_a_retryable_failure(settings: Settings) -> None:
    with PushService() as service:
        browser = service.subscribe()
    vapid = instance_vapid_key(settings)  # the service is stopped: connection refused
    result = await send_push(browser, PAYLOAD, ttl=60, vapid=vapid, development=True)
    assert result.status is PushStatus.failed and result.retryable
    assert result.error is not None and result.error.startswith("network")


async def test_bad_arguments_and_oversized_payloads(
    push_service: PushService, settings: Settings
) -> None:
    browser = push_service.subscribe()
    vapid = instance_vapid_key(settings)
    with pytest.raises(ValueError, match="urgency"):
        await send_push(browser, PAYLOAD, ttl=60, urgency="urgent", vapid=vapid)
    with pytest.raises(ValueError, match="ttl"):
        await send_push(browser, PAYLOAD, ttl=-1, vapid=vapid)
    big = {**PAYLOAD, "body": "x" * 4000}
    result = await send_push(browser, big, ttl=60, vapid=vapid, development=True)
    assert result.status is PushStatus.failed and result.error == "payload_too_large"
    assert push_service.received == []


async def test_one_sender_reuses_its_connection_for_many_pushes(
    push_service: PushService, settings: Settings
) -> None:
    browsers = [push_service.subscribe() for _ in range(30)]
    async with PushSender(instance_vapid_key(settings), development=True) as sender:
        for i, browser in enumerate(browsers):
            result = await sender.send(browser, {**PAYLOAD, "id": str(i)}, ttl=30, urgency="low")
            assert result.status is PushStatus.sent, result
    received = push_service.received
    assert sorted(int(r.json()["id"]) for r in received) == list(range(30))
    assert {r.headers["urgency"] for r in received} == {"low"}
    assert len({r.peer_port for r in received}) == 1  # one keep-alive connection


async def test_a_push_service_that_hangs_is_a_retryable_timeout(
    push_service: PushService, settings: Settings
) -> None:
    browser = push_service.subscribe()
    push_service.stall(browser.token, 3.0)
    async with PushSender(instance_vapid_key(settings), development=True, timeout_s=0.3) as sender:
        result = await sender.send(browser, PAYLOAD, ttl=60)
    assert result.status is PushStatus.failed and result.retryable
    assert result.error == "timeout"


async def test_the_dispatcher_finds_members_subscriptions_and_marks_success(
    dev_app: FastAPI, push_service: PushService
) -> None:
    first = await _subscribed(dev_app, push_service.subscribe())
    second = await _subscribed(dev_app, push_service.subscribe())
    now = dev_app.state.clock.now()
    async with dev_app.state.sessionmaker.begin() as db:
        found = await subscriptions.subscriptions_for(db, user_ids=[first.user_id])
        assert [s.id for s in found] == [first.id]
        assert await subscriptions.subscriptions_for(db, user_ids=[]) == []
        await subscriptions.mark_success(db, subscription_id=second.id, now=now)
    async with dev_app.state.sessionmaker() as db:
        marked = await db.get(PushSubscription, second.id)
        untouched = await db.get(PushSubscription, first.id)
        assert marked is not None and marked.last_success_at == now
        assert untouched is not None and untouched.last_success_at is None
