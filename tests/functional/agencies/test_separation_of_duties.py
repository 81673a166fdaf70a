"""Issue 16, item 1: one operator admin alone must not be able to set up every step that
leads to a disclosure. One operator session walks the whole path the issue describes
(create an agency, verify it, record its approval, invite itself an officer and a
reviewer, file a warrant with a 365-day non-disclosure order, approve it) and is refused
at each step that needs a second person (policy rule 8)."""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from doorwarden.clock import ManualClock
from doorwarden.roles import Role
from tests.factories import PASSWORD, TESTSHIRE, Factory, assert_error, make_client
from tests.legal_flow import decide, device_item, file_with_documents, home, warrant_details
from tests.pdfs import pdf_bytes


def approval_form(today: str) -> dict[str, Any]:
    details = {
        "approving_body": "Testshire Borough Council",
        "approved_on": today,
        "reference": f"Ordinance {uuid.uuid4().hex[:6]}",
        "expires_on": None,
    }
    return {
        "data": {"details": json.dumps(details)},
        "files": {"policy_document": ("policy.pdf", pdf_bytes("Use policy"), "application/pdf")},
    }


async def sign_up(app: FastAPI, code: str, stem: str) -> httpx.Response:
    async with make_client(app) as anonymous:
        return await anonymous.post(
            "/api/v1/accounts",
            json={
                "email": f"{stem}-{uuid.uuid4().hex[:6]}@example.org",
                "display_name": stem.title(),
                "password": PASSWORD,
                "invite_code": code,
            },
        )


async def session_of(app: FastAPI, email: str) -> httpx.AsyncClient:
    client = make_client(app)
    answer = await client.post("/api/v1/session", json={"email": email, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    client.headers["x-csrf-token"] = answer.json()["csrf_token"]
    return client


async def test_one_operator_alone_cannot_reach_a_gagged_disclosure(
    app: FastAPI, factory: Factory, clock: ManualClock
) -> None:
    mallory = await factory.signed_in(await factory.user(Role.operator_admin))
    today = clock.now().date().isoformat()

    # 1. Create and verify an agency: one operator may do these.
    made = await mallory.post(
        "/api/v1/agencies",
        json={"name": "Shadow Police", "jurisdiction": "Testshire", "jurisdiction_area": TESTSHIRE},
    )
    assert made.status_code == 201, made.text
    agency_id = made.json()["id"]
    assert (await mallory.post(f"/api/v1/agencies/{agency_id}/verify")).status_code == 200

    # 2. Recording its approval too is refused: a second operator's act.
    approval = await mallory.post(f"/api/v1/agencies/{agency_id}/approvals", **approval_form(today))
    assert_error(approval, 409, "separation_of_duties")
    assert (await mallory.get(f"/api/v1/agencies/{agency_id}")).json()["standing"] != "active"

    # 3. An officer invite is only a proposal: its code does not work, and its proposer
    # cannot confirm it.
    proposed = await mallory.post(
        "/api/v1/admin/invites", json={"role": "agency_officer", "agency_id": agency_id}
    )
    assert proposed.status_code == 201, proposed.text
    assert proposed.json()["confirmed"] is False
    assert_error(await sign_up(app, proposed.json()["code"], "officer"), 403, "invite_unconfirmed")
    assert_error(
        await mallory.post(f"/api/v1/admin/invites/{proposed.json()['id']}/confirm"),
        409,
        "separation_of_duties",
    )

    # 4. So is a legal reviewer's invite.
    reviewer_invite = await mallory.post("/api/v1/admin/invites", json={"role": "legal_reviewer"})
    assert reviewer_invite.status_code == 201, reviewer_invite.text
    assert reviewer_invite.json()["confirmed"] is False
    code = reviewer_invite.json()["code"]
    assert_error(await sign_up(app, code, "reviewer"), 403, "invite_unconfirmed")
    assert_error(
        await mallory.post(f"/api/v1/admin/invites/{reviewer_invite.json()['id']}/confirm"),
        409,
        "separation_of_duties",
    )

    # 5. With an accomplice the steps can be made, but then neither of them may review the
    # agency's requests, nor may a reviewer either of them brought in.
    trent = await factory.signed_in(await factory.user(Role.operator_admin))
    approval = await trent.post(f"/api/v1/agencies/{agency_id}/approvals", **approval_form(today))
    assert approval.status_code == 201, approval.text
    for invite in (proposed, reviewer_invite):
        confirmed = await trent.post(f"/api/v1/admin/invites/{invite.json()['id']}/confirm")
        assert confirmed.status_code == 200, confirmed.text
    officer_account = await sign_up(app, proposed.json()["code"], "officer")
    assert officer_account.status_code == 201, officer_account.text
    reviewer_account = await sign_up(app, code, "reviewer")
    assert reviewer_account.status_code == 201, reviewer_account.text
    # The agency has its officer-administrator now: operators invite no more officers.
    again = await mallory.post(
        "/api/v1/admin/invites", json={"role": "agency_officer", "agency_id": agency_id}
    )
    assert_error(again, 409, "officer_admin_invites")

    officer = await session_of(app, officer_account.json()["email"])
    reviewer = await session_of(app, reviewer_account.json()["email"])
    target = await home(factory, "12 Elm Street")
    scope = [device_item(target.camera.id)]

    # 6. A 365-day non-disclosure order is refused at filing.
    long_gag = warrant_details(
        scope, nondisclosure_until=(clock.now() + timedelta(days=365)).isoformat()
    )
    refused = await file_with_documents(
        officer,
        uuid.UUID(agency_id),
        "warrants",
        long_gag,
        document=pdf_bytes("Warrant"),
        nondisclosure=pdf_bytes("Order"),
    )
    assert_error(refused, 400, "nondisclosure_too_long")
    # ...one within the maximum is accepted.
    short_gag = warrant_details(
        scope, nondisclosure_until=(clock.now() + timedelta(days=90)).isoformat()
    )
    filed = await file_with_documents(
        officer,
        uuid.UUID(agency_id),
        "warrants",
        short_gag,
        document=pdf_bytes("Warrant 2"),
        nondisclosure=pdf_bytes("Order 2"),
    )
    assert filed.status_code == 201, filed.text

    # 7. The reviewer the two operators made may not decide it: conflict of interest.
    for verb, body in (
        ("approve", {}),
        ("reject", {"reason": "Not enough shown to justify the search."}),
    ):
        assert_error(
            await decide(reviewer, filed.json()["id"], verb, body), 409, "conflict_of_interest"
        )
    status = await officer.get(f"/api/v1/agencies/{agency_id}/requests/{filed.json()['id']}")
    assert status.json()["status"] != "approved"
    for client in (mallory, trent, officer, reviewer, target.client):
        await client.aclose()


CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


async def _form(c: httpx.AsyncClient, page: str, action: str, data: dict[str, str]) -> Any:
    shown = await c.get(page)
    match = CSRF_FIELD.search(shown.text)
    assert match is not None
    return await c.post(action, data={**data, "csrf_token": match.group(1)})


async def test_the_admin_page_proposes_and_only_a_second_operator_confirms(
    factory: Factory,
) -> None:
    first = await factory.signed_in(await factory.user(Role.operator_admin))
    second = await factory.signed_in(await factory.user(Role.operator_admin))
    made = await _form(first, "/admin", "/admin/invites", {"role": "legal_reviewer"})
    assert made.status_code == 201 and "is a proposal" in made.text
    mine = (await first.get("/admin")).text
    [invite_id] = re.findall(
        r"/admin/invites/([0-9a-f-]{36})/confirm", (await second.get("/admin")).text
    )
    assert f"/admin/invites/{invite_id}/confirm" not in mine  # no button its route refuses
    assert "another operator confirms" in mine
    refused = await _form(first, "/admin", f"/admin/invites/{invite_id}/confirm", {})
    assert refused.status_code == 409 and "must confirm an invite you proposed" in refused.text
    done = await _form(second, "/admin", f"/admin/invites/{invite_id}/confirm", {})
    assert done.status_code == 303 and done.headers["location"] == "/admin?done=confirmed"
    assert f"/admin/invites/{invite_id}/confirm" not in (await second.get("/admin")).text
    await first.aclose()
    await second.aclose()
