"""Webhooks delivered to a real HTTPS receiver on loopback: signed (checked by the
receiver, from the spec), for rings, people, mode changes and privacy zones reduced;
retried with backoff; never redirected; disabled when the receiver says 410 or fails for
too long."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from doorwarden.audit.models import AuditEvent
from doorwarden.audit.service import Actor, record
from doorwarden.audit.tags import Tag
from doorwarden.clock import ManualClock
from doorwarden.events.models import EventKind
from doorwarden.integrations.webhooks.models import DeliveryStatus, WebhookEndpoint
from doorwarden.integrations.webhooks.tasks import RETRY_S
from tests.factories import CTX, Camera, Factory
from tests.functional.integrations.webhooks.receiver import Receiver, check_signature
from tests.functional.integrations.webhooks.webhooks_setup import (
    attempts,
    deliver,
    deliveries,
    register,
)
from tests.functional.notify.dispatch_setup import add_event, ring


async def _home(factory: Factory) -> tuple[httpx.AsyncClient, uuid.UUID, Camera]:
    owner = await factory.user()
    home = await factory.household(owner)
    client = await factory.signed_in(owner)
    camera = await factory.camera(owner, home)
    return client, home, camera


async def test_a_ring_is_delivered_signed_once(
    app: FastAPI, factory: Factory, receiver: Receiver, clock: ManualClock
) -> None:
    client, home, camera = await _home(factory)
    hook = await register(client, home, receiver.url("/ring"), ["ring"])
    receiver.secrets["/ring"] = hook["secret"]
    event_id = await ring(camera.client, clock.now())
    await deliver(app)
    await deliver(app)  # a second turn finds nothing new: one delivery per event
    (got,) = receiver.to("/ring")
    assert got.problem is None, got.problem
    body = got.json()
    assert body["type"] == "ring"
    assert body["data"]["event_id"] == str(event_id)
    assert body["data"]["device_id"] == str(camera.id)
    assert body["data"]["device_name"] == "Front door"
    assert body["data"]["labels"] == ["ring"]
    assert got.headers["webhook-id"].startswith("msg_")
    assert got.headers["content-type"] == "application/json"
    assert got.sni is None  # an address in the URL: no SNI, the certificate's IP checked
    assert "url" not in str(body["data"]).lower()  # no links to media or pages
    (row,) = await deliveries(app, hook["id"])
    assert (row.status, row.attempts, row.last_status_code) == (DeliveryStatus.delivered, 1, 200)


async def test_the_connection_goes_to_the_checked_address_with_the_name_as_sni_and_host(
    app: FastAPI, factory: Factory, receiver: Receiver, clock: ManualClock
) -> None:
    client, home, camera = await _home(factory)
    # hooks.test resolves (settings.webhook_resolve) to 127.0.0.1; the certificate names it.
    hook = await register(client, home, receiver.url("/named", host="hooks.test"), ["ring"])
    receiver.secrets["/named"] = hook["secret"]
    await ring(camera.client, clock.now())
    await deliver(app)
    (got,) = receiver.to("/named")
    assert got.problem is None
    assert got.sni == "hooks.test"
    assert got.headers["host"] == f"hooks.test:{receiver.port}"


async def test_person_events_go_only_to_endpoints_that_want_them(
    app: FastAPI, factory: Factory, receiver: Receiver, clock: ManualClock
) -> None:
    client, home, camera = await _home(factory)
    people = await register(client, home, receiver.url("/people"), ["person", "motion"])
    rings = await register(client, home, receiver.url("/rings"), ["ring"])
    receiver.secrets["/people"] = people["secret"]
    await add_event(app, home, camera.id, EventKind.person, clock.now())
    await deliver(app)
    (got,) = receiver.to("/people")
    assert got.problem is None
    assert got.json()["type"] == "person"
    assert got.json()["data"]["camera"] == "front"
    assert receiver.to("/rings") == []
    assert await deliveries(app, rings["id"]) == []


async def test_a_mode_change_is_delivered_and_setting_the_same_mode_is_not(
    app: FastAPI, factory: Factory, receiver: Receiver
) -> None:
    client, home, _camera = await _home(factory)
    hook = await register(client, home, receiver.url("/mode"), ["mode.changed"])
    receiver.secrets["/mode"] = hook["secret"]
    for mode in ("away", "away"):
        response = await client.put(f"/api/v1/households/{home}/mode", json={"mode": mode})
        assert response.status_code == 200, response.text
    await deliver(app)
    (got,) = receiver.to("/mode")
    assert got.problem is None
    data = got.json()["data"]
    assert (got.json()["type"], data["mode"], data["previous"], data["source"]) == (
        "mode.changed", "away", "home", "manual",
    )  # fmt: skip


async def test_a_privacy_zone_reduced_is_delivered(
    app: FastAPI, factory: Factory, receiver: Receiver, clock: ManualClock
) -> None:
    client, home, camera = await _home(factory)
    hook = await register(client, home, receiver.url("/privacy"), ["camera.privacy_reduced"])
    receiver.secrets["/privacy"] = hook["secret"]
    async with app.state.sessionmaker.begin() as db:  # as devices/settings records it
        record(
            db, tag=Tag.camera_privacy_reduce, actor=Actor(None, "resident"), ctx=CTX,
            household_id=home, target_type="device", target_id=camera.id,
            extra={"camera": "front", "version": 3, "zones_before": 2, "zones_after": 1},
            occurred_at=clock.now(),
        )  # fmt: skip
    await deliver(app)
    (got,) = receiver.to("/privacy")
    assert got.problem is None
    data = got.json()["data"]
    assert (data["device_id"], data["camera"], data["zones_after"]) == (
        str(camera.id), "front", 1,
    )  # fmt: skip


async def test_a_failing_receiver_is_retried_with_backoff_then_delivered_once(
    app: FastAPI, factory: Factory, receiver: Receiver, clock: ManualClock
) -> None:
    client, home, camera = await _home(factory)
    hook = await register(client, home, receiver.url("/flaky"), ["ring"])
    receiver.secrets["/flaky"] = hook["secret"]
    receiver.answer("/flaky", 500, 503)
    await ring(camera.client, clock.now())
    await deliver(app)
    (row,) = await deliveries(app, hook["id"])
    assert (row.status, row.attempts, row.last_status_code) == (DeliveryStatus.pending, 1, 500)
    assert row.next_attempt_at is not None
    wait = (row.next_attempt_at - clock.now()).total_seconds()
    assert RETRY_S[0] * 0.8 - 0.01 <= wait <= RETRY_S[0] * 1.2 + 0.01
    await deliver(app)  # not due yet: nothing sent
    assert len(receiver.to("/flaky")) == 1
    clock.advance(timedelta(seconds=RETRY_S[0] * 1.2 + 1))
    await deliver(app)
    (row,) = await deliveries(app, hook["id"])
    assert (row.attempts, row.last_status_code) == (2, 503)
    wait = (row.next_attempt_at - clock.now()).total_seconds()  # type: ignore[operator]
    assert RETRY_S[1] * 0.8 - 0.01 <= wait <= RETRY_S[1] * 1.2 + 0.01
    clock.advance(timedelta(seconds=RETRY_S[1] * 1.2 + 1))
    await deliver(app)
    clock.advance(timedelta(hours=7))
    await deliver(app)
    got = receiver.to("/flaky")
    assert len(got) == 3
    assert {r.headers["webhook-id"] for r in got} == {f"msg_{row.id.hex}"}  # one id, retried
    assert [r.problem for r in got] == [None, None, None]
    assert len({r.headers["webhook-timestamp"] for r in got}) == 3  # each attempt dated anew
    (row,) = await deliveries(app, hook["id"])
    assert (row.status, row.attempts, row.next_attempt_at) == (DeliveryStatus.delivered, 3, None)
    assert [a.status_code for a in await attempts(app, row.id)] == [500, 503, 200]


async def test_a_redirect_is_not_followed(
    app: FastAPI, factory: Factory, receiver: Receiver, clock: ManualClock
) -> None:
    client, home, camera = await _home(factory)
    hook = await register(client, home, receiver.url("/moved"), ["ring"])
    receiver.secrets["/moved"] = hook["secret"]
    receiver.answer("/moved", (302, {"location": receiver.url("/elsewhere")}))
    await ring(camera.client, clock.now())
    await deliver(app)
    assert len(receiver.to("/moved")) == 1
    assert receiver.to("/elsewhere") == []
    (row,) = await deliveries(app, hook["id"])
    assert row.status is DeliveryStatus.pending
    assert row.last_status_code == 302
    assert "redirect" in (row.last_error or "")


async def test_every_retry_used_fails_the_delivery(
    app: FastAPI, factory: Factory, receiver: Receiver, clock: ManualClock
) -> None:
    client, home, camera = await _home(factory)
    hook = await register(client, home, receiver.url("/down"), ["ring"])
    receiver.answer("/down", *([500] * (len(RETRY_S) + 2)))
    await ring(camera.client, clock.now())
    for _ in range(len(RETRY_S) + 2):
        await deliver(app)
        clock.advance(timedelta(seconds=RETRY_S[-1] * 1.3))
    assert len(receiver.to("/down")) == len(RETRY_S) + 1
    (row,) = await deliveries(app, hook["id"])
    assert (row.status, row.attempts, row.next_attempt_at) == (
        DeliveryStatus.failed, len(RETRY_S) + 1, None,
    )  # fmt: skip


async def test_410_gone_turns_the_endpoint_off_with_an_audit_entry(
    app: FastAPI, factory: Factory, receiver: Receiver, clock: ManualClock
) -> None:
    client, home, camera = await _home(factory)
    await register(client, home, receiver.url("/gone"), ["ring"])
    receiver.answer("/gone", 410)
    await ring(camera.client, clock.now())
    await deliver(app)
    listed = (await client.get(f"/api/v1/households/{home}/webhooks")).json()
    assert listed[0]["enabled"] is False
    assert "410" in listed[0]["disabled_reason"]
    await ring(camera.client, clock.now() + timedelta(seconds=1))
    await deliver(app)
    assert len(receiver.to("/gone")) == 1  # nothing more to an endpoint that is off
    async with app.state.sessionmaker() as db:
        entry = await db.scalar(
            select(AuditEvent).where(
                AuditEvent.tag == str(Tag.webhook_update), AuditEvent.actor_role == "system"
            )
        )
    assert entry is not None and entry.household_id == home


async def test_an_endpoint_failing_for_too_long_is_turned_off(
    app: FastAPI, factory: Factory, receiver: Receiver, clock: ManualClock
) -> None:
    app.state.settings.webhook_disable_after_hours = 1.0
    client, home, camera = await _home(factory)
    hook = await register(client, home, receiver.url("/broken"), ["ring"])
    receiver.answer("/broken", *([500] * 10))
    await ring(camera.client, clock.now())
    await deliver(app)
    clock.advance(timedelta(minutes=30))
    await deliver(app)
    async with app.state.sessionmaker() as db:
        assert (await db.get(WebhookEndpoint, uuid.UUID(hook["id"]))).enabled  # type: ignore[union-attr]
    clock.advance(timedelta(minutes=40))
    await deliver(app)
    async with app.state.sessionmaker() as db:
        endpoint = await db.get(WebhookEndpoint, uuid.UUID(hook["id"]))
    assert endpoint is not None and not endpoint.enabled
    assert "failed for" in (endpoint.disabled_reason or "")
    page = await client.get(f"/households/{home}/integrations")
    assert "Turned off by the server" in page.text


async def test_a_test_ping_is_delivered_and_listed(
    app: FastAPI, factory: Factory, receiver: Receiver
) -> None:
    client, home, _camera = await _home(factory)
    hook = await register(client, home, receiver.url("/ping"), ["ring"])
    receiver.secrets["/ping"] = hook["secret"]
    response = await client.post(f"/api/v1/households/{home}/webhooks/{hook['id']}/test")
    assert response.status_code == 202, response.text
    await deliver(app)
    (got,) = receiver.to("/ping")
    assert got.problem is None and got.json()["type"] == "ping"
    assert got.headers["webhook-id"] == response.json()["webhook_id"]
    listed = await client.get(f"/api/v1/households/{home}/webhooks/{hook['id']}/deliveries")
    assert [(d["event_kind"], d["status"]) for d in listed.json()] == [("ping", "delivered")]


async def test_a_rotated_secret_signs_beside_the_old_one(
    app: FastAPI, factory: Factory, receiver: Receiver
) -> None:
    client, home, _camera = await _home(factory)
    hook = await register(client, home, receiver.url("/rotated"), ["ring"])
    rotated = await client.patch(
        f"/api/v1/households/{home}/webhooks/{hook['id']}", json={"rotate_secret": True}
    )
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["secret"]
    assert new.startswith("whsec_") and new != hook["secret"]
    await client.post(f"/api/v1/households/{home}/webhooks/{hook['id']}/test")
    await deliver(app)
    (got,) = receiver.to("/rotated")
    now = float(got.headers["webhook-timestamp"])
    assert check_signature(new, got.headers, got.body, now) is None
    assert check_signature(hook["secret"], got.headers, got.body, now) is None
    assert len(got.headers["webhook-signature"].split(" ")) == 2


async def test_an_endpoint_turned_off_hears_nothing_and_on_again_only_what_follows(
    app: FastAPI, factory: Factory, receiver: Receiver, clock: ManualClock
) -> None:
    client, home, camera = await _home(factory)
    hook = await register(client, home, receiver.url("/toggle"), ["ring"])
    path = f"/api/v1/households/{home}/webhooks/{hook['id']}"
    assert (await client.patch(path, json={"enabled": False})).status_code == 200
    await ring(camera.client, clock.now())
    await deliver(app)
    clock.advance(timedelta(seconds=10))
    assert (await client.patch(path, json={"enabled": True})).status_code == 200
    await deliver(app)
    assert receiver.to("/toggle") == []  # the ring while it was off is not replayed
    second = await ring(camera.client, clock.now() + timedelta(seconds=1))
    await deliver(app)
    (got,) = receiver.to("/toggle")
    assert got.json()["data"]["event_id"] == str(second)


async def test_an_endpoint_removed_while_its_delivery_is_in_flight(
    app: FastAPI, factory: Factory, receiver: Receiver, clock: ManualClock
) -> None:
    client, home, camera = await _home(factory)
    hook = await register(client, home, receiver.url("/removed"), ["ring"])
    release = receiver.hold("/removed")
    await add_event(app, home, camera.id, EventKind.ring, clock.now())  # no wake: by hand
    sending = asyncio.create_task(deliver(app))
    for _ in range(500):  # until the receiver holds the request (the sender waits on it)
        if receiver.to("/removed"):
            break
        await asyncio.sleep(0.01)
    assert len(receiver.to("/removed")) == 1
    deleted = await client.delete(f"/api/v1/households/{home}/webhooks/{hook['id']}")
    assert deleted.status_code == 204
    release.set()
    await sending  # its answer finds nothing left to record, and says nothing of it
    assert await deliveries(app, hook["id"]) == []
