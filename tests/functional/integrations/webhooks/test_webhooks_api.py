"""The webhooks API and page: owners only, bad input refused with a clear error, the
secret shown once and never again, audited."""

from __future__ import annotations

import uuid

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from doorwarden.audit.models import AuditEvent
from doorwarden.integrations.webhooks import signing
from doorwarden.integrations.webhooks.models import WebhookEndpoint
from doorwarden.roles import Role
from tests.factories import Factory, assert_error
from tests.functional.integrations.webhooks.receiver import Receiver
from tests.functional.integrations.webhooks.webhooks_setup import register


async def test_owner_registers_lists_updates_and_deletes(
    app: FastAPI, factory: Factory, receiver: Receiver
) -> None:
    owner = await factory.user()
    home = await factory.household(owner)
    client = await factory.signed_in(owner)
    hook = await register(
        client, home, receiver.url("/a"), ["ring", "person", "ring"], description=" Lights "
    )
    assert hook["secret"].startswith("whsec_")
    assert len(signing.key_of(hook["secret"])) == 32
    assert (hook["event_kinds"], hook["description"], hook["enabled"]) == (
        ["person", "ring"], "Lights", True,
    )  # fmt: skip
    base = f"/api/v1/households/{home}/webhooks"
    patched = await client.patch(
        f"{base}/{hook['id']}", json={"enabled": False, "event_kinds": ["motion"]}
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["enabled"], patched.json()["event_kinds"]) == (False, ["motion"])
    listed = await client.get(base)
    assert [h["id"] for h in listed.json()] == [hook["id"]]
    deleted = await client.delete(f"{base}/{hook['id']}")
    assert deleted.status_code == 204
    assert (await client.get(base)).json() == []
    assert_error(await client.delete(f"{base}/{hook['id']}"), 404, "not_found")
    async with app.state.sessionmaker() as db:
        tags = list(
            await db.scalars(
                select(AuditEvent.tag)
                .where(AuditEvent.household_id == home, AuditEvent.tag.like("webhook:%"))
                .order_by(AuditEvent.occurred_at)
            )
        )
    assert tags == ["webhook:create", "webhook:update", "webhook:delete"]


async def test_the_secret_is_never_returned_after_creation(
    app: FastAPI, factory: Factory, receiver: Receiver
) -> None:
    owner = await factory.user()
    home = await factory.household(owner)
    client = await factory.signed_in(owner)
    hook = await register(client, home, receiver.url("/s"), ["ring"])
    secret = hook["secret"]
    key_b64 = secret.removeprefix("whsec_")
    base = f"/api/v1/households/{home}/webhooks"
    answers = [
        await client.get(base),
        await client.patch(f"{base}/{hook['id']}", json={"description": "x"}),
        await client.get(f"{base}/{hook['id']}/deliveries"),
        await client.post(f"{base}/{hook['id']}/test"),
        await client.get(f"/households/{home}/integrations"),
        await client.get(f"/households/{home}/audit"),
    ]
    for answer in answers:
        assert answer.status_code < 300, answer.text
        assert key_b64 not in answer.text and "whsec_" not in answer.text
        assert "secret" not in (answer.json() if "json" in answer.headers["content-type"] else "")
    async with app.state.sessionmaker() as db:
        row = await db.get(WebhookEndpoint, uuid.UUID(hook["id"]))
    assert row is not None
    assert signing.key_of(secret) not in row.secret_sealed  # sealed, not stored as is
    own = app.state.settings.secret_key.get_secret_value().encode()
    assert signing.unseal(own, row.id, row.secret_sealed) == signing.key_of(secret)
    with pytest.raises(signing.SecretUnreadable):  # bound to its endpoint
        signing.unseal(own, uuid.uuid4(), row.secret_sealed)


@pytest.mark.parametrize(
    ("body", "status", "where"),
    [
        ({"url": "https://127.0.0.1/a", "event_kinds": ["doorbell"]}, 422, "event_kinds"),
        ({"url": "https://127.0.0.1/a", "event_kinds": ["ping"]}, 422, "event_kinds"),
        ({"url": "https://127.0.0.1/a", "event_kinds": []}, 422, "event_kinds"),
        ({"url": "https://127.0.0.1/a", "event_kinds": ["ring"], "description": "d" * 201}, 422,
         "description"),
        ({"url": "https://127.0.0.1/" + "a" * 2000, "event_kinds": ["ring"]}, 422, "url"),
        ({"url": "", "event_kinds": ["ring"]}, 422, "url"),
        ({"url": "https://127.0.0.1/a", "event_kinds": ["ring"], "secret": "whsec_AAAA"}, 422,
         "secret"),
        ({"event_kinds": ["ring"]}, 422, "url"),
    ],
)  # fmt: skip
async def test_bad_input_is_refused_naming_the_field(
    app: FastAPI, factory: Factory, receiver: Receiver, body: dict[str, object], status: int,
    where: str,
) -> None:  # fmt: skip
    owner = await factory.user()
    home = await factory.household(owner)
    client = await factory.signed_in(owner)
    response = await client.post(f"/api/v1/households/{home}/webhooks", json=body)
    error = assert_error(response, status)
    assert where in str(error["details"]), error


async def test_too_many_endpoints_are_refused(
    app: FastAPI, factory: Factory, receiver: Receiver
) -> None:
    app.state.settings.webhook_max_endpoints = 2
    owner = await factory.user()
    home = await factory.household(owner)
    client = await factory.signed_in(owner)
    for n in range(2):
        await register(client, home, receiver.url(f"/{n}"), ["ring"])
    response = await client.post(
        f"/api/v1/households/{home}/webhooks",
        json={"url": receiver.url("/3"), "event_kinds": ["ring"]},
    )
    error = assert_error(response, 409, "too_many_endpoints")
    assert "at most 2" in str(error["message"])


@pytest.mark.parametrize(
    "role", [Role.operator_admin, Role.legal_reviewer, Role.auditor, Role.agency_officer]
)
async def test_staff_are_refused(
    app: FastAPI, factory: Factory, receiver: Receiver, role: Role
) -> None:
    owner = await factory.user()
    home = await factory.household(owner)
    hook = await register(await factory.signed_in(owner), home, receiver.url("/x"), ["ring"])
    agency = (
        await factory.agency(await factory.user(Role.operator_admin))
        if role is Role.agency_officer
        else None
    )
    staff = await factory.signed_in(await factory.user(role, agency_id=agency))
    base = f"/api/v1/households/{home}/webhooks"
    for response in (
        await staff.get(base),
        await staff.post(base, json={"url": receiver.url("/y"), "event_kinds": ["ring"]}),
        await staff.delete(f"{base}/{hook['id']}"),
        await staff.get(f"{base}/{hook['id']}/deliveries"),
        await staff.get(f"/households/{home}/integrations"),
    ):
        assert response.status_code == 403, response.text


async def test_shared_users_and_other_households_are_refused(
    app: FastAPI, factory: Factory, receiver: Receiver
) -> None:
    owner = await factory.user()
    home = await factory.household(owner)
    shared = await factory.user()
    await factory.share(home, owner, shared)
    hook = await register(await factory.signed_in(owner), home, receiver.url("/x"), ["ring"])
    base = f"/api/v1/households/{home}/webhooks"
    member = await factory.signed_in(shared)
    for response in (
        await member.get(base),
        await member.post(base, json={"url": receiver.url("/y"), "event_kinds": ["ring"]}),
        await member.patch(f"{base}/{hook['id']}", json={"enabled": False}),
        await member.post(f"{base}/{hook['id']}/test"),
        await member.get(f"/households/{home}/integrations"),
    ):
        assert response.status_code == 403
        if response.headers["content-type"].startswith("application/json"):
            assert_error(response, 403, "forbidden")
    page = await member.get(f"/households/{home}")
    assert "/integrations" not in page.text
    # Another household's owner: refused on this household's path, and on their own path
    # the endpoint is as absent as one that never was.
    other = await factory.user()
    their_home = await factory.household(other)
    stranger = await factory.signed_in(other)
    assert (await stranger.get(base)).status_code == 403
    assert_error(
        await stranger.delete(f"/api/v1/households/{their_home}/webhooks/{hook['id']}"), 404
    )
    assert_error(
        await stranger.get(f"/api/v1/households/{their_home}/webhooks/{hook['id']}/deliveries"),
        404,
    )
    owner_page = await (await factory.signed_in(owner)).get(f"/households/{home}")
    assert f"/households/{home}/integrations" in owner_page.text


async def test_the_page_adds_a_webhook_and_shows_the_secret_once(
    app: FastAPI, factory: Factory, receiver: Receiver
) -> None:
    owner = await factory.user()
    home = await factory.household(owner)
    client = await factory.signed_in(owner)
    page = await client.get(f"/households/{home}/integrations")
    assert page.status_code == 200
    assert 'name="event_kinds" value="mode.changed"' in page.text
    token = client.headers["x-csrf-token"]
    added = await client.post(
        f"/households/{home}/integrations/webhooks",
        data={"url": receiver.url("/page"), "event_kinds": ["ring", "person"],
              "description": "Porch light", "csrf_token": token},
    )  # fmt: skip
    assert added.status_code == 201, added.text
    assert 'id="webhook-secret">whsec_' in added.text
    again = await client.get(f"/households/{home}/integrations")
    assert "whsec_" not in again.text and "Porch light" in again.text
    refused = await client.post(
        f"/households/{home}/integrations/webhooks",
        data={"url": "ftp://x", "event_kinds": ["ring"], "csrf_token": token},
    )
    assert refused.status_code == 422 and "https://" in refused.text
