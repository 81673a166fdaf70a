"""Governance through the API: operators record municipal approvals (with the approved
use policy) and camera programmes; owners say which programme a camera came from; and
no programme can make sharing a condition: an enrolled camera gives its agency nothing."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from doorwarden.accounts.sessions import SESSION_COOKIE
from doorwarden.agencies.governance.models import (
    CameraProgramme,
    MunicipalApproval,
    ProgrammeEnrolment,
)
from doorwarden.agencies.models import LegalDocument
from doorwarden.audit.models import AuditEvent
from doorwarden.clock import ManualClock
from doorwarden.config import Settings
from doorwarden.legal.community.models import CommunityShare
from doorwarden.legal.disclosure.models import Package
from doorwarden.legal.models import LegalRequest
from doorwarden.roles import Role
from tests.factories import BASE_URL, Factory, assert_error, make_client
from tests.legal_flow import (
    Cast,
    Home,
    at,
    cast,
    device_item,
    file_warrant,
    home,
    iso,
    legal_view,
)
from tests.pdfs import pdf_bytes

# About 0.48 square miles round (51.5, -0.1), where home() puts households.
AREA = {
    "type": "Polygon",
    "coordinates": [
        [[-0.108, 51.495], [-0.092, 51.495], [-0.092, 51.505], [-0.108, 51.505], [-0.108, 51.495]]
    ],
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Community requests here reach one or two homes: below the floor of
    `community_min_households` (tested in tests/functional/legal/test_community_oracle.py)."""
    return settings.model_copy(update={"community_min_households": 0})


@pytest.fixture
async def people(factory: Factory) -> AsyncIterator[Cast]:
    made = await cast(factory)
    yield made
    await made.close()


async def count(app: FastAPI, model: Any, *where: Any) -> int:
    async with app.state.sessionmaker() as db:
        return int(await db.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def events(app: FastAPI, tag: str) -> list[AuditEvent]:
    async with app.state.sessionmaker() as db:
        query = select(AuditEvent).where(AuditEvent.tag == tag).order_by(AuditEvent.occurred_at)
        return list((await db.scalars(query)).all())


def approval_details(today: date, **changes: Any) -> dict[str, Any]:
    details: dict[str, Any] = {
        "approving_body": "Testshire Borough Council",
        "approved_on": today.isoformat(),
        "reference": f"Ordinance {uuid.uuid4().hex[:6]}",
        "expires_on": None,
    }
    details.update(changes)
    return details


async def post_approval(
    client: httpx.AsyncClient,
    agency_id: uuid.UUID,
    details: dict[str, Any],
    *,
    document: bytes | None = None,
    content_type: str = "application/pdf",
) -> httpx.Response:
    pdf = document if document is not None else pdf_bytes(f"Use policy {uuid.uuid4()}")
    return await client.post(
        f"/api/v1/agencies/{agency_id}/approvals",
        data={"details": json.dumps(details)},
        files={"policy_document": ("policy.pdf", pdf, content_type)},
    )


async def standing(people: Cast, agency_id: uuid.UUID) -> str:
    response = await people.admin_client.get(f"/api/v1/agencies/{agency_id}")
    assert response.status_code == 200, response.text
    return str(response.json()["standing"])


def anonymous(app: FastAPI) -> httpx.AsyncClient:
    return make_client(app)


def community_body(**changes: Any) -> dict[str, Any]:
    return {
        "case_number": f"CM-{uuid.uuid4().hex[:8]}",
        "area": AREA,
        "window_start": iso(at(9)),
        "window_end": iso(at(12)),
        "public_text": "A bicycle was stolen from a front garden on Elm Street that morning.",
        **changes,
    }


# -- municipal approvals -----------------------------------------------------------------


async def test_approvals_are_recorded_by_operators_and_give_standing(
    people: Cast, factory: Factory, app: FastAPI, clock: ManualClock
) -> None:
    today = clock.now().date()
    agency_id = await factory.agency(people.admin, "Newtown Police")
    officer = await factory.signed_in(await factory.user(Role.agency_officer, agency_id=agency_id))
    resident = await factory.signed_in(await factory.user())
    assert await standing(people, agency_id) == "unverified"

    for client in (people.reviewer_client, officer, resident):
        refused = await post_approval(client, agency_id, approval_details(today))
        assert_error(refused, 403, "forbidden")
    async with anonymous(app) as nobody:
        assert_error(await post_approval(nobody, agency_id, approval_details(today)), 401)

    not_pdf = await post_approval(
        people.admin_client, agency_id, approval_details(today), document=b"a text file"
    )
    assert_error(not_pdf, 415, "not_a_pdf")
    later = await post_approval(
        people.admin_client, agency_id, approval_details(today + timedelta(days=1))
    )
    assert "after today" in str(assert_error(later, 400, "invalid_input")["message"])
    backwards = approval_details(today, expires_on=(today - timedelta(days=1)).isoformat())
    before = await post_approval(people.admin_client, agency_id, backwards)
    assert "expire before" in str(assert_error(before, 400, "invalid_input")["message"])
    unknown = await post_approval(
        people.admin_client, agency_id, approval_details(today, conditions="share all")
    )
    assert_error(unknown, 422, "validation_error")
    nowhere = await post_approval(people.admin_client, uuid.uuid4(), approval_details(today))
    assert_error(nowhere, 404, "not_found")
    assert await count(app, MunicipalApproval, MunicipalApproval.agency_id == agency_id) == 0
    assert await count(app, LegalDocument, LegalDocument.agency_id == agency_id) == 0

    # Another operator verifies: the one who records the approval may not (policy rule 8).
    verifier = await factory.signed_in(await factory.user(Role.operator_admin))
    verified = await verifier.post(f"/api/v1/agencies/{agency_id}/verify")
    assert verified.status_code == 200 and verified.json()["standing"] == "no_approval"
    await verifier.aclose()
    refused = await officer.post(
        f"/api/v1/agencies/{agency_id}/requests/community", json=community_body()
    )
    assert_error(refused, 403, "agency_no_approval")

    policy = pdf_bytes("Newtown use policy")
    details = approval_details(today, reference="Ordinance 2026-14")
    recorded = await post_approval(people.admin_client, agency_id, details, document=policy)
    assert recorded.status_code == 201, recorded.text
    approval = recorded.json()
    assert approval["agency_id"] == str(agency_id) and approval["reference"] == "Ordinance 2026-14"
    assert approval["revoked_at"] is None
    assert approval["policy_url"] == f"/api/v1/approvals/{approval['id']}/policy"
    [event] = [
        e for e in await events(app, "governance:approval:record") if e.agency_id == agency_id
    ]
    assert event.target_id == approval["id"] and event.actor_user_id == people.admin.id
    assert event.agency_id == agency_id and event.extra["reference"] == "Ordinance 2026-14"
    assert await standing(people, agency_id) == "active"
    listed = await officer.get(f"/api/v1/agencies/{agency_id}/approvals")
    assert [a["id"] for a in listed.json()] == [approval["id"]]
    filed = await officer.post(
        f"/api/v1/agencies/{agency_id}/requests/community", json=community_body()
    )
    assert filed.status_code == 201, filed.text

    # The approved use policy is a public record.
    async with anonymous(app) as nobody:
        public = await nobody.get(approval["policy_url"])
        assert public.status_code == 200, public.text
        assert public.content == policy and public.headers["content-type"] == "application/pdf"
        assert_error(await nobody.get(f"/api/v1/approvals/{uuid.uuid4()}/policy"), 404)

    # Revoked: the agency loses its standing; a second revocation is refused.
    revoke_url = f"/api/v1/agencies/{agency_id}/approvals/{approval['id']}/revoke"
    assert_error(await officer.post(revoke_url), 403, "forbidden")
    assert_error(await people.reviewer_client.post(revoke_url), 403, "forbidden")
    elsewhere = await people.admin_client.post(
        f"/api/v1/agencies/{people.agency_id}/approvals/{approval['id']}/revoke"
    )
    assert_error(elsewhere, 404, "not_found")
    assert await standing(people, agency_id) == "active"
    revoked = await people.admin_client.post(revoke_url)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"], revoked.text
    assert await standing(people, agency_id) == "no_approval"
    assert_error(await people.admin_client.post(revoke_url), 409, "already_revoked")
    assert len(await events(app, "governance:approval:revoke")) == 1
    refused = await officer.post(
        f"/api/v1/agencies/{agency_id}/requests/community", json=community_body()
    )
    assert_error(refused, 403, "agency_no_approval")
    # Still public after revocation: the record of what was approved stays.
    async with anonymous(app) as nobody:
        assert (await nobody.get(approval["policy_url"])).content == policy
    await officer.aclose()
    await resident.aclose()


async def test_an_approval_ends_on_its_expiry_date(
    people: Cast, factory: Factory, clock: ManualClock
) -> None:
    today = clock.now().date()
    agency_id = await factory.agency(people.admin, "Shorttown Police")
    verifier = await factory.signed_in(await factory.user(Role.operator_admin))
    await verifier.post(f"/api/v1/agencies/{agency_id}/verify")
    await verifier.aclose()
    expires = today + timedelta(days=3)
    details = approval_details(today, expires_on=expires.isoformat())
    assert (await post_approval(people.admin_client, agency_id, details)).status_code == 201
    assert await standing(people, agency_id) == "active"
    officer = await factory.signed_in(await factory.user(Role.agency_officer, agency_id=agency_id))
    clock.advance(timedelta(days=3))  # the expiry day itself: still in force
    assert clock.now().date() == expires
    assert await standing(people, agency_id) == "active"
    clock.advance(timedelta(days=1))
    assert await standing(people, agency_id) == "no_approval"
    refused = await officer.post(
        f"/api/v1/agencies/{agency_id}/requests/community", json=community_body()
    )
    assert_error(refused, 403, "agency_no_approval")
    await officer.aclose()


class TestWhereNoApprovalIsRequired:
    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update={"legal_require_municipal_approval": False})

    async def test_a_verified_agency_is_active_without_one(
        self, factory: Factory, app: FastAPI
    ) -> None:
        admin = await factory.user(Role.operator_admin)
        admin_client = await factory.signed_in(admin)
        agency_id = await factory.agency(admin, "Lawless County Police")
        officer = await factory.signed_in(
            await factory.user(Role.agency_officer, agency_id=agency_id)
        )
        read = await admin_client.get(f"/api/v1/agencies/{agency_id}")
        assert read.json()["standing"] == "unverified"
        refused = await officer.post(
            f"/api/v1/agencies/{agency_id}/requests/community", json=community_body()
        )
        assert_error(refused, 403, "agency_unverified")
        verified = await admin_client.post(f"/api/v1/agencies/{agency_id}/verify")
        assert verified.json()["standing"] == "active", verified.text
        assert await count(app, MunicipalApproval) == 0
        filed = await officer.post(
            f"/api/v1/agencies/{agency_id}/requests/community", json=community_body()
        )
        assert filed.status_code == 201, filed.text
        async with anonymous(app) as nobody:
            assert (await nobody.get("/api/v1/policy")).json()[
                "require_municipal_approval"
            ] is False
        await officer.aclose()
        await admin_client.aclose()


# -- camera programmes -------------------------------------------------------------------


async def approval_id_of(people: Cast, agency_id: uuid.UUID) -> str:
    listed = await people.admin_client.get(f"/api/v1/agencies/{agency_id}/approvals")
    assert listed.status_code == 200, listed.text
    return str(listed.json()[0]["id"])


def programme_body(approval_id: str, **changes: Any) -> dict[str, Any]:
    return {
        "name": "Safer Doorsteps",
        "kind": "giveaway",
        "funding_source": "Testshire Police crime-prevention fund",
        "approval_id": approval_id,
        "description": "Free doorbell cameras for residents of the Elm estate.",
        **changes,
    }


async def new_programme(people: Cast, **changes: Any) -> dict[str, Any]:
    approval = await approval_id_of(people, people.agency_id)
    created = await people.admin_client.post(
        f"/api/v1/agencies/{people.agency_id}/programmes", json=programme_body(approval, **changes)
    )
    assert created.status_code == 201, created.text
    return created.json()  # type: ignore[no-any-return]


def enrol_url(made: Home, device_id: uuid.UUID | None = None) -> str:
    return f"/api/v1/households/{made.household_id}/devices/{device_id or made.camera.id}/programme"


async def enrol(made: Home, programme_id: str | None) -> httpx.Response:
    return await made.client.put(enrol_url(made), json={"programme_id": programme_id})


async def public_programmes(app: FastAPI) -> dict[str, dict[str, Any]]:
    async with anonymous(app) as nobody:
        listed = await nobody.get("/api/v1/programmes")
    assert listed.status_code == 200, listed.text
    return {p["id"]: p for p in listed.json()}


async def test_a_programme_needs_its_agencys_approval_in_force(
    people: Cast, factory: Factory, app: FastAPI, clock: ManualClock
) -> None:
    url = f"/api/v1/agencies/{people.agency_id}/programmes"
    today = clock.now().date()
    other = await factory.agency_in_good_standing(people.admin, "Otherton Police")
    foreign = await approval_id_of(people, other)
    assert_error(
        await people.admin_client.post(url, json=programme_body(foreign)), 404, "not_found"
    )
    assert_error(await people.admin_client.post(url, json=programme_body(str(uuid.uuid4()))), 404)
    # A revoked approval, and one that has expired, are not in force.
    revoked = await post_approval(people.admin_client, people.agency_id, approval_details(today))
    revoked_id = revoked.json()["id"]
    await people.admin_client.post(
        f"/api/v1/agencies/{people.agency_id}/approvals/{revoked_id}/revoke"
    )
    assert_error(await people.admin_client.post(url, json=programme_body(revoked_id)), 400)
    old = approval_details(
        today - timedelta(days=400), expires_on=(today - timedelta(days=35)).isoformat()
    )
    expired = await post_approval(people.admin_client, people.agency_id, old)
    assert expired.status_code == 201, expired.text
    refused = await people.admin_client.post(url, json=programme_body(expired.json()["id"]))
    assert_error(refused, 400, "invalid_input")
    assert await count(app, CameraProgramme) == 0
    assert await events(app, "governance:programme:create") == []


@pytest.mark.parametrize(
    "extra",
    [
        {"sharing_required": True},
        {"consent": "all"},
        {"conditions": ["share clips on request"]},
        {"auto_share": True},
        {"agency_access": "live"},
    ],
)
async def test_no_condition_can_even_be_expressed(
    people: Cast, app: FastAPI, extra: dict[str, Any]
) -> None:
    approval = await approval_id_of(people, people.agency_id)
    refused = await people.admin_client.post(
        f"/api/v1/agencies/{people.agency_id}/programmes",
        json=programme_body(approval, **extra),
    )
    error = assert_error(refused, 422, "validation_error")
    assert next(iter(extra)) in json.dumps(error["details"])
    assert await count(app, CameraProgramme) == 0


async def test_programmes_are_run_by_operators_and_listed_publicly(
    people: Cast, factory: Factory, app: FastAPI
) -> None:
    approval = await approval_id_of(people, people.agency_id)
    url = f"/api/v1/agencies/{people.agency_id}/programmes"
    resident = await factory.signed_in(await factory.user())
    for client in (people.officer_client, people.reviewer_client, resident):
        assert_error(await client.post(url, json=programme_body(approval)), 403, "forbidden")
    await resident.aclose()

    programme = await new_programme(people)
    assert programme["agency_id"] == str(people.agency_id) and programme["ended_at"] is None
    assert programme["approval_id"] == approval and programme["kind"] == "giveaway"
    assert programme["cameras_enrolled"] == 0
    [created] = await events(app, "governance:programme:create")
    assert created.target_id == programme["id"] and created.actor_user_id == people.admin.id
    listed = await public_programmes(app)
    assert listed[programme["id"]]["cameras_enrolled"] == 0
    assert listed[programme["id"]]["funding_source"] == programme["funding_source"]

    # Cameras in service are counted; a removed one is not.
    homes = [
        await home(factory, f"{n} Elm Street", clip_hours=()) for n in (1, 2, 3)
    ]  # fmt: skip
    for made in homes:
        assert (await enrol(made, programme["id"])).status_code == 200
    assert (await public_programmes(app))[programme["id"]]["cameras_enrolled"] == 3
    removed = await homes[0].client.delete(
        f"/api/v1/households/{homes[0].household_id}/devices/{homes[0].camera.id}"
    )
    assert removed.status_code == 204, removed.text
    assert (await public_programmes(app))[programme["id"]]["cameras_enrolled"] == 2

    # Ending it: by an operator, under its own agency only; it stays listed.
    end = f"{url}/{programme['id']}/end"
    assert_error(await people.officer_client.post(end), 403, "forbidden")
    other = await factory.agency_in_good_standing(people.admin, "Otherton Police")
    assert_error(
        await people.admin_client.post(
            f"/api/v1/agencies/{other}/programmes/{programme['id']}/end"
        ),
        404,
    )
    ended = await people.admin_client.post(end)
    assert ended.status_code == 200 and ended.json()["ended_at"], ended.text
    again = await people.admin_client.post(end)
    assert again.status_code == 200 and again.json()["ended_at"] == ended.json()["ended_at"]
    assert len(await events(app, "governance:programme:end")) == 1
    after = (await public_programmes(app))[programme["id"]]
    assert after["ended_at"] and after["cameras_enrolled"] == 2


async def test_only_the_owner_says_where_a_camera_came_from(
    people: Cast, factory: Factory, app: FastAPI
) -> None:
    programme = await new_programme(people)
    mine = await home(factory, "1 Elm Street", clip_hours=())
    theirs = await home(factory, "2 Elm Street", clip_hours=())
    member = await factory.user()
    await factory.share(mine.household_id, mine.owner, member)
    member_client = await factory.signed_in(member)
    body = {"programme_id": programme["id"]}

    assert_error(await member_client.put(enrol_url(mine), json=body), 403, "forbidden")
    # Another household's camera: not found under one's own household, refused under theirs.
    assert_error(
        await mine.client.put(enrol_url(mine, theirs.camera.id), json=body), 404, "not_found"
    )
    assert_error(await mine.client.put(enrol_url(theirs), json=body), 403, "forbidden")
    for client in (people.officer_client, people.admin_client, people.reviewer_client):
        assert_error(await client.put(enrol_url(mine), json=body), 403, "forbidden")
    unknown = await enrol(mine, str(uuid.uuid4()))
    assert_error(unknown, 404, "not_found")
    bad = await mine.client.put(enrol_url(mine), json={**body, "consent": True})
    assert_error(bad, 422, "validation_error")
    assert await count(app, ProgrammeEnrolment) == 0
    await member_client.aclose()

    enrolled = await enrol(mine, programme["id"])
    assert enrolled.status_code == 200 and enrolled.json() == body, enrolled.text
    [event] = await events(app, "governance:programme:enrol")
    assert event.household_id == mine.household_id and event.target_id == str(mine.camera.id)
    assert event.actor_user_id == mine.owner.id and event.extra == {"programme": programme["id"]}
    assert (await public_programmes(app))[programme["id"]]["cameras_enrolled"] == 1

    # An ended programme takes no new cameras; the ones it had stay marked.
    ended = await people.admin_client.post(
        f"/api/v1/agencies/{people.agency_id}/programmes/{programme['id']}/end"
    )
    assert ended.status_code == 200, ended.text
    assert_error(await enrol(theirs, programme["id"]), 400, "invalid_input")
    assert (await enrol(mine, programme["id"])).status_code == 200  # already in it
    assert await count(app, ProgrammeEnrolment) == 1

    # Unenrolled with null: audited, no longer counted; null again changes nothing.
    out = await enrol(mine, None)
    assert out.status_code == 200 and out.json() == {"programme_id": None}, out.text
    [left] = await events(app, "governance:programme:unenrol")
    assert left.household_id == mine.household_id and left.target_id == str(mine.camera.id)
    assert left.extra == {"programme": programme["id"]}
    assert await count(app, ProgrammeEnrolment) == 0
    assert (await public_programmes(app))[programme["id"]]["cameras_enrolled"] == 0
    assert (await enrol(mine, None)).status_code == 200
    assert len(await events(app, "governance:programme:unenrol")) == 1


# -- no automatic consent ----------------------------------------------------------------


async def websocket_status(app: FastAPI, path: str, cookie: str) -> tuple[str, int | None]:
    """Open a WebSocket straight against the ASGI app as a browser on this site would;
    ("accept", None) or ("deny", HTTP status) or ("close", code)."""
    sent: list[dict[str, Any]] = []
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await inbox.put({"type": "websocket.connect"})
    answered = asyncio.Event()

    async def receive() -> dict[str, Any]:
        return await inbox.get()

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] in ("websocket.accept", "websocket.close") or (
            message["type"] == "websocket.http.response.body" and not message.get("more_body")
        ):
            answered.set()

    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "scheme": "ws",
        "server": ("testserver", 80),
        "client": ("198.51.100.7", 40000),
        "root_path": "",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [
            (b"host", b"testserver"),
            (b"origin", BASE_URL.encode()),
            (b"cookie", cookie.encode()),
            (b"user-agent", b"pytest"),
        ],
        "subprotocols": [],
        "extensions": {"websocket.http.response": {}},
    }
    task = asyncio.create_task(app(scope, receive, send))
    try:
        await asyncio.wait_for(answered.wait(), 10)
    finally:
        await inbox.put({"type": "websocket.disconnect", "code": 1000})
        await asyncio.wait_for(task, 10)
    first = sent[0]
    if first["type"] == "websocket.http.response.start":
        return "deny", int(first["status"])
    if first["type"] == "websocket.close":
        return "close", int(first.get("code", 1000))
    return "accept", None


def cookie_of(client: httpx.AsyncClient) -> str:
    return f"{SESSION_COOKIE}={client.cookies[SESSION_COOKIE]}"


async def footage_routes(made: Home) -> list[str]:
    clips = await made.client.get(f"/api/v1/households/{made.household_id}/clips")
    assert clips.status_code == 200 and clips.json(), clips.text
    clip = clips.json()[0]["id"]
    base = f"/api/v1/households/{made.household_id}"
    return [
        f"{base}/clips",
        f"{base}/clips?device_id={made.camera.id}",
        f"{base}/clips/{clip}/video",
        f"{base}/clips/{clip}/download",
        f"{base}/clips/{clip}/thumbnail",
        f"{base}/clips/{clip}/sealed",
        f"{base}/legal",
        f"{base}/devices",
        f"/households/{made.household_id}/clips",
        f"/households/{made.household_id}/clips/{clip}",
        f"/households/{made.household_id}/cameras/{made.camera.id}/live",
    ]


async def test_enrolment_gives_the_agency_nothing(
    people: Cast, factory: Factory, app: FastAPI
) -> None:
    """No programme can make sharing a condition: enrolled devices get no automatic
    consent of any kind. Everything the agency gets is what it gets for any camera."""
    programme = await new_programme(people)
    enrolled = await home(factory, "1 Elm Street", clip_hours=(10.0, 11.0))
    plain = await home(factory, "2 Elm Street", clip_hours=(10.0, 11.0))
    assert (await enrol(enrolled, programme["id"])).status_code == 200
    officer = people.officer_client
    base = f"/api/v1/agencies/{people.agency_id}/requests"

    # A community request from the programme's agency: both homes are only told.
    filed = await officer.post(f"{base}/community", json=community_body(case_number="CM-GIFT"))
    assert filed.status_code == 201, filed.text
    rid = filed.json()["id"]
    told = []
    for made in (enrolled, plain):
        view = await legal_view(made.client, made.household_id)
        [notice] = view["notices"]
        [asked] = view["community_requests"]
        assert (
            asked["id"] == rid
            and asked["shared_clips"] == []
            and len(asked["shareable_clips"]) == 2
        )
        told.append((notice["kind"], notice["message"], asked["status"]))
    assert told[0] == told[1] and told[0][0] == "community"
    assert (await officer.get(f"{base}/{rid}/shares")).json() == []
    assert_error(await officer.post(f"{base}/{rid}/packages"), 409, "nothing_shared")
    assert await count(app, CommunityShare) == 0

    # No path to the footage or the live view, for either camera.
    for made in (enrolled, plain):
        for path in await footage_routes(made):
            got = await officer.get(path)
            assert got.status_code == 403, (path, got.status_code)
            if path.startswith("/api/"):
                assert_error(got, 403, "forbidden")
            # The owner's own session reaches each of them: the refusal is the officer's.
            assert (await made.client.get(path)).status_code == 200, path
        live = f"/api/v1/households/{made.household_id}/devices/{made.camera.id}/live"
        assert await websocket_status(app, live, cookie_of(officer)) == ("deny", 403)
        # The check is real: the owner's own browser is let in.
        assert (await websocket_status(app, live, cookie_of(made.client)))[0] == "accept"

    # A warrant naming the enrolled camera waits for a reviewer, like any other.
    statuses = []
    for made in (enrolled, plain):
        warrant = await file_warrant(officer, people.agency_id, [device_item(made.camera.id)])
        assert warrant.status_code == 201, warrant.text
        body = warrant.json()
        statuses.append((body["status"], body["outcome"], body["packages"]))
        read = await officer.get(f"{base}/{body['id']}")
        assert read.json()["status"] == "submitted" and read.json()["packages"] == []
        queued = await people.reviewer_client.get(f"/api/v1/review/requests/{body['id']}")
        assert queued.status_code == 200, queued.text
        assert queued.json()["request"]["status"] == "submitted"
        assert [t["device_id"] for t in queued.json()["targets"]] == [str(made.camera.id)]
    assert statuses == [("submitted", None, [])] * 2
    assert await count(app, Package) == 0
    assert await count(app, LegalRequest) == 3
    # Nothing about the enrolment reached the agency's view of anything.
    for answer in (await officer.get(base), await officer.get(f"{base}/{rid}")):
        assert programme["id"] not in answer.text and "programme" not in answer.text
