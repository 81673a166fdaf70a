"""A legal request after its decision, through the API and the periodic job, with the
clock moved: preservation holds (owner deletion and retention refused, one extension,
release when they end), holds and notices kept from the owner under a court's
non-disclosure order until it ends, emergency disclosures proven or left unratified, and
every transition the state machines forbid refused with nothing changed."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from doorwarden.audit.models import AuditEvent
from doorwarden.clips import service as clip_service
from doorwarden.clips.models import Clip, ClipHold, ClipStatus
from doorwarden.clips.tasks import run_retention
from doorwarden.clock import ManualClock
from doorwarden.config import Settings
from doorwarden.crypto.manifest import GENESIS
from doorwarden.legal.disclosure.models import Package, PackageClip
from doorwarden.legal.lifecycle import DeadlineResult
from doorwarden.legal.models import LegalRequest, Notice
from doorwarden.legal.tasks import run_legal_deadlines
from doorwarden.roles import Role
from tests.factories import Factory, assert_error
from tests.legal_flow import (
    Cast,
    Home,
    address_item,
    at,
    cast_with_tokens,
    decide,
    device_item,
    file_warrant,
    file_with_documents,
    homes_with_tokens,
    iso,
    legal_view,
    warrant_details,
)
from tests.pdfs import pdf_bytes
from tests.sealed_clips import seal_clip, upload

PRESERVATION_DAYS = 90  # the default, asserted below so a changed default is noticed
PROOF_HOURS = 48


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The job runs when a test says so, at the time the test has moved the clock to.
    return settings.model_copy(update={"legal_interval_s": 0, "retention_interval_minutes": 0})


@pytest.fixture
async def people(factory: Factory) -> AsyncIterator[Cast]:
    made = await cast_with_tokens(factory)
    yield made
    await made.close()


@pytest.fixture
async def homes(factory: Factory) -> AsyncIterator[Callable[..., Awaitable[Home]]]:
    """Make a home (tests/legal_flow.py) whose owner's client holds an API token."""
    async with homes_with_tokens(factory) as make:
        yield make


# --- helpers -------------------------------------------------------------------------


async def clips_of(app: FastAPI, device_id: uuid.UUID) -> list[Clip]:
    async with app.state.sessionmaker() as db:
        query = select(Clip).where(Clip.device_id == device_id).order_by(Clip.sequence)
        return list((await db.scalars(query)).all())


async def clip_row(app: FastAPI, clip_id: uuid.UUID) -> Clip:
    async with app.state.sessionmaker() as db:
        clip = await db.get(Clip, clip_id)
        assert clip is not None
        return clip


async def holds_of(app: FastAPI, request_id: str) -> list[ClipHold]:
    async with app.state.sessionmaker() as db:
        query = select(ClipHold).where(ClipHold.request_id == uuid.UUID(request_id))
        return list((await db.scalars(query)).all())


async def events(app: FastAPI, *tags: str) -> list[AuditEvent]:
    async with app.state.sessionmaker() as db:
        query = select(AuditEvent).order_by(AuditEvent.occurred_at, AuditEvent.id)
        if tags:
            query = query.where(AuditEvent.tag.in_(tags))
        return list((await db.scalars(query)).all())


async def count(app: FastAPI, model: type[Any]) -> int:
    async with app.state.sessionmaker() as db:
        return int(await db.scalar(select(func.count()).select_from(model)) or 0)


async def run_job(app: FastAPI, settings: Settings, clock: ManualClock) -> DeadlineResult:
    return await run_legal_deadlines(app.state.sessionmaker, settings, clock.now())


def moment(value: str | None) -> datetime:
    assert value is not None
    return datetime.fromisoformat(value)


async def second_camera(factory: Factory, found: Home, hour: float) -> uuid.UUID:
    """Another camera in the same household, with one clip at `hour`."""
    camera = await factory.camera(found.owner, found.household_id, name="Back door")
    sealed = seal_clip(
        camera.id,
        camera.key,
        camera.recipients,
        0,
        GENESIS,
        size=40_000,
        start=at(hour).isoformat(timespec="milliseconds"),
    )
    done = await upload(camera.client, sealed)
    assert done.status_code == 200, done.text
    await camera.client.aclose()
    return camera.id


def preservation_details(scope: list[dict[str, Any]], **changes: Any) -> dict[str, Any]:
    details: dict[str, Any] = {
        "case_number": f"PR-{uuid.uuid4().hex[:8]}",
        "scope": scope,
        "window_start": iso(at(9)),
        "window_end": iso(at(12)),
        "justification": "A warrant for the burglary at 12 Elm Street is being sought.",
    }
    details.update(changes)
    return {k: v for k, v in details.items() if v is not None}


async def file_preservation(
    people: Cast, scope: list[dict[str, Any]], *, order: bytes | None = None, **changes: Any
) -> httpx.Response:
    return await file_with_documents(
        people.officer_client,
        people.agency_id,
        "preservations",
        preservation_details(scope, **changes),
        nondisclosure=order,
    )


async def file_emergency(
    people: Cast, scope: list[dict[str, Any]], **changes: Any
) -> httpx.Response:
    body = {
        "case_number": f"EM-{uuid.uuid4().hex[:8]}",
        "description": "A child was seen being taken into a van outside 12 Elm Street; "
        "the van's plate may be on the door camera.",
        "attest_imminent_danger": True,
        "scope": scope,
        "window_start": iso(at(9)),
        "window_end": iso(at(12)),
        **changes,
    }
    return await people.officer_client.post(
        f"/api/v1/agencies/{people.agency_id}/requests/emergencies", json=body
    )


async def approved(people: Cast, filed: httpx.Response, **body: Any) -> dict[str, Any]:
    assert filed.status_code == 201, filed.text
    decision = await decide(people.reviewer_client, filed.json()["id"], "approve", body)
    assert decision.status_code == 200, decision.text
    return decision.json()  # type: ignore[no-any-return]


async def post_proof(
    client: httpx.AsyncClient,
    agency_id: uuid.UUID,
    request_id: str,
    *,
    warrant: str | None = None,
    report: bytes | None = None,
) -> httpx.Response:
    data = {"details": json.dumps({"warrant_request_id": warrant})} if warrant else None
    files = {"incident_report": ("report.pdf", report, "application/pdf")} if report else None
    return await client.post(
        f"/api/v1/agencies/{agency_id}/requests/{request_id}/proof", data=data, files=files
    )


async def read_request(people: Cast, request_id: str) -> dict[str, Any]:
    found = await people.officer_client.get(
        f"/api/v1/agencies/{people.agency_id}/requests/{request_id}"
    )
    assert found.status_code == 200, found.text
    return found.json()  # type: ignore[no-any-return]


def delete_url(found: Home, clip_id: uuid.UUID) -> str:
    return f"/api/v1/households/{found.household_id}/clips/{clip_id}"


# --- 1. preservation -----------------------------------------------------------------


async def test_a_preservation_needs_a_justification(people: Cast, homes: Any, app: FastAPI) -> None:
    elm = await homes("12 Elm Street")
    for justification in (None, "", "too short"):
        refused = await file_preservation(
            people, [device_item(elm.camera.id)], justification=justification
        )
        assert_error(refused, 422, "validation_error")
    assert await count(app, LegalRequest) == 0


async def test_a_preservation_holds_the_clips_until_it_ends(
    people: Cast,
    homes: Any,
    factory: Factory,
    app: FastAPI,
    clock: ManualClock,
    settings: Settings,
) -> None:
    assert settings.preservation_days == PRESERVATION_DAYS
    store = app.state.clip_store
    elm = await homes("12 Elm Street", clip_hours=(8.0, 10.0, 11.0))
    back_door = await second_camera(factory, elm, 10.5)
    oak = await homes("3 Oak Road", clip_hours=(10.0, 11.0))
    early, ten, eleven = await clips_of(app, elm.camera.id)
    [back] = await clips_of(app, back_door)
    oak_clips = await clips_of(app, oak.camera.id)

    filed = await file_preservation(people, [device_item(elm.camera.id)])
    assert filed.status_code == 201, filed.text
    rid = filed.json()["id"]
    decision = await approved(people, filed)
    decided_at = moment(decision["decided_at"])
    assert decision["status"] == "approved" and decided_at == clock.now()
    hold_until = moment(decision["hold_until"])
    assert hold_until == decided_at + timedelta(days=PRESERVATION_DAYS)
    assert decision["packages"] == []

    # Holds on exactly the named camera's clips in the window: not the 08:00 clip, not
    # the household's other camera, not the neighbour's.
    holds = await holds_of(app, rid)
    assert {h.clip_id for h in holds} == {ten.id, eleven.id}
    assert all(h.expires_at == hold_until and h.released_at is None for h in holds)
    assert all(h.hidden_until is None for h in holds)

    # The owner is told which clips are kept, and sees the holds.
    view = await legal_view(elm.client, elm.household_id)
    hold_notices = [n for n in view["notices"] if n["kind"] == "hold"]
    assert len(hold_notices) == 1, view["notices"]
    message = hold_notices[0]["message"]
    assert str(ten.id) in message and str(eleven.id) in message
    assert str(early.id) not in message and str(back.id) not in message
    assert {(h["clip_id"], moment(h["until"])) for h in view["holds"]} == {
        (str(ten.id), hold_until),
        (str(eleven.id), hold_until),
    }
    assert [r["id"] for r in view["requests"]] == [rid]
    # The neighbour is neither named nor told.
    assert (await legal_view(oak.client, oak.household_id))["notices"] == []

    # The owner cannot delete a held clip; an unheld one goes.
    refused = await elm.client.delete(delete_url(elm, ten.id))
    error = assert_error(refused, 409, "legal_hold")
    assert "legal hold" in str(error["message"])
    assert (await clip_row(app, ten.id)).status is ClipStatus.verified
    assert await store.exists(ten.object_key)
    gone = await elm.client.delete(delete_url(elm, early.id))
    assert gone.status_code == 204, gone.text
    assert (await clip_row(app, early.id)).status is ClipStatus.deleted
    assert not await store.exists(early.object_key)

    # Past retention (30 days by default), retention keeps the held clips only.
    clock.advance(timedelta(days=40))
    result = await run_retention(app.state.sessionmaker, store, clock.now())
    assert (result.expired, result.held) == (1 + len(oak_clips), 2)
    for kept in (ten, eleven):
        assert (await clip_row(app, kept.id)).status is ClipStatus.verified
        assert await store.exists(kept.object_key)
    for expired in (back, *oak_clips):
        assert (await clip_row(app, expired.id)).status is ClipStatus.deleted
        assert not await store.exists(expired.object_key)

    # The agency extends once, by the same length again; not twice.
    extend_url = f"/api/v1/agencies/{people.agency_id}/requests/{rid}/extend"
    extended = await people.officer_client.post(extend_url)
    assert extended.status_code == 200, extended.text
    new_until = moment(extended.json()["hold_until"])
    assert new_until == hold_until + timedelta(days=PRESERVATION_DAYS)
    assert moment(extended.json()["extended_at"]) == clock.now()
    assert all(h.expires_at == new_until for h in await holds_of(app, rid))
    assert_error(await people.officer_client.post(extend_url), 409, "already_extended")
    assert moment((await read_request(people, rid))["hold_until"]) == new_until
    assert len(await events(app, "legal:request:extend")) == 1

    # The original end passes: the holds still stand.
    clock.advance(hold_until - clock.now() + timedelta(days=1))
    assert (await run_job(app, settings, clock)).preservations_ended == 0
    assert_error(await elm.client.delete(delete_url(elm, ten.id)), 409, "legal_hold")

    # A minute before the extended end nothing ends; after it the job closes the request
    # and releases the holds, and the owner may delete.
    clock.advance(new_until - clock.now() - timedelta(minutes=1))
    assert (await run_job(app, settings, clock)).preservations_ended == 0
    assert (await read_request(people, rid))["status"] == "approved"
    clock.advance(timedelta(minutes=2))
    ended = await run_job(app, settings, clock)
    assert ended.preservations_ended == 1
    closed = await read_request(people, rid)
    assert closed["status"] == "closed" and moment(closed["closed_at"]) == clock.now()
    assert closed["outcome"] == "approved"
    holds = await holds_of(app, rid)
    assert len(holds) == 2 and all(h.released_at == clock.now() for h in holds)
    [release] = await events(app, "legal:hold:release")
    assert release.target_id == rid and release.extra["holds"] == 2
    assert any(e.target_id == rid for e in await events(app, "legal:request:close"))
    assert (await run_job(app, settings, clock)).preservations_ended == 0  # once only
    view = await legal_view(elm.client, elm.household_id)
    assert view["holds"] == []
    [ended_notice] = [n for n in view["notices"] if "has ended" in n["message"]]
    assert ended_notice["kind"] == "hold" and ended_notice["request_id"] == rid
    gone = await elm.client.delete(delete_url(elm, ten.id))
    assert gone.status_code == 204, gone.text
    assert not await store.exists(ten.object_key)

    # A preservation disclosed nothing, ever.
    assert await count(app, Package) == 0
    assert await events(app, "legal:disclose", "legal:package:create") == []


# --- 2. preservation under a non-disclosure order ------------------------------------


async def test_a_secret_preservation_is_hidden_until_the_order_ends(
    people: Cast, homes: Any, app: FastAPI, clock: ManualClock, settings: Settings
) -> None:
    elm = await homes("12 Elm Street")
    ten, eleven = await clips_of(app, elm.camera.id)
    until = clock.now() + timedelta(days=30)
    filed = await file_preservation(
        people,
        [device_item(elm.camera.id)],
        order=pdf_bytes("non-disclosure order"),
        nondisclosure_until=iso(until),
    )
    assert filed.status_code == 201, filed.text
    rid = filed.json()["id"]
    # The order must be attested before the request can be approved.
    unattested = await decide(people.reviewer_client, rid, "approve", {})
    assert_error(unattested, 409, "checks_failed")
    decision = await approved(people, filed, attest=["nondisclosure"])
    assert decision["status"] == "approved"
    assert {h.clip_id for h in await holds_of(app, rid)} == {ten.id, eleven.id}

    async def owner_sees_nothing() -> None:
        view = await legal_view(elm.client, elm.household_id)
        assert view["notices"] == [] and view["requests"] == [] and view["holds"] == []
        trail = await elm.client.get(f"/api/v1/households/{elm.household_id}/audit-events")
        assert trail.status_code == 200, trail.text
        assert [e for e in trail.json() if e["tag"].startswith("legal:")] == []
        assert rid not in trail.text
        refused = await elm.client.delete(delete_url(elm, ten.id))
        error = assert_error(refused, 409, "not_deletable_now")
        assert "cannot be deleted at the moment" in str(error["message"])
        assert "legal" not in str(error["message"]).lower()
        assert "hold" not in json.dumps(error["details"]).lower()
        assert rid not in refused.text and until.isoformat()[:10] not in refused.text
        assert (await clip_row(app, ten.id)).status is ClipStatus.verified

    await owner_sees_nothing()
    # A day before the order ends, the job still delivers nothing.
    clock.advance(until - clock.now() - timedelta(days=1))
    assert (await run_job(app, settings, clock)).notices_delivered == 0
    await owner_sees_nothing()

    # Held back meanwhile: every event about the household, written without its id.
    held_back = {
        str(e.id)
        for e in await events(app)
        if e.household_id is None and e.extra.get("household") == str(elm.household_id)
    }
    tags = {e.tag for e in await events(app) if str(e.id) in held_back}
    assert tags == {"legal:notice:delay", "legal:hold:place"}, tags
    assert len(held_back) == 3  # the request notice, the hold, the hold notice

    clock.advance(timedelta(days=1, seconds=1))
    assert (await run_job(app, settings, clock)).notices_delivered == 2
    deliveries = [
        e for e in await events(app, "legal:notice:deliver") if e.extra.get("request") == rid
    ]
    assert len(deliveries) == 2
    assert all(e.household_id == elm.household_id for e in deliveries)
    assert all(set(e.extra["held_back_events"]) == held_back for e in deliveries)
    assert all(moment(e.extra["delayed_until"]) == until for e in deliveries)
    view = await legal_view(elm.client, elm.household_id)
    assert sorted(n["kind"] for n in view["notices"]) == ["hold", "request"]
    assert all(moment(n["deliver_after"]) == until for n in view["notices"])
    assert [r["id"] for r in view["requests"]] == [rid]
    assert {h["clip_id"] for h in view["holds"]} == {str(ten.id), str(eleven.id)}
    trail = await elm.client.get(f"/api/v1/households/{elm.household_id}/audit-events")
    assert {e["tag"] for e in trail.json() if e["tag"].startswith("legal:")} == {
        "legal:notice:deliver"
    }
    refused = await elm.client.delete(delete_url(elm, ten.id))
    assert "legal hold" in str(assert_error(refused, 409, "legal_hold")["message"])
    assert (await run_job(app, settings, clock)).notices_delivered == 0


# --- 3. emergencies ------------------------------------------------------------------


async def test_an_emergency_disclosure_is_provisional_until_a_later_warrant(
    people: Cast, homes: Any, app: FastAPI, clock: ManualClock, settings: Settings
) -> None:
    assert settings.emergency_proof_hours == PROOF_HOURS
    elm = await homes("12 Elm Street", clip_hours=(8.0, 10.0, 11.0))
    early, ten, eleven = await clips_of(app, elm.camera.id)
    filed = await file_emergency(people, [device_item(elm.camera.id)])
    rid = filed.json()["id"]
    decision = await approved(people, filed)
    assert decision["status"] == "approved"
    decided_at = moment(decision["decided_at"])
    assert moment(decision["proof_due_at"]) == decided_at + timedelta(hours=PROOF_HOURS)
    [package] = decision["packages"]
    assert package["provisional"] is True and package["kind"] == "content"
    assert package["clips"] == 2
    async with app.state.sessionmaker() as db:
        row = await db.get(Package, uuid.UUID(package["id"]))
        assert row is not None and row.provisional
        disclosed = set(
            (
                await db.scalars(
                    select(PackageClip.clip_id).where(PackageClip.package_id == row.id)
                )
            ).all()
        )
    assert disclosed == {ten.id, eleven.id}
    assert await app.state.clip_store.exists(row.object_key)

    # The owner is told at once exactly what left, and that it is provisional.
    view = await legal_view(elm.client, elm.household_id)
    [notice] = [n for n in view["notices"] if n["kind"] == "disclosure"]
    assert notice["delivered_at"] is not None
    assert str(ten.id) in notice["message"] and str(eleven.id) in notice["message"]
    assert str(early.id) not in notice["message"]
    assert "provisional" in notice["message"]
    [told] = view["requests"]
    assert told["id"] == rid and set(told["disclosed_clips"]) == {str(ten.id), str(eleven.id)}
    [disclose] = await events(app, "legal:disclose")
    assert disclose.household_id == elm.household_id

    # A warrant filed since proves the emergency.
    clock.advance(timedelta(hours=3))
    warrant = await file_warrant(
        people.officer_client, people.agency_id, [device_item(elm.camera.id)]
    )
    assert warrant.status_code == 201, warrant.text
    proven = await post_proof(
        people.officer_client, people.agency_id, rid, warrant=warrant.json()["id"]
    )
    assert proven.status_code == 200, proven.text
    assert proven.json()["status"] == "ratified"
    assert moment(proven.json()["ratified_at"]) == clock.now()
    async with app.state.sessionmaker() as db:
        request = await db.get(LegalRequest, uuid.UUID(rid))
        assert request is not None
        assert str(request.proof_request_id) == warrant.json()["id"]
    [ratify] = await events(app, "legal:request:ratify")
    assert ratify.target_id == rid and ratify.extra["warrant_request"] == warrant.json()["id"]
    # Proven once is proven: the deadline passing later changes nothing.
    clock.advance(timedelta(hours=PROOF_HOURS))
    assert (await run_job(app, settings, clock)).emergencies_unratified == 0
    assert (await read_request(people, rid))["status"] == "ratified"
    again = await post_proof(
        people.officer_client, people.agency_id, rid, report=pdf_bytes("Incident report")
    )
    assert_error(again, 409, "wrong_state")


async def test_an_incident_report_proves_an_emergency(
    people: Cast, homes: Any, app: FastAPI, clock: ManualClock
) -> None:
    elm = await homes("12 Elm Street")
    filed = await file_emergency(people, [device_item(elm.camera.id)])
    rid = filed.json()["id"]
    await approved(people, filed)
    clock.advance(timedelta(hours=PROOF_HOURS - 1))
    report = pdf_bytes("Incident report EM-1")
    proven = await post_proof(people.officer_client, people.agency_id, rid, report=report)
    assert proven.status_code == 200, proven.text
    assert proven.json()["status"] == "ratified"
    [ratify] = await events(app, "legal:request:ratify")
    async with app.state.sessionmaker() as db:
        request = await db.get(LegalRequest, uuid.UUID(rid))
        assert request is not None and request.proof_document_id is not None
    assert ratify.extra["incident_report_sha256"] == hashlib.sha256(report).hexdigest()
    review = await people.reviewer_client.get(f"/api/v1/review/requests/{rid}")
    assert str(request.proof_document_id) in review.json()["documents"]


async def test_invalid_proof_is_refused_and_changes_nothing(
    people: Cast, homes: Any, factory: Factory, app: FastAPI, clock: ManualClock
) -> None:
    elm = await homes("12 Elm Street")
    scope = [device_item(elm.camera.id)]
    before = await file_warrant(people.officer_client, people.agency_id, scope)
    assert before.status_code == 201, before.text
    clock.advance(timedelta(minutes=5))
    filed = await file_emergency(people, scope)
    rid = filed.json()["id"]
    await approved(people, filed)
    clock.advance(timedelta(minutes=5))
    other = await factory.agency_in_good_standing(people.admin, "Otherton Police")
    other_officer = await factory.with_token(
        await factory.user(Role.agency_officer, agency_id=other)
    )
    theirs = await file_warrant(other_officer, other, scope)
    assert theirs.status_code == 201, theirs.text
    await other_officer.aclose()
    mine = await file_warrant(people.officer_client, people.agency_id, scope)
    assert mine.status_code == 201, mine.text
    withdrawn = await file_warrant(people.officer_client, people.agency_id, scope)
    withdraw = await people.officer_client.post(
        f"/api/v1/agencies/{people.agency_id}/requests/{withdrawn.json()['id']}/withdraw"
    )
    assert withdraw.status_code == 200, withdraw.text

    report = pdf_bytes("Incident report")
    attempts = {
        "another agency's warrant": {"warrant": theirs.json()["id"]},
        "a warrant filed before the emergency": {"warrant": before.json()["id"]},
        "a withdrawn warrant": {"warrant": withdrawn.json()["id"]},
        "an unknown warrant": {"warrant": str(uuid.uuid4())},
        "the emergency itself": {"warrant": rid},
        "both kinds at once": {"warrant": mine.json()["id"], "report": report},
        "neither": {},
    }
    for what, proof in attempts.items():
        refused = await post_proof(people.officer_client, people.agency_id, rid, **proof)
        assert refused.status_code == 400, (what, refused.text)
        assert_error(refused, 400, "proof_invalid")
        found = await read_request(people, rid)
        assert found["status"] == "approved" and found["ratified_at"] is None, what
    assert await events(app, "legal:request:ratify") == []
    async with app.state.sessionmaker() as db:
        request = await db.get(LegalRequest, uuid.UUID(rid))
        assert request is not None
        assert request.proof_request_id is None and request.proof_document_id is None
    # After all that, good proof still works.
    proven = await post_proof(
        people.officer_client, people.agency_id, rid, warrant=mine.json()["id"]
    )
    assert proven.status_code == 200 and proven.json()["status"] == "ratified", proven.text


async def test_an_unproven_emergency_lapses_and_flags_the_agency(
    people: Cast, homes: Any, app: FastAPI, clock: ManualClock, settings: Settings
) -> None:
    elm = await homes("12 Elm Street")
    filed = await file_emergency(people, [device_item(elm.camera.id)])
    rid = filed.json()["id"]
    decision = await approved(people, filed)
    due = moment(decision["proof_due_at"])
    agency_url = f"/api/v1/agencies/{people.agency_id}"

    clock.advance(due - clock.now() - timedelta(minutes=1))
    assert (await run_job(app, settings, clock)).emergencies_unratified == 0
    assert (await people.admin_client.get(agency_url)).json()["flagged_at"] is None

    # Past the deadline a late proof is refused even before the job has run...
    clock.advance(timedelta(minutes=2))
    warrant = await file_warrant(
        people.officer_client, people.agency_id, [device_item(elm.camera.id)]
    )
    late = await post_proof(
        people.officer_client, people.agency_id, rid, warrant=warrant.json()["id"]
    )
    assert_error(late, 409, "proof_late")
    assert (await read_request(people, rid))["status"] == "approved"

    # ...and the job marks it unratified and flags the agency, once.
    result = await run_job(app, settings, clock)
    assert result.emergencies_unratified == 1
    found = await read_request(people, rid)
    assert found["status"] == "unratified" and found["ratified_at"] is None
    agency = (await people.admin_client.get(agency_url)).json()
    assert moment(agency["flagged_at"]) == clock.now()
    assert rid in agency["flag_reason"] and decision["case_number"] in agency["flag_reason"]
    [flag] = await events(app, "agency:flag")
    assert flag.target_id == str(people.agency_id) and flag.extra["request"] == rid
    [lapse] = await events(app, "legal:request:lapse")
    assert lapse.target_id == rid and lapse.extra["status"] == "unratified"
    # The owner is told that the disclosure about their home went unproven.
    [told] = [n for n in (await legal_view(elm.client, elm.household_id))["notices"]
              if n["request_id"] == rid and n["kind"] == "decision"]  # fmt: skip
    assert "recorded as unratified" in told["message"]
    assert moment(told["delivered_at"]) == clock.now()
    assert "no proof was filed" in told["message"] and decision["case_number"] in told["message"]
    assert (await run_job(app, settings, clock)).emergencies_unratified == 0
    assert len(await events(app, "agency:flag")) == 1

    for proof in ({"warrant": warrant.json()["id"]}, {"report": pdf_bytes("late report")}):
        late = await post_proof(people.officer_client, people.agency_id, rid, **proof)
        assert_error(late, 409, "proof_late")
    assert (await read_request(people, rid))["status"] == "unratified"
    # The disclosure stays on record, still marked provisional.
    [package] = found["packages"]
    assert package["provisional"] is True


async def test_a_rejected_emergency_discloses_nothing(
    people: Cast, homes: Any, app: FastAPI
) -> None:
    elm = await homes("12 Elm Street")
    filed = await file_emergency(people, [device_item(elm.camera.id)])
    rid = filed.json()["id"]
    rejected = await decide(
        people.reviewer_client, rid, "reject", {"reason": "No imminent danger is described."}
    )
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "rejected" and rejected.json()["packages"] == []
    assert rejected.json()["proof_due_at"] is None
    assert await count(app, Package) == 0
    assert await events(app, "legal:disclose", "legal:package:create") == []
    view = await legal_view(elm.client, elm.household_id)
    [decision] = [n for n in view["notices"] if n["kind"] == "decision"]
    assert "nothing about your home was disclosed" in decision["message"]
    assert "No imminent danger is described." in decision["message"]
    assert [n for n in view["notices"] if n["kind"] == "disclosure"] == []
    [told] = view["requests"]
    assert told["status"] == "rejected" and told["disclosed_clips"] == []


# --- 4. forbidden transitions --------------------------------------------------------


async def _snapshot(app: FastAPI, people: Cast, rid: str) -> tuple[Any, ...]:
    return (
        await read_request(people, rid),
        await count(app, AuditEvent),
        await count(app, Notice),
        await count(app, ClipHold),
        await count(app, Package),
    )


@pytest.mark.parametrize(
    "case",
    [
        "withdraw after a decision",
        "approve after reject",
        "extend a warrant",
        "ratify a preservation",
        "close a warrant",
        "start review twice",
        "narrow after approval",
        "extend a rejected preservation",
    ],
)
async def test_forbidden_transitions_are_refused(
    people: Cast, homes: Any, app: FastAPI, case: str
) -> None:
    elm = await homes("12 Elm Street")
    scope = [device_item(elm.camera.id)]
    agency = f"/api/v1/agencies/{people.agency_id}/requests"
    officer, reviewer = people.officer_client, people.reviewer_client
    if case in ("withdraw after a decision", "ratify a preservation", "narrow after approval"):
        filed = await file_preservation(people, scope)
        await approved(people, filed)
    elif case == "extend a rejected preservation":
        filed = await file_preservation(people, scope)
        await decide(reviewer, filed.json()["id"], "reject", {"reason": "No process is pending."})
    elif case == "approve after reject":
        filed = await file_warrant(officer, people.agency_id, scope)
        rejected = await decide(reviewer, filed.json()["id"], "reject", {"reason": "Unsigned."})
        assert rejected.status_code == 200, rejected.text
    elif case == "start review twice":
        filed = await file_warrant(officer, people.agency_id, scope)
        started = await reviewer.post(f"/api/v1/review/requests/{filed.json()['id']}/start")
        assert started.status_code == 200, started.text
        assert started.json()["request"]["status"] == "in_review"
    else:
        filed = await file_warrant(officer, people.agency_id, scope)
        await approved(people, filed, attest=["signed"])
    rid = filed.json()["id"]
    before = await _snapshot(app, people, rid)

    attempt = {
        "withdraw after a decision": lambda: officer.post(f"{agency}/{rid}/withdraw"),
        "approve after reject": lambda: decide(reviewer, rid, "approve", {"attest": ["signed"]}),
        "extend a warrant": lambda: officer.post(f"{agency}/{rid}/extend"),
        "ratify a preservation": lambda: post_proof(
            officer, people.agency_id, rid, report=pdf_bytes("report")
        ),
        "close a warrant": lambda: officer.post(f"{agency}/{rid}/close"),
        "start review twice": lambda: reviewer.post(f"/api/v1/review/requests/{rid}/start"),
        "narrow after approval": lambda: decide(
            reviewer, rid, "narrow", {"keep_devices": [str(elm.camera.id)], "reason": "less"}
        ),
        "extend a rejected preservation": lambda: officer.post(f"{agency}/{rid}/extend"),
    }[case]
    refused = await attempt()
    error = assert_error(refused, 409, "wrong_state")
    assert error["details"]["status"] == before[0]["status"]  # type: ignore[index]
    assert await _snapshot(app, people, rid) == before


# --- 5. delayed notices of a warrant -------------------------------------------------


async def test_a_sealed_warrants_notices_go_out_when_the_order_ends(
    people: Cast, homes: Any, app: FastAPI, clock: ManualClock, settings: Settings
) -> None:
    elm = await homes("12 Elm Street")
    ten, eleven = await clips_of(app, elm.camera.id)
    until = clock.now() + timedelta(days=60)
    details = warrant_details([device_item(elm.camera.id)], nondisclosure_until=iso(until))
    filed = await file_with_documents(
        people.officer_client,
        people.agency_id,
        "warrants",
        details,
        document=pdf_bytes("warrant under seal"),
        nondisclosure=pdf_bytes("non-disclosure order"),
    )
    rid = filed.json()["id"]
    decision = await approved(people, filed, attest=["signed", "nondisclosure"])
    assert decision["status"] == "approved" and len(decision["packages"]) == 1

    async def undelivered() -> list[Notice]:
        async with app.state.sessionmaker() as db:
            query = select(Notice).where(Notice.request_id == uuid.UUID(rid))
            return [n for n in (await db.scalars(query)).all() if n.delivered_at is None]

    waiting = await undelivered()
    assert sorted(n.kind.value for n in waiting) == ["disclosure", "request"]
    assert all(n.deliver_after == until for n in waiting)
    assert (await run_job(app, settings, clock)).notices_delivered == 0
    clock.advance(until - clock.now() - timedelta(days=1))
    assert (await run_job(app, settings, clock)).notices_delivered == 0
    assert len(await undelivered()) == 2
    view = await legal_view(elm.client, elm.household_id)
    assert view["notices"] == [] and view["requests"] == []
    assert await events(app, "legal:notice:deliver") == []
    [disclose] = await events(app, "legal:disclose")
    assert disclose.household_id is None  # the household's id kept out while secret

    clock.advance(timedelta(days=1))  # exactly the end of the order
    assert (await run_job(app, settings, clock)).notices_delivered == 2
    assert await undelivered() == []
    view = await legal_view(elm.client, elm.household_id)
    assert sorted(n["kind"] for n in view["notices"]) == ["disclosure", "request"]
    assert all(moment(n["delivered_at"]) == clock.now() for n in view["notices"])
    [disclosure] = [n for n in view["notices"] if n["kind"] == "disclosure"]
    assert str(ten.id) in disclosure["message"] and str(eleven.id) in disclosure["message"]
    [told] = view["requests"]
    assert told["id"] == rid and set(told["disclosed_clips"]) == {str(ten.id), str(eleven.id)}
    deliveries = await events(app, "legal:notice:deliver")
    assert len(deliveries) == 2
    assert all(e.household_id == elm.household_id for e in deliveries)
    assert all(str(disclose.id) in e.extra["held_back_events"] for e in deliveries)

    clock.advance(timedelta(days=1))
    assert (await run_job(app, settings, clock)).notices_delivered == 0
    assert len(await events(app, "legal:notice:deliver")) == 2
    assert len((await legal_view(elm.client, elm.household_id))["notices"]) == 2


async def test_notices_of_other_households_are_not_delivered_early(
    people: Cast, homes: Any, app: FastAPI, clock: ManualClock, settings: Settings
) -> None:
    """Two sealed requests with different end dates: the job delivers each at its own."""
    elm = await homes("12 Elm Street")
    oak = await homes("3 Oak Road")
    soon, later = clock.now() + timedelta(days=10), clock.now() + timedelta(days=20)
    for found, until in ((elm, soon), (oak, later)):
        details = warrant_details([address_item(found.address)], nondisclosure_until=iso(until))
        filed = await file_with_documents(
            people.officer_client,
            people.agency_id,
            "warrants",
            details,
            document=pdf_bytes(f"warrant {found.address}"),
            nondisclosure=pdf_bytes(f"order {found.address}"),
        )
        assert filed.status_code == 201, filed.text
    clock.advance(timedelta(days=15))
    assert (await run_job(app, settings, clock)).notices_delivered == 1
    assert len((await legal_view(elm.client, elm.household_id))["notices"]) == 1
    assert (await legal_view(oak.client, oak.household_id))["notices"] == []
    clock.advance(timedelta(days=5))
    assert (await run_job(app, settings, clock)).notices_delivered == 1
    assert len((await legal_view(oak.client, oak.household_id))["notices"]) == 1


async def test_held_clips_do_not_stall_retention(
    people: Cast, homes: Any, app: FastAPI, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Retention works in batches, oldest first: held clips must not fill every batch
    (with more old held clips than a batch, nothing else would ever expire)."""
    monkeypatch.setattr(clip_service, "RETENTION_BATCH", 1)
    elm = await homes("12 Elm Street", clip_hours=(10.0, 11.0, 13.0))
    ten, eleven, one_pm = await clips_of(app, elm.camera.id)
    await approved(people, await file_preservation(people, [device_item(elm.camera.id)]))
    clock.advance(timedelta(days=40))
    for _ in range(2):
        await run_retention(app.state.sessionmaker, app.state.clip_store, clock.now())
    assert (await clip_row(app, one_pm.id)).status is ClipStatus.deleted
    assert not await app.state.clip_store.exists(one_pm.object_key)
    for kept in (ten, eleven):
        assert (await clip_row(app, kept.id)).status is ClipStatus.verified


async def test_an_ended_preservation_cannot_be_extended(
    people: Cast, homes: Any, app: FastAPI, clock: ManualClock, settings: Settings
) -> None:
    """Between the end of the holds and the job's next run, an extension would put back
    holds the owner is already free of, without a review."""
    elm = await homes("12 Elm Street")
    ten, _ = await clips_of(app, elm.camera.id)
    filed = await file_preservation(people, [device_item(elm.camera.id)])
    rid = (await approved(people, filed))["id"]
    clock.advance(timedelta(days=PRESERVATION_DAYS, seconds=1))
    late = await people.officer_client.post(
        f"/api/v1/agencies/{people.agency_id}/requests/{rid}/extend"
    )
    assert_error(late, 409, "wrong_state")
    assert (await read_request(people, rid))["extended_at"] is None
    assert all(
        h.expires_at is not None and h.expires_at < clock.now() for h in await holds_of(app, rid)
    )
    gone = await elm.client.delete(delete_url(elm, ten.id))
    assert gone.status_code == 204, gone.text
    assert (await run_job(app, settings, clock)).preservations_ended == 1
    assert (await read_request(people, rid))["status"] == "closed"


async def test_a_withdrawn_or_rejected_proof_unratifies_and_proves_one_emergency_only(
    people: Cast, homes: Any, app: FastAPI, clock: ManualClock
) -> None:
    """A placeholder warrant filed to ratify and then withdrawn proves nothing; nor can one
    warrant stand as the proof of two emergencies."""
    elm = await homes("12 Elm Street", clip_hours=(10.0,))
    first = await file_emergency(people, [device_item(elm.camera.id)])
    second = await file_emergency(people, [device_item(elm.camera.id)])
    await approved(people, first)
    await approved(people, second)
    clock.advance(timedelta(hours=1))
    warrant = await file_warrant(
        people.officer_client, people.agency_id, [device_item(elm.camera.id)]
    )
    wid = warrant.json()["id"]
    proven = await post_proof(
        people.officer_client, people.agency_id, first.json()["id"], warrant=wid
    )
    assert proven.json()["status"] == "ratified", proven.text
    reused = await post_proof(
        people.officer_client, people.agency_id, second.json()["id"], warrant=wid
    )
    assert_error(reused, 400, "proof_invalid")
    assert (await read_request(people, second.json()["id"]))["status"] == "approved"
    withdrawn = await people.officer_client.post(
        f"/api/v1/agencies/{people.agency_id}/requests/{wid}/withdraw"
    )
    assert withdrawn.status_code == 200, withdrawn.text
    assert (await read_request(people, first.json()["id"]))["status"] == "unratified"
    [flag] = await events(app, "agency:flag")
    assert "withdrawn" in flag.extra["why"]
    # The owner hears of both: the warrant withdrawn, the emergency it proved unratified.
    notices = (await legal_view(elm.client, elm.household_id))["notices"]
    [gone] = [n for n in notices if n["request_id"] == wid and "withdrawn" in n["message"]]
    assert "nothing about your home was disclosed" in gone["message"]
    assert [n for n in notices if n["request_id"] == first.json()["id"]
            and n["kind"] == "decision" and "recorded as unratified" in n["message"]]  # fmt: skip
    agency = (await people.admin_client.get(f"/api/v1/agencies/{people.agency_id}")).json()
    assert agency["flagged_at"] is not None
    # The same for a proof the reviewer rejects.
    other = await file_warrant(
        people.officer_client, people.agency_id, [device_item(elm.camera.id)]
    )
    ok = await post_proof(
        people.officer_client, people.agency_id, second.json()["id"], warrant=other.json()["id"]
    )
    assert ok.json()["status"] == "ratified", ok.text
    rejected = await decide(
        people.reviewer_client, other.json()["id"], "reject", {"reason": "Unsigned."}
    )
    assert rejected.status_code == 200, rejected.text
    assert (await read_request(people, second.json()["id"]))["status"] == "unratified"
