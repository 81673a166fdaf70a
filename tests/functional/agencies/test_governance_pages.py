"""The operator's part of the agency page (jurisdiction, contacts, approvals, programmes),
the instance policy page, the owner's programme mark on the Cameras page, and the legal
hold on the clip player: what each shows, and what each refuses, with its reason."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from doorwarden.agencies.governance.models import CameraProgramme, MunicipalApproval
from doorwarden.clips.models import Clip, ClipHold
from doorwarden.clock import ManualClock
from tests.factories import Factory, make_client
from tests.functional.legal.test_legal_pages import pdf, submit, text_of
from tests.legal_flow import Cast, cast, file_warrant, home

AREA = {
    "type": "Polygon",
    "coordinates": [[[-0.3, 51.4], [0.1, 51.4], [0.1, 51.6], [-0.3, 51.6], [-0.3, 51.4]]],
}


@pytest.fixture
async def people(factory: Factory) -> AsyncIterator[Cast]:
    made = await cast(factory)
    yield made
    await made.close()


def page_of(people: Cast) -> str:
    return f"/agencies/{people.agency_id}"


async def test_the_operator_edits_jurisdiction_and_contacts(people: Cast) -> None:
    admin, page = people.admin_client, page_of(people)
    shown = await admin.get(page)
    assert 'id="jurisdiction-area-map"' in shown.text and "Record approval" in shown.text
    edit = {
        "kind": "sheriff",
        "jurisdiction": "Testshire County",
        "jurisdiction_area": "not json",
        "contact_name": ["Sgt. Pepper", ""],
        "contact_role": ["Legal liaison", ""],
        "contact_email": ["liaison@testshire.example", ""],
        "contact_phone": ["+44 20 7946 0000", ""],
    }
    refused = await submit(admin, page, f"{page}/edit", edit)
    assert refused.status_code == 400
    assert "Jurisdiction area: this is not GeoJSON" in refused.text
    assert 'value="Testshire County"' in refused.text and "not json</textarea>" in refused.text
    deep = {**edit, "jurisdiction_area": "[" * 100_000 + "]" * 100_000}  # no 500
    refused = await submit(admin, page, f"{page}/edit", deep)
    assert refused.status_code == 400 and "this is not GeoJSON" in refused.text
    line = {"type": "Polygon", "coordinates": [[[0, 51], [0.1, 51], [0, 51]]]}
    refused = await submit(
        admin, page, f"{page}/edit", {**edit, "jurisdiction_area": json.dumps(line)}
    )
    assert refused.status_code == 400 and "The jurisdiction area is not usable" in refused.text
    bad_mail = {**edit, "jurisdiction_area": json.dumps(AREA), "contact_email": ["nope", ""]}
    refused = await submit(admin, page, f"{page}/edit", bad_mail)
    assert refused.status_code == 400 and "Contacts:" in refused.text
    nameless = {**edit, "jurisdiction_area": json.dumps(AREA), "contact_name": ["", ""]}
    refused = await submit(admin, page, f"{page}/edit", nameless)
    assert refused.status_code == 400 and "each contact needs a name" in refused.text

    saved = await submit(
        admin, page, f"{page}/edit", {**edit, "jurisdiction_area": json.dumps(AREA)}
    )
    assert saved.status_code == 303, saved.text
    after = text_of(await admin.get(saved.headers["location"]))
    assert "Jurisdiction and contacts saved." in after
    assert "Testshire County" in after and "sheriff" in after
    assert "Sgt. Pepper, Legal liaison" in after and "liaison@testshire.example" in after
    officer = text_of(await people.officer_client.get(page))
    assert "Sgt. Pepper" in officer and "Save jurisdiction" not in officer


async def test_approvals_are_recorded_with_their_use_policy_and_revoked(
    people: Cast, factory: Factory
) -> None:
    admin, page = people.admin_client, page_of(people)
    form = {
        "approving_body": "Testshire Council",
        "approved_on": "2026-11-01",
        "reference": "Ord 7",
    }
    refused = await submit(admin, page, f"{page}/approvals", form)
    assert refused.status_code == 400 and "Attach the use policy" in refused.text
    not_pdf = {"policy_document": ("policy.pdf", b"<html>", "text/html")}
    refused = await submit(admin, page, f"{page}/approvals", form, not_pdf)
    assert refused.status_code == 415 and "must be a PDF" in refused.text
    assert 'value="Ord 7"' in refused.text
    future = {**form, "approved_on": "2099-01-01"}
    refused = await submit(admin, page, f"{page}/approvals", future, {"policy_document": pdf()})
    assert refused.status_code == 400 and "cannot be dated after today" in refused.text

    recorded = await submit(admin, page, f"{page}/approvals", form, {"policy_document": pdf()})
    assert recorded.status_code == 303, recorded.text
    async with factory.app.state.sessionmaker() as db:
        approvals = (await db.scalars(select(MunicipalApproval))).all()
    assert len(approvals) == 2  # the factory's, and this one
    shown = await admin.get(page)
    for approval in approvals:
        assert f"/api/v1/approvals/{approval.id}/policy" in shown.text
    policy = await admin.get(f"/api/v1/approvals/{approvals[0].id}/policy")
    assert policy.status_code == 200 and policy.content.startswith(b"%PDF-")

    for approval in approvals:
        revoked = await submit(admin, page, f"{page}/approvals/{approval.id}/revoke", {})
        assert revoked.status_code == 303
    twice = await submit(admin, page, f"{page}/approvals/{approvals[0].id}/revoke", {})
    assert twice.status_code == 409 and "revoked already" in twice.text
    officer = text_of(await people.officer_client.get(page))
    assert "No municipal approval in force" in officer
    assert "this agency has no municipal approval on file" in officer


async def test_programmes_are_created_and_ended_and_owners_mark_their_cameras(
    people: Cast, factory: Factory
) -> None:
    admin, page = people.admin_client, page_of(people)
    async with factory.app.state.sessionmaker() as db:
        approval = (await db.scalars(select(MunicipalApproval))).one()
    form = {
        "name": "Safe Streets",
        "kind": "giveaway",
        "funding_source": "Testshire Council budget 2026",
        "approval_id": str(approval.id),
    }
    refused = await submit(admin, page, f"{page}/programmes", {**form, "name": ""})
    assert refused.status_code == 400 and "Name: this is required." in refused.text
    created = await submit(admin, page, f"{page}/programmes", form)
    assert created.status_code == 303, created.text
    async with factory.app.state.sessionmaker() as db:
        programme = (await db.scalars(select(CameraProgramme))).one()

    elm = await home(factory, "12 Elm Street")
    cameras = f"/households/{elm.household_id}/cameras"
    action = f"{cameras}/{elm.camera.id}/programme"
    shown = await elm.client.get(cameras)
    assert "Safe Streets" in shown.text and "no programme" in shown.text
    unknown = await submit(elm.client, cameras, action, {"programme_id": str(uuid.uuid4())})
    assert unknown.status_code == 404 and "No such programme." in unknown.text
    marked = await submit(elm.client, cameras, action, {"programme_id": str(programme.id)})
    assert marked.status_code == 303
    after = await elm.client.get(cameras)
    assert re.search(r'programme-mark">[^<]*Safe Streets', after.text)
    listed = await elm.client.get("/api/v1/programmes")
    assert listed.json()[0]["cameras_enrolled"] == 1
    cleared = await submit(elm.client, cameras, action, {"programme_id": ""})
    assert cleared.status_code == 303
    assert "programme-mark" not in (await elm.client.get(cameras)).text

    ended = await submit(admin, page, f"{page}/programmes/{programme.id}/end", {})
    assert ended.status_code == 303
    assert "ended" in text_of(await admin.get(page))
    late = await submit(elm.client, cameras, action, {"programme_id": str(programme.id)})
    assert late.status_code == 400 and "That programme has ended" in late.text


async def test_operators_see_no_request_of_the_agency(people: Cast, factory: Factory) -> None:
    await home(factory, "12 Elm Street")
    filed = await file_warrant(
        people.officer_client, people.agency_id, [{"kind": "address", "address": "12 Elm Street"}]
    )
    assert filed.status_code == 201, filed.text
    case = filed.json()["case_number"]
    assert case in (await people.officer_client.get(page_of(people))).text
    assert case not in (await people.admin_client.get(page_of(people))).text
    assert case not in (await people.reviewer_client.get(page_of(people))).text


async def test_the_instance_policy_page_switches_community_requests(
    people: Cast, factory: Factory
) -> None:
    async with make_client(factory.app) as anonymous:
        public = await anonymous.get("/policy")
    assert public.status_code == 200 and "square miles" in public.text
    assert "Save policy" not in public.text
    admin = people.admin_client
    nav = await admin.get("/admin")
    assert 'href="/policy"' in nav.text
    switched = await submit(admin, "/policy", "/policy", {"community_requests": "off"})
    assert switched.status_code == 303
    assert 'id="community-state">off' in (await admin.get("/policy")).text
    officer = people.officer_client
    agency = await officer.get(page_of(people))
    assert "Community requests are switched off" in agency.text
    assert "/requests/new/community" not in agency.text
    new = f"{page_of(people)}/requests/new/community"
    form = {
        "case_number": "C-1",
        "window_start": "2026-11-25T09:00",
        "window_end": "2026-11-25T12:00",
        "public_text": "Twenty characters or more of text.",
        "area": json.dumps(AREA),
    }
    refused = await submit(officer, new, new, form)
    assert refused.status_code == 403 and "switched off on this instance" in refused.text


async def test_the_player_shows_a_hold_only_once_the_owner_may_know_of_it(
    factory: Factory, clock: ManualClock
) -> None:
    elm = await home(factory, "12 Elm Street", clip_hours=(10.0,))
    async with factory.app.state.sessionmaker.begin() as db:
        clip = (await db.scalars(select(Clip).where(Clip.device_id == elm.camera.id))).one()
        db.add(
            ClipHold(
                clip_id=clip.id,
                reason="Preservation",
                expires_at=clock.now() + timedelta(days=90),
                hidden_until=clock.now() + timedelta(days=5),
            )
        )
    player = f"/households/{elm.household_id}/clips/{clip.id}"
    assert "legal hold" not in (await elm.client.get(player)).text
    clock.advance(timedelta(days=6))
    again = await factory.signed_in(elm.owner)
    shown = text_of(await again.get(player))
    await again.aclose()
    until = (clock.now() + timedelta(days=84)).strftime("%Y-%m-%d")
    assert "This clip is under a legal hold until " + until in re.sub(r"<[^>]+>", "", shown)
