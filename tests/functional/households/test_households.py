"""Households: tenancy, shared users, member management, and audit in the same transaction."""

from __future__ import annotations

import uuid

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from doorwarden.audit.models import AuditEvent
from doorwarden.audit.service import Actor, record
from doorwarden.audit.tags import Tag
from doorwarden.households import service
from doorwarden.households.models import Household
from doorwarden.roles import Role
from tests.factories import CTX, Factory, assert_error


async def test_owner_creates_a_household_and_manages_a_shared_user(factory: Factory) -> None:
    owner, partner = await factory.user(), await factory.user()
    browser = await factory.signed_in(owner)
    created = await browser.post(
        "/api/v1/households",
        json={
            "name": "Flat 2",
            "address": "2 High St",
            "latitude": 51.5,
            "longitude": -0.12,
            "time_zone": "Europe/London",
        },
    )
    assert created.status_code == 201, created.text
    home = created.json()["id"]
    assert created.json()["my_role"] == "owner"
    added = await browser.post(f"/api/v1/households/{home}/members", json={"email": partner.email})
    assert added.status_code == 201 and added.json()["role"] == "shared"
    assert_error(
        await browser.post(f"/api/v1/households/{home}/members", json={"email": partner.email}), 409
    )

    shared = await factory.signed_in(partner)
    assert (await shared.get(f"/api/v1/households/{home}")).json()["my_role"] == "shared"
    assert len((await shared.get(f"/api/v1/households/{home}/members")).json()) == 2
    # Shared users: no settings, no users, no audit trail.
    assert_error(await shared.patch(f"/api/v1/households/{home}", json={"name": "Mine now"}), 403)
    assert_error(
        await shared.post(f"/api/v1/households/{home}/members", json={"email": "x@example.org"}),
        403,
    )
    assert_error(await shared.delete(f"/api/v1/households/{home}/members/{owner.id}"), 403)
    # ... but they may leave.
    assert (
        await shared.delete(f"/api/v1/households/{home}/members/{partner.id}")
    ).status_code == 204
    assert_error(await shared.get(f"/api/v1/households/{home}"), 403)

    tags = [e["tag"] for e in (await browser.get(f"/api/v1/households/{home}/audit-events")).json()]
    assert tags == ["household:member:remove", "household:member:add", "household:create"]
    await browser.aclose()
    await shared.aclose()


@pytest.mark.parametrize(
    "role", [Role.agency_officer, Role.operator_admin, Role.legal_reviewer, Role.auditor]
)
async def test_staff_and_agency_accounts_can_never_join_a_household(
    factory: Factory, role: Role
) -> None:
    admin = await factory.user(Role.operator_admin)
    agency = await factory.agency(admin) if role is Role.agency_officer else None
    staff = admin if role is Role.operator_admin else await factory.user(role, agency_id=agency)
    owner = await factory.user()
    home = await factory.household(owner)
    browser = await factory.signed_in(owner)
    refused = await browser.post(f"/api/v1/households/{home}/members", json={"email": staff.email})
    assert_error(refused, 404, "not_found")
    await browser.aclose()


async def test_cross_household_access_is_refused_everywhere(factory: Factory) -> None:
    alice, bob = await factory.user(), await factory.user()
    alice_home = await factory.household(alice)
    bob_browser = await factory.signed_in(bob)
    for method, path, body in [
        ("GET", f"/api/v1/households/{alice_home}", None),
        ("PATCH", f"/api/v1/households/{alice_home}", {"name": "pwned"}),
        ("GET", f"/api/v1/households/{alice_home}/members", None),
        ("POST", f"/api/v1/households/{alice_home}/members", {"email": bob.email}),
        ("DELETE", f"/api/v1/households/{alice_home}/members/{alice.id}", None),
        ("DELETE", f"/api/v1/households/{alice_home}/members/{bob.id}", None),
        ("GET", f"/api/v1/households/{alice_home}/audit-events", None),
    ]:
        response = await bob_browser.request(method, path, json=body)
        assert_error(response, 403, "forbidden")
    assert (await bob_browser.get("/api/v1/households")).json() == []
    await bob_browser.aclose()


async def test_household_input_is_validated(factory: Factory) -> None:
    owner = await factory.user()
    browser = await factory.signed_in(owner)
    for body in [
        {"name": ""},
        {"name": "x" * 101},
        {"name": "Home", "latitude": 91, "longitude": 0},
        {"name": "Home", "time_zone": "Mars/Olympus_Mons"},
        {"name": "Home", "owner": "me"},
    ]:
        assert_error(await browser.post("/api/v1/households", json=body), 422, "validation_error")
    half = await browser.post("/api/v1/households", json={"name": "Home", "latitude": 1.0})
    assert "both latitude and longitude" in str(assert_error(half, 422)["details"])
    home = (await browser.post("/api/v1/households", json={"name": "Home"})).json()["id"]
    assert_error(await browser.patch(f"/api/v1/households/{home}", json={"name": None}), 400)
    updated = await browser.patch(f"/api/v1/households/{home}", json={"time_zone": "Asia/Tokyo"})
    assert updated.json()["time_zone"] == "Asia/Tokyo" and updated.json()["name"] == "Home"
    assert_error(await browser.get(f"/api/v1/households/{uuid.uuid4()}"), 403)
    assert_error(await browser.get("/api/v1/households/not-a-uuid"), 422)
    await browser.aclose()


async def test_an_audit_event_rolls_back_with_the_change_it_records(
    app: FastAPI, factory: Factory
) -> None:
    owner = await factory.user()

    class Boom(Exception):
        pass

    with pytest.raises(Boom):  # noqa: PT012 - the raise must happen inside the transaction
        async with app.state.sessionmaker.begin() as db:
            await service.create_household(
                db,
                owner=owner,
                name="Ghost",
                address="",
                latitude=None,
                longitude=None,
                time_zone="UTC",
                ctx=CTX,
            )
            raise Boom
    async with app.state.sessionmaker() as db:
        assert await db.scalar(select(func.count()).select_from(Household)) == 0
        assert (
            await db.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.tag == "household:create")
            )
            == 0
        )
        # And a committed one is there, with its context, awaiting its place in the log.
        record(db, tag=Tag.household_create, actor=Actor(owner.id, "resident"), ctx=CTX)
        await db.commit()
        event = (await db.scalars(select(AuditEvent))).one()
    assert event.client_address == CTX.client_address and event.user_agent == "pytest"
    assert event.log_index is None
