"""Push subscriptions through the API: subscribe, replay, list, revoke; refused input,
other people's subscriptions, staff and API tokens."""

from __future__ import annotations

import asyncio
import base64
import os

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi import FastAPI
from sqlalchemy import func, select

from doorwarden.audit.models import AuditEvent
from doorwarden.notify.push_models import PushSubscription
from doorwarden.notify.subscriptions import MAX_PER_USER
from doorwarden.notify.vapid import derive_private_key
from doorwarden.roles import Role
from tests.factories import SECRET, Factory, assert_error, make_client

URL = "/api/v1/account/push-subscriptions"


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def browser(endpoint: str | None = None, label: str | None = "Phone") -> dict[str, object]:
    point = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    )
    body: dict[str, object] = {
        "endpoint": endpoint or f"https://fcm.googleapis.com/fcm/send/{os.urandom(8).hex()}",
        "expirationTime": None,
        "keys": {"p256dh": b64u(point), "auth": b64u(os.urandom(16))},
    }
    if label is not None:
        body["label"] = label
    return body


async def _count(app: FastAPI, model: type, *where: object) -> int:
    async with app.state.sessionmaker() as db:
        return int(await db.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_the_vapid_public_key_is_public_and_derived_from_the_secret(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/api/v1/notify/vapid-public-key")
    assert response.status_code == 200, response.text
    point = base64.urlsafe_b64decode(response.json()["key"] + "==")
    expected = derive_private_key(SECRET.encode()).public_key()
    assert point == expected.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


async def test_subscribe_replay_list_and_revoke(app: FastAPI, factory: Factory) -> None:
    user = await factory.user()
    c = await factory.signed_in(user)
    body = browser()
    created = await c.post(URL, json=body)
    assert created.status_code == 201, created.text
    out = created.json()
    assert set(out) == {"id", "label", "endpoint_host", "created_at", "last_success_at"}
    assert out["endpoint_host"] == "fcm.googleapis.com" and out["label"] == "Phone"
    assert out["last_success_at"] is None
    assert str(body["endpoint"]) not in created.text  # the capability URL is never shown
    # The same browser again (a page reload subscribes again): the same row, no new event.
    again = await c.post(URL, json=body)
    assert again.status_code == 200, again.text
    assert again.json()["id"] == out["id"]
    listed = (await c.get(URL)).json()
    assert [s["id"] for s in listed] == [out["id"]]
    tag = AuditEvent.tag == "push:subscription:create"
    assert await _count(app, AuditEvent, tag, AuditEvent.actor_user_id == user.id) == 1
    async with app.state.sessionmaker() as db:
        event = (await db.scalars(select(AuditEvent).where(tag))).one()
        assert event.extra == {"endpoint_host": "fcm.googleapis.com", "label": "Phone"}
        assert str(body["endpoint"]) not in str(event.extra)
    # New keys for the same endpoint replace the old ones.
    rekeyed = browser(str(body["endpoint"]))
    assert (await c.post(URL, json=rekeyed)).status_code == 200
    async with app.state.sessionmaker() as db:
        row = (await db.scalars(select(PushSubscription))).one()
        assert b64u(row.p256dh) == rekeyed["keys"]["p256dh"]  # type: ignore[index]
    deleted = await c.delete(f"{URL}/{out['id']}")
    assert deleted.status_code == 204, deleted.text
    assert (await c.get(URL)).json() == []
    assert_error(await c.delete(f"{URL}/{out['id']}"), 404, "not_found")  # replayed delete
    delete_tag = AuditEvent.tag == "push:subscription:delete"
    assert await _count(app, AuditEvent, delete_tag) == 1


def _point_off_the_curve() -> str:
    return b64u(b"\x04" + b"\x01" * 64)


def _compressed_point() -> str:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return b64u(key.public_bytes(Encoding.X962, PublicFormat.CompressedPoint))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"endpoint": "http://push.example.net/x"}, "endpoint"),
        ({"endpoint": "https://10.1.2.3/push"}, "endpoint"),
        ({"endpoint": "https://127.0.0.1:8443/push"}, "endpoint"),
        ({"endpoint": "https://169.254.169.254/latest"}, "endpoint"),
        ({"endpoint": "https://[::1]/push"}, "endpoint"),
        ({"endpoint": "https://localhost/push"}, "endpoint"),
        ({"endpoint": "https://2130706433/push"}, "endpoint"),
        ({"endpoint": "https://u:p@push.example.net/x"}, "endpoint"),
        ({"keys": {"p256dh": "not base64!", "auth": b64u(os.urandom(16))}}, "keys.p256dh"),
        ({"keys": {"p256dh": _point_off_the_curve(), "auth": b64u(os.urandom(16))}}, "keys.p256dh"),
        ({"keys": {"p256dh": _compressed_point(), "auth": b64u(os.urandom(16))}}, "keys.p256dh"),
        ({"keys": {"p256dh": b64u(os.urandom(32)), "auth": b64u(os.urandom(16))}}, "keys.p256dh"),
        ({"keys": {"p256dh": "KEY", "auth": "@@@@"}}, "keys.p256dh"),
    ],
)
async def test_malformed_subscriptions_are_refused(
    app: FastAPI, factory: Factory, change: dict[str, object], field: str
) -> None:
    c = await factory.signed_in(await factory.user())
    error = assert_error(await c.post(URL, json={**browser(), **change}), 400, "invalid_input")
    assert error["details"] == {"field": field}
    assert await _count(app, PushSubscription) == 0


async def test_bad_auth_secrets_are_refused(factory: Factory) -> None:
    c = await factory.signed_in(await factory.user())
    body = browser()
    for auth in (b64u(os.urandom(15)), b64u(os.urandom(17)), "+/+/+/+/+/+/+/+/+/+/+w", "a"):
        body["keys"] = {**body["keys"], "auth": auth}  # type: ignore[dict-item]
        error = assert_error(await c.post(URL, json=body), 400, "invalid_input")
        assert error["details"] == {"field": "keys.auth"}


@pytest.mark.parametrize(
    "body",
    [
        {**browser(), "label": "x" * 65},  # label too long
        {**browser(), "endpoint": "https://push.example.net/" + "a" * 2048},  # oversized
        {**browser(), "extra": 1},  # unknown field
        {"endpoint": "https://push.example.net/x"},  # no keys
        {**browser(), "keys": {"p256dh": "a" * 129, "auth": "b"}},  # oversized key
        {**browser(), "keys": {"p256dh": "a", "auth": "b", "x": "c"}},
        [],
        {**browser(), "label": 5},
    ],
)
async def test_oversized_and_misshapen_bodies_are_refused(
    app: FastAPI, factory: Factory, body: object
) -> None:
    c = await factory.signed_in(await factory.user())
    assert_error(await c.post(URL, json=body), 422, "validation_error")
    assert await _count(app, PushSubscription) == 0


async def test_a_nul_in_the_label_is_refused(factory: Factory) -> None:
    c = await factory.signed_in(await factory.user())
    assert_error(await c.post(URL, json=browser(label="Ph\x00one")), 400)


async def test_at_most_twenty_per_user(app: FastAPI, factory: Factory) -> None:
    c = await factory.signed_in(await factory.user())
    for _ in range(MAX_PER_USER):
        assert (await c.post(URL, json=browser())).status_code == 201
    error = assert_error(await c.post(URL, json=browser()), 409, "too_many_subscriptions")
    assert error["details"] == {"limit": MAX_PER_USER}
    # Another member is not affected by one's own count.
    other = await factory.signed_in(await factory.user())
    assert (await other.post(URL, json=browser())).status_code == 201
    assert await _count(app, PushSubscription) == MAX_PER_USER + 1


async def test_one_sees_and_revokes_only_ones_own(app: FastAPI, factory: Factory) -> None:
    ada = await factory.signed_in(await factory.user())
    bo = await factory.signed_in(await factory.user())
    body = browser()
    mine = (await ada.post(URL, json=body)).json()["id"]
    assert (await bo.get(URL)).json() == []
    assert_error(await bo.delete(f"{URL}/{mine}"), 404, "not_found")  # as if it did not exist
    assert_error(await bo.delete(f"{URL}/not-a-uuid"), 422)
    assert [s["id"] for s in (await ada.get(URL)).json()] == [mine]
    # The same browser signed in as another member: a row of its own for that member.
    theirs = await bo.post(URL, json=body)
    assert theirs.status_code == 201 and theirs.json()["id"] != mine


@pytest.mark.parametrize(
    "role", [Role.operator_admin, Role.auditor, Role.legal_reviewer, Role.agency_officer]
)
async def test_staff_may_not_subscribe(factory: Factory, role: Role) -> None:
    admin = await factory.user(Role.operator_admin)
    agency = await factory.agency(admin) if role is Role.agency_officer else None
    staff = await factory.user(role, agency_id=agency)
    c = await factory.signed_in(staff)
    assert_error(await c.post(URL, json=browser()), 403, "forbidden")
    assert_error(await c.get(URL), 403, "forbidden")


async def test_an_api_token_may_list_and_revoke_but_not_subscribe(
    app: FastAPI, factory: Factory
) -> None:
    user = await factory.user()
    session = await factory.signed_in(user)
    made = (await session.post(URL, json=browser())).json()["id"]
    token = await factory.with_token(user)
    assert_error(await token.post(URL, json=browser()), 403, "forbidden")
    assert [s["id"] for s in (await token.get(URL)).json()] == [made]
    assert (await token.delete(f"{URL}/{made}")).status_code == 204
    anonymous = make_client(app)
    assert_error(await anonymous.get(URL), 401)
    assert_error(await anonymous.post(URL, json=browser()), 401)


async def test_a_session_without_the_csrf_header_is_refused(factory: Factory) -> None:
    c = await factory.signed_in(await factory.user())
    del c.headers["x-csrf-token"]
    assert_error(await c.post(URL, json=browser()), 403, "csrf_failed")


async def test_the_same_browser_subscribing_at_once_makes_one_row(
    app: FastAPI, factory: Factory
) -> None:
    user = await factory.user()
    clients = [await factory.signed_in(user) for _ in range(4)]
    body = browser()
    answers = await asyncio.gather(*(c.post(URL, json=body) for c in clients))
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 201], [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert await _count(app, PushSubscription) == 1
    assert await _count(app, AuditEvent, AuditEvent.tag == "push:subscription:create") == 1
