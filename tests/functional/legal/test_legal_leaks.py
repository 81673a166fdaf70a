"""Issue 16, item 7 and the legal process's known limits, each tried as an attack through
the API: an unratified emergency's package downloaded anyway, a flagged agency taking the
next emergency's footage at once, footage deleted between a preservation's filing and its
review, and an officer of an agency out of good standing reading past disclosures."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from doorwarden.agencies.governance.models import MunicipalApproval
from doorwarden.clips.models import ClipHold, ClipStatus
from doorwarden.clips.tasks import run_retention
from doorwarden.clock import ManualClock
from doorwarden.config import Settings
from doorwarden.legal.disclosure.models import Package
from doorwarden.roles import Role
from tests.factories import Factory, assert_error
from tests.functional.legal.test_legal_lifecycle import (
    approved,
    clip_row,
    clips_of,
    count,
    delete_url,
    events,
    file_emergency,
    file_preservation,
    moment,
    post_proof,
    read_request,
    run_job,
    second_camera,
)
from tests.legal_flow import (
    Cast,
    Home,
    cast_with_tokens,
    decide,
    device_item,
    file_warrant,
    homes_with_tokens,
    legal_view,
)
from tests.pdfs import pdf_bytes


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"legal_interval_s": 0, "retention_interval_minutes": 0})


@pytest.fixture
async def people(factory: Factory) -> AsyncIterator[Cast]:
    made = await cast_with_tokens(factory)
    yield made
    await made.close()


@pytest.fixture
async def homes(factory: Factory) -> AsyncIterator[Callable[..., Awaitable[Home]]]:
    async with homes_with_tokens(factory) as make:
        yield make


def download_url(people: Cast, package_id: str) -> str:
    return f"/api/v1/agencies/{people.agency_id}/packages/{package_id}"


async def lapse(people: Cast, homes: Any, app: FastAPI, clock: ManualClock, settings: Settings,
                address: str = "12 Elm Street") -> tuple[Home, dict[str, Any]]:  # fmt: skip
    """An emergency approved, its package taken, its proof never filed: unratified."""
    elm = await homes(address)
    decision = await approved(people, await file_emergency(people, [device_item(elm.camera.id)]))
    clock.advance(moment(decision["proof_due_at"]) - clock.now() + timedelta(minutes=1))
    assert (await run_job(app, settings, clock)).emergencies_unratified == 1
    return elm, decision


# --- an unratified emergency's package -------------------------------------------------


async def test_an_unratified_emergencys_package_is_revoked(
    people: Cast, homes: Any, app: FastAPI, clock: ManualClock, settings: Settings
) -> None:
    elm = await homes("12 Elm Street")
    decision = await approved(people, await file_emergency(people, [device_item(elm.camera.id)]))
    [package] = decision["packages"]
    taken = await people.officer_client.get(download_url(people, package["id"]))
    assert taken.status_code == 200, taken.text  # provisional, but released at once

    clock.advance(moment(decision["proof_due_at"]) - clock.now() + timedelta(minutes=1))
    assert (await run_job(app, settings, clock)).emergencies_unratified == 1
    # Well within the link's 14 days, the package is refused: the emergency went unproven.
    refused = await people.officer_client.get(download_url(people, package["id"]))
    error = assert_error(refused, 410, "package_revoked")
    assert "unratified" in str(error["message"])
    assert error["details"] == {
        "request_id": decision["id"],
        "case_number": decision["case_number"],
    }
    # The revocation is on record with the lapse, naming the package.
    [lapsed] = await events(app, "legal:request:lapse")
    assert lapsed.extra["packages_revoked"] == [package["id"]]
    assert len(await events(app, "legal:package:download")) == 1  # the refusal took nothing
    # The request still lists it, for the record, without a link to fetch it by.
    [listed] = (await read_request(people, decision["id"]))["packages"]
    assert listed["id"] == package["id"] and listed["download_url"] == ""
    # And the request page says so, with no link that would only answer 410.
    page = await people.officer_client.get(
        f"/agencies/{people.agency_id}/requests/{decision['id']}"
    )
    assert page.status_code == 200, page.text
    assert "revoked: the emergency was not ratified" in page.text
    assert f"/packages/{package['id']}" not in page.text


async def test_a_withdrawn_proof_revokes_the_ratified_package(
    people: Cast, homes: Any, app: FastAPI, clock: ManualClock
) -> None:
    elm = await homes("12 Elm Street")
    decision = await approved(people, await file_emergency(people, [device_item(elm.camera.id)]))
    [package] = decision["packages"]
    clock.advance(timedelta(minutes=5))
    warrant = await file_warrant(
        people.officer_client, people.agency_id, [device_item(elm.camera.id)]
    )
    wid = warrant.json()["id"]
    proven = await post_proof(people.officer_client, people.agency_id, decision["id"], warrant=wid)
    assert proven.status_code == 200, proven.text
    ok = await people.officer_client.get(download_url(people, package["id"]))
    assert ok.status_code == 200, ok.text
    withdrawn = await people.officer_client.post(
        f"/api/v1/agencies/{people.agency_id}/requests/{wid}/withdraw"
    )
    assert withdrawn.status_code == 200, withdrawn.text
    refused = await people.officer_client.get(download_url(people, package["id"]))
    assert_error(refused, 410, "package_revoked")


# --- a flagged agency's next emergency -------------------------------------------------


async def test_a_flagged_agencys_emergency_discloses_nothing_until_proven(
    people: Cast, homes: Any, app: FastAPI, clock: ManualClock, settings: Settings
) -> None:
    await lapse(people, homes, app, clock, settings)
    agency = (await people.admin_client.get(f"/api/v1/agencies/{people.agency_id}")).json()
    assert agency["flagged_at"] is not None
    packages_before = await count(app, Package)

    # The flagged agency files the next emergency at once; a reviewer approves it.
    oak = await homes("3 Oak Road")
    decision = await approved(people, await file_emergency(people, [device_item(oak.camera.id)]))
    assert decision["status"] == "approved" and decision["proof_due_at"] is not None
    assert decision["packages"] == []  # nothing released on the agency's word alone
    assert await count(app, Package) == packages_before
    view = await legal_view(oak.client, oak.household_id)
    [told] = [n for n in view["notices"] if n["kind"] == "decision"]
    assert "nothing about your home is disclosed until" in told["message"]

    # Its proof filed in time, the disclosure follows.
    clock.advance(timedelta(minutes=5))
    proven = await post_proof(
        people.officer_client, people.agency_id, decision["id"], report=pdf_bytes("incident")
    )
    assert proven.status_code == 200, proven.text
    assert proven.json()["status"] == "ratified"
    [package] = proven.json()["packages"]
    taken = await people.officer_client.get(download_url(people, package["id"]))
    assert taken.status_code == 200, taken.text
    view = await legal_view(oak.client, oak.household_id)
    assert [n for n in view["notices"] if n["kind"] == "disclosure"]


async def test_a_flagged_agencys_unproven_emergency_disclosed_nothing(
    people: Cast, homes: Any, app: FastAPI, clock: ManualClock, settings: Settings
) -> None:
    await lapse(people, homes, app, clock, settings)
    oak = await homes("3 Oak Road")
    decision = await approved(people, await file_emergency(people, [device_item(oak.camera.id)]))
    clock.advance(moment(decision["proof_due_at"]) - clock.now() + timedelta(minutes=1))
    assert (await run_job(app, settings, clock)).emergencies_unratified == 1
    late = await post_proof(
        people.officer_client, people.agency_id, decision["id"], report=pdf_bytes("late")
    )
    assert_error(late, 409, "proof_late")
    assert (await read_request(people, decision["id"]))["packages"] == []
    view = await legal_view(oak.client, oak.household_id)
    [told] = [n for n in view["notices"] if "recorded as unratified" in n["message"]]
    assert "Nothing about your home was disclosed" in told["message"]
    assert [n for n in view["notices"] if n["kind"] == "disclosure"] == []


# --- preservation: held from filing ----------------------------------------------------


async def test_a_preservation_holds_clips_from_filing_without_telling_the_household(
    people: Cast,
    homes: Any,
    factory: Factory,
    app: FastAPI,
    clock: ManualClock,
    settings: Settings,
) -> None:
    elm = await homes("12 Elm Street")
    ten, eleven = await clips_of(app, elm.camera.id)
    back_camera = await second_camera(factory, elm, 10.5)
    [back] = await clips_of(app, back_camera)
    filed = await file_preservation(people, [device_item(elm.camera.id), device_item(back_camera)])
    assert filed.status_code == 201, filed.text
    rid = filed.json()["id"]

    # Before any review, the owner cannot delete the named footage, and is told nothing
    # of a hold: the refusal is the neutral one.
    refused = await elm.client.delete(delete_url(elm, ten.id))
    assert_error(refused, 409, "not_deletable_now")
    assert "hold" not in refused.text.lower() and rid not in refused.text
    assert (await legal_view(elm.client, elm.household_id))["holds"] == []
    # Retention does not take it either while the request waits.
    clock.advance(timedelta(days=40))
    await run_retention(app.state.sessionmaker, app.state.clip_store, clock.now())
    assert (await clip_row(app, ten.id)).status is ClipStatus.verified

    # Narrowed to the front door: its holds are confirmed and shown; the back door's go.
    narrowed = await decide(
        people.reviewer_client,
        rid,
        "narrow",
        {"keep_devices": [str(elm.camera.id)], "reason": "The back door is not relevant."},
    )
    assert narrowed.status_code == 200, narrowed.text
    async with app.state.sessionmaker() as db:
        holds = (
            await db.scalars(select(ClipHold).where(ClipHold.request_id == uuid.UUID(rid)))
        ).all()
    live = {h.clip_id for h in holds if h.released_at is None}
    assert live == {ten.id, eleven.id}
    assert all(h.hidden_until is None for h in holds if h.released_at is None)
    assert {h["clip_id"] for h in (await legal_view(elm.client, elm.household_id))["holds"]} == {
        str(ten.id), str(eleven.id)
    }  # fmt: skip
    assert_error(await elm.client.delete(delete_url(elm, ten.id)), 409, "legal_hold")
    gone = await elm.client.delete(delete_url(elm, back.id))
    assert gone.status_code == 204, gone.text


@pytest.mark.parametrize("ending", ["reject", "withdraw"])
async def test_a_preservation_not_granted_releases_its_holds(
    people: Cast, homes: Any, app: FastAPI, ending: str
) -> None:
    elm = await homes("12 Elm Street")
    ten, _ = await clips_of(app, elm.camera.id)
    filed = await file_preservation(people, [device_item(elm.camera.id)])
    rid = filed.json()["id"]
    assert_error(await elm.client.delete(delete_url(elm, ten.id)), 409, "not_deletable_now")
    if ending == "reject":
        done = await decide(people.reviewer_client, rid, "reject", {"reason": "No case shown."})
    else:
        done = await people.officer_client.post(
            f"/api/v1/agencies/{people.agency_id}/requests/{rid}/withdraw"
        )
    assert done.status_code == 200, done.text
    gone = await elm.client.delete(delete_url(elm, ten.id))
    assert gone.status_code == 204, gone.text


# --- an agency out of good standing ----------------------------------------------------


async def test_an_officer_out_of_good_standing_keeps_only_their_filings_status(
    people: Cast, homes: Any, factory: Factory, app: FastAPI, clock: ManualClock
) -> None:
    elm = await homes("12 Elm Street")
    mine = await approved(people, await file_emergency(people, [device_item(elm.camera.id)]))
    colleague = await factory.user(Role.agency_officer, agency_id=people.agency_id)
    other_client = await factory.with_token(colleague)
    try:
        body = {
            "case_number": "EM-colleague",
            "description": "A fire with people trapped inside the house; the camera may "
            "show who set it.",
            "attest_imminent_danger": True, "scope": [device_item(elm.camera.id)],
            "window_start": mine["window_start"], "window_end": mine["window_end"],
        }  # fmt: skip
        theirs = await other_client.post(
            f"/api/v1/agencies/{people.agency_id}/requests/emergencies", json=body
        )
        assert theirs.status_code == 201, theirs.text
        async with app.state.sessionmaker.begin() as db:
            await db.execute(
                update(MunicipalApproval)
                .where(MunicipalApproval.agency_id == people.agency_id)
                .values(revoked_at=clock.now())
            )
        base = f"/api/v1/agencies/{people.agency_id}/requests"
        listed = await people.officer_client.get(base)
        assert listed.status_code == 200, listed.text
        # Their own filing, its status, no package; not the colleague's.
        assert [r["id"] for r in listed.json()] == [mine["id"]]
        assert listed.json()[0]["status"] == "approved" and listed.json()[0]["packages"] == []
        found = await people.officer_client.get(f"{base}/{mine['id']}")
        assert found.status_code == 200 and found.json()["packages"] == []
        other = await people.officer_client.get(f"{base}/{theirs.json()['id']}")
        assert_error(other, 404, "not_found")
        [package] = mine["packages"]
        assert_error(
            await people.officer_client.get(download_url(people, package["id"])),
            403,
            "agency_no_approval",
        )
    finally:
        await other_client.aclose()
