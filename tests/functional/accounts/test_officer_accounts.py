"""Agency officer accounts: the invite that names an agency (its checks, in their order) and
the officer row written with the account, in the account's transaction, however the
account is made (an invite redeemed through the API or the page, or directly)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from doorwarden.accounts.models import Invite, User
from doorwarden.agencies.models import AgencyOfficer
from doorwarden.audit.models import AuditEvent
from doorwarden.audit.tags import Tag
from doorwarden.errors import NotFound
from doorwarden.roles import Role
from tests.factories import PASSWORD, Factory, assert_error, make_client

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


async def _count(app: FastAPI, model: Any, *where: Any) -> int:
    async with app.state.sessionmaker() as db:
        return int(await db.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def _officer_of(app: FastAPI, email: str) -> uuid.UUID | None:
    async with app.state.sessionmaker() as db:
        query = (
            select(AgencyOfficer.agency_id)
            .join(User, User.id == AgencyOfficer.user_id)
            .where(User.email == email)
        )
        return (await db.scalars(query)).first()


async def _submit(c: httpx.AsyncClient, page: str, action: str, data: dict[str, str]) -> Any:
    shown = await c.get(page)
    assert shown.status_code == 200, shown.text
    match = CSRF_FIELD.search(shown.text)
    assert match is not None
    return await c.post(action, data={**data, "csrf_token": match.group(1)})


async def test_an_invite_names_an_agency_only_for_an_officer_and_only_one_that_exists(
    app: FastAPI, factory: Factory
) -> None:
    admin = await factory.user(Role.operator_admin)
    agency_id = await factory.agency(admin)
    c = await factory.signed_in(admin)
    nowhere = str(uuid.uuid4())
    # Each refusal names the first thing wrong: the role's checks before the agency's.
    refused = [
        ({"role": "operator_admin", "agency_id": nowhere}, 400, "Operator admins"),
        ({"role": "resident", "agency_id": nowhere}, 400, "and only it does"),
        ({"role": "resident", "agency_id": str(agency_id)}, 400, "and only it does"),
        ({"role": "agency_officer"}, 400, "invite needs an agency"),
        ({"role": "agency_officer", "agency_id": nowhere}, 404, "No such agency."),
    ]
    for body, status, reason in refused:
        error = assert_error(await c.post("/api/v1/admin/invites", json=body), status)
        assert reason in str(error["message"]), (body, error)
    assert await _count(app, Invite) == 0
    assert await _count(app, AuditEvent, AuditEvent.tag == Tag.admin_invite_create) == 0

    page_refusal = await _submit(
        c, "/admin", "/admin/invites", {"role": "agency_officer", "agency_id": nowhere}
    )
    assert page_refusal.status_code == 404 and "No such agency." in page_refusal.text
    assert await _count(app, Invite) == 0
    await c.aclose()


async def test_a_redeemed_officer_invite_makes_the_account_its_agency_officer(
    app: FastAPI, factory: Factory
) -> None:
    """An operator proposes the agency's first officer-administrator, a second operator
    confirms it (policy rule 8); that officer then invites the agency's other officers."""
    admin = await factory.user(Role.operator_admin)
    agency_id = await factory.agency_in_good_standing(admin)
    admin_client = await factory.signed_in(admin)
    second = await factory.signed_in(await factory.user(Role.operator_admin))
    made = await admin_client.post(
        "/api/v1/admin/invites", json={"role": "agency_officer", "agency_id": str(agency_id)}
    )
    assert made.status_code == 201, made.text
    assert made.json()["agency_id"] == str(agency_id)
    assert made.json()["officer_admin"] is True and made.json()["confirmed"] is False
    confirmed = await second.post(f"/api/v1/admin/invites/{made.json()['id']}/confirm")
    assert confirmed.status_code == 200, confirmed.text
    await admin_client.aclose()
    await second.aclose()

    async with make_client(app) as c:
        body = {"email": "pc@example.org", "display_name": "PC", "password": PASSWORD}
        created = await c.post(
            "/api/v1/accounts", json={**body, "invite_code": made.json()["code"]}
        )
        assert created.status_code == 201, created.text
        assert created.json()["role"] == "agency_officer"
    chief = await factory.signed_in(await _user(app, "pc@example.org"))
    invited = await chief.post(f"/api/v1/agencies/{agency_id}/invites")
    assert invited.status_code == 201, invited.text
    assert invited.json()["agency_id"] == str(agency_id)
    await chief.aclose()
    async with make_client(app) as c:
        form = {"email": "sgt@example.org", "display_name": "Sgt", "password": PASSWORD}
        code = invited.json()["code"]
        signed_up = await _submit(c, "/signup", "/signup", {**form, "invite_code": code})
        assert signed_up.status_code == 303, signed_up.text
    assert await _officer_of(app, "pc@example.org") == agency_id
    assert await _officer_of(app, "sgt@example.org") == agency_id
    signups = AuditEvent.tag == Tag.account_signup
    assert await _count(app, AuditEvent, signups, AuditEvent.agency_id == agency_id) == 2
    # The officer the administrator invited is no administrator: they invite no one.
    sergeant = await factory.signed_in(await _user(app, "sgt@example.org"))
    assert_error(await sergeant.post(f"/api/v1/agencies/{agency_id}/invites"), 403)
    await sergeant.aclose()


async def _user(app: FastAPI, email: str) -> User:
    async with app.state.sessionmaker() as db:
        user = (await db.scalars(select(User).where(User.email == email))).first()
        assert user is not None
        return user


async def test_an_officer_of_no_agency_is_not_made_at_all(app: FastAPI, factory: Factory) -> None:
    with pytest.raises(NotFound, match="No such agency"):
        await factory.user(Role.agency_officer, email="ghost@example.org", agency_id=uuid.uuid4())
    # The officer row is written in the account's transaction: no account without it.
    assert await _count(app, User, User.email == "ghost@example.org") == 0
