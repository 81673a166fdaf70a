"""Every transition the request state machines declare (legal/states.py), driven the way
it happens in use: through the API as the reviewer or the agency, or through the
deadlines job with the clock moved past the deadline. Each is asserted to move the
request to the declared status and to record exactly one audit event, with the
transition's tag, the request as its target, and the actor who made it (the system for
the clock's). The cases come from `states.TRANSITIONS`: every (kind, state, event)
declared there is walked, so a transition declared without a way to drive it here
fails. Then two of the rules around transitions: a community request closed by its
deadline takes no more shares, and an emergency can neither be approved for more cameras
than its cap nor carry a non-disclosure order."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from doorwarden.audit.models import AuditEvent
from doorwarden.clips.models import Clip
from doorwarden.clock import ManualClock
from doorwarden.config import Settings
from doorwarden.legal.community.models import CommunityShare
from doorwarden.legal.disclosure.models import Package
from doorwarden.legal.lifecycle import DeadlineResult
from doorwarden.legal.models import LegalRequest, Notice, RequestKind, RequestStatus
from doorwarden.legal.states import GRANTED, TAGS, TRANSITIONS, Event
from doorwarden.legal.tasks import CONTEXT as JOB_CONTEXT
from doorwarden.legal.tasks import run_legal_deadlines
from tests.factories import Factory, assert_error
from tests.legal_flow import (
    Cast,
    Home,
    at,
    cast_with_tokens,
    decide,
    device_item,
    file_warrant,
    file_with_documents,
    home,
    iso,
    warrant_details,
)
from tests.pdfs import pdf_bytes

S = RequestStatus
CLIENT_ADDRESS = "198.51.100.7"  # tests.factories.make_client's default

# Who makes each event happen, and the audit tag it is recorded under. Tags are written
# out, not read from states.TAGS: they are part of the public record, so a changed one
# must fail here. A new event used by a transition must be added here (and driven in
# Flow.fire): test_every_declared_event_has_a_driver says so.
ACTOR_AND_TAG: dict[Event, tuple[str, str]] = {
    Event.review: ("reviewer", "legal:request:review"),
    Event.approve: ("reviewer", "legal:request:approve"),
    Event.narrow: ("reviewer", "legal:request:narrow"),
    Event.reject: ("reviewer", "legal:request:reject"),
    Event.withdraw: ("officer", "legal:request:withdraw"),
    Event.ratify: ("officer", "legal:request:ratify"),
    Event.extend: ("officer", "legal:request:extend"),
    Event.close: ("officer", "legal:request:close"),
    # The deadline passed, or the warrant that proved the emergency fell away.
    Event.lapse: ("system", "legal:request:lapse"),
    Event.expire: ("system", "legal:request:close"),  # the deadlines job
}
# The ways one transition can come about, where there is more than one.
WAYS: dict[tuple[RequestKind, RequestStatus, Event], tuple[str, ...]] = {
    (RequestKind.emergency, S.ratified, Event.lapse): ("proof withdrawn", "proof rejected"),
}
Step = tuple[RequestStatus, Event, str]  # from this state, this event, this way


def declared() -> set[tuple[RequestKind, RequestStatus, Event]]:
    return {(kind, source, event) for (kind, event), (sources, _) in TRANSITIONS.items()
            for source in sources}  # fmt: skip


def steps_of(kind: RequestKind) -> list[Step]:
    """Every declared transition of `kind`, the clock's first: its job acts on every
    request whose deadline has passed, so none granted by another step may be waiting."""
    steps = [
        (source, event, way)
        for k, source, event in declared()
        if k is kind
        for way in WAYS.get((kind, source, event), ("",))
    ]
    return sorted(steps, key=lambda s: (ACTOR_AND_TAG[s[1]][0] != "system", s[1].value, s[0].value))


KINDS = sorted({kind for kind, _ in TRANSITIONS}, key=lambda kind: kind.value)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # The job runs when a test says so, at the time the test has moved the clock to. A
    # community request here reaches one home, below the floor operators cannot lower
    # (its refusal: test_community_oracle.py).
    update = {"legal_interval_s": 0, "retention_interval_minutes": 0}
    return settings.model_copy(update=update | {"community_min_households": 0})


@pytest.fixture
async def people(factory: Factory) -> AsyncIterator[Cast]:
    made = await cast_with_tokens(factory)
    yield made
    await made.close()


@pytest.fixture
async def elm(factory: Factory) -> AsyncIterator[Home]:
    """A home with one camera and clips at 10:00 and 11:00, its owner holding a token."""
    made = await home(factory, "12 Elm Street")
    await made.client.aclose()
    made.client = await factory.with_token(made.owner)
    yield made
    await made.client.aclose()


# --- reading back ----------------------------------------------------------------------


async def all_events(app: FastAPI) -> list[AuditEvent]:
    async with app.state.sessionmaker() as db:
        query = select(AuditEvent).order_by(AuditEvent.occurred_at, AuditEvent.id)
        return list((await db.scalars(query)).all())


async def count(app: FastAPI, model: type[Any], *where: Any) -> int:
    async with app.state.sessionmaker() as db:
        return int(await db.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def clip_ids(app: FastAPI, found: Home) -> list[uuid.UUID]:
    async with app.state.sessionmaker() as db:
        query = select(Clip.id).where(Clip.device_id == found.camera.id).order_by(Clip.start_at)
        return list((await db.scalars(query)).all())


def moment(value: str | None) -> datetime:
    assert value is not None
    return datetime.fromisoformat(value)


# --- driving each transition -------------------------------------------------------------


@dataclass
class Filed:
    id: str
    proof: str | None = None  # the warrant request that ratified an emergency


@dataclass
class Flow:
    app: FastAPI
    people: Cast
    home: Home
    clock: ManualClock
    settings: Settings

    @property
    def agency_url(self) -> str:
        return f"/api/v1/agencies/{self.people.agency_id}/requests"

    @property
    def camera(self) -> str:
        return str(self.home.camera.id)

    async def read(self, request_id: str) -> dict[str, Any]:
        found = await self.people.officer_client.get(f"{self.agency_url}/{request_id}")
        assert found.status_code == 200, found.text
        return found.json()  # type: ignore[no-any-return]

    async def job(self) -> DeadlineResult:
        return await run_legal_deadlines(
            self.app.state.sessionmaker, self.settings, self.clock.now()
        )

    async def file(self, kind: RequestKind) -> str:
        officer, agency_id = self.people.officer_client, self.people.agency_id
        scope = [device_item(self.home.camera.id)]
        case = f"{kind.value[:2].upper()}-{uuid.uuid4().hex[:8]}"
        if kind is RequestKind.warrant:
            filed = await file_warrant(officer, agency_id, scope, case_number=case)
        elif kind is RequestKind.subpoena:
            details = warrant_details(scope, case_number=case)
            del details["judge"], details["justification"]
            filed = await file_with_documents(
                officer, agency_id, "subpoenas", details, document=pdf_bytes(f"subpoena {case}")
            )
        elif kind is RequestKind.preservation:
            details = warrant_details(scope, case_number=case)
            keep = ("case_number", "scope", "window_start", "window_end", "justification")
            details = {k: v for k, v in details.items() if k in keep}
            filed = await file_with_documents(officer, agency_id, "preservations", details)
        elif kind is RequestKind.emergency:
            filed = await officer.post(f"{self.agency_url}/emergencies", json=emergency_body(scope))
        elif kind is RequestKind.community:
            filed = await officer.post(f"{self.agency_url}/community", json=community_body())
        else:
            pytest.fail(f"no way to file a {kind} request here: add one")
        assert filed.status_code == 201, filed.text
        return str(filed.json()["id"])

    async def reach(self, kind: RequestKind, status: RequestStatus) -> Filed:
        """A new request of `kind`, brought to `status` the ordinary way."""
        reviewer = self.people.reviewer_client
        filed = Filed(await self.file(kind))
        if status in (S.submitted, S.open):
            pass
        elif status is S.in_review:
            started = await reviewer.post(f"/api/v1/review/requests/{filed.id}/start")
            assert started.status_code == 200, started.text
        elif status is S.approved:
            done = await decide(reviewer, filed.id, "approve", {"attest": ["signed"]})
            assert done.status_code == 200, done.text
        elif status is S.narrowed:
            done = await decide(reviewer, filed.id, "narrow", self.narrowing())
            assert done.status_code == 200, done.text
        elif status is S.ratified:
            granted = await decide(reviewer, filed.id, "approve", {})
            assert granted.status_code == 200, granted.text
            self.clock.advance(timedelta(minutes=1))  # the proof is filed after the emergency
            filed.proof = await self.file(RequestKind.warrant)
            proven = await self.proof(filed.id, {"warrant_request_id": filed.proof})
            assert proven.status_code == 200, proven.text
        else:
            pytest.fail(f"no way to bring a {kind} request to {status} here: add one")
        return filed

    def narrowing(self) -> dict[str, Any]:
        return {
            "keep_devices": [self.camera],
            "window_start": iso(at(9.5)),
            "attest": ["signed"],
            "reason": "The half hour before the incident is not needed.",
        }

    async def proof(
        self, request_id: str, details: dict[str, str] | None = None, report: bytes | None = None
    ) -> httpx.Response:
        return await self.people.officer_client.post(
            f"{self.agency_url}/{request_id}/proof",
            data={"details": json.dumps(details)} if details else None,
            files={"incident_report": ("report.pdf", report, "application/pdf")}
            if report
            else None,
        )

    async def fire(
        self, kind: RequestKind, source: RequestStatus, event: Event, filed: Filed, way: str
    ) -> None:
        """Make `event` happen to the request, as its actor (ACTOR_AND_TAG) does."""
        reviewer, officer, rid = self.people.reviewer_client, self.people.officer_client, filed.id
        if event is Event.review:
            done = await reviewer.post(f"/api/v1/review/requests/{rid}/start")
        elif event is Event.approve:
            done = await decide(reviewer, rid, "approve", {"attest": ["signed"]})
        elif event is Event.narrow:
            done = await decide(reviewer, rid, "narrow", self.narrowing())
        elif event is Event.reject:
            done = await decide(reviewer, rid, "reject", {"reason": "Not particular enough."})
        elif event is Event.withdraw:
            done = await officer.post(f"{self.agency_url}/{rid}/withdraw")
        elif event is Event.ratify:
            done = await self.proof(rid, report=pdf_bytes(f"Incident report {rid}"))
        elif event is Event.extend:
            done = await officer.post(f"{self.agency_url}/{rid}/extend")
        elif event is Event.close:
            done = await officer.post(f"{self.agency_url}/{rid}/close")
        elif event is Event.lapse and source in GRANTED:
            due = moment((await self.read(rid))["proof_due_at"])
            self.clock.advance(due - self.clock.now() + timedelta(seconds=1))
            assert (await self.job()).emergencies_unratified == 1
            return
        elif event is Event.lapse and source is S.ratified:
            assert filed.proof is not None
            if way == "proof withdrawn":
                done = await officer.post(f"{self.agency_url}/{filed.proof}/withdraw")
            else:
                done = await decide(reviewer, filed.proof, "reject", {"reason": "Unsigned."})
        elif event is Event.expire and kind is RequestKind.preservation:
            until = moment((await self.read(rid))["hold_until"])
            self.clock.advance(until - self.clock.now() + timedelta(seconds=1))
            assert (await self.job()).preservations_ended == 1
            return
        elif event is Event.expire and kind is RequestKind.community:
            self.clock.advance(timedelta(days=self.settings.community_open_days, seconds=1))
            assert (await self.job()).community_closed == 1
            return
        else:
            pytest.fail(f"no way to make {event} happen to a {source} {kind} request: add one")
        assert done.status_code == 200, done.text


def emergency_body(scope: list[dict[str, Any]], **changes: Any) -> dict[str, Any]:
    return {
        "case_number": f"EM-{uuid.uuid4().hex[:8]}",
        "description": "A child was seen being taken into a van outside 12 Elm Street; "
        "the van's plate may be on the door camera.",
        "attest_imminent_danger": True,
        "scope": scope,
        "window_start": iso(at(9)),
        "window_end": iso(at(12)),
        **changes,
    }


def community_body() -> dict[str, Any]:
    # About 0.48 square miles around (51.5, -0.1), where home() puts households.
    w, s, e, n = -0.108, 51.495, -0.092, 51.505
    return {
        "case_number": f"CM-{uuid.uuid4().hex[:8]}",
        "area": {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]},
        "window_start": iso(at(9)),
        "window_end": iso(at(12)),
        "public_text": "A car was broken into on Elm Street on the morning of 25 November; "
        "footage of the street may help.",
    }


@pytest.fixture
def flow(app: FastAPI, people: Cast, elm: Home, clock: ManualClock, settings: Settings) -> Flow:
    return Flow(app, people, elm, clock, settings)


# --- 1. every declared transition --------------------------------------------------------


def test_every_declared_event_has_a_driver() -> None:
    """The drivers here know every event a transition uses, and every such event has an
    audit tag; the test below walks every declared (kind, state, event)."""
    events = {event for _, event in TRANSITIONS}
    assert events == set(ACTOR_AND_TAG), "drive the new event in Flow.fire, name actor and tag"
    assert {event: str(TAGS[event]) for event in events} == {
        event: tag for event, (_, tag) in ACTOR_AND_TAG.items()
    }
    assert set(WAYS) <= declared()
    walked = {(kind, source, event) for kind in KINDS for source, event, _ in steps_of(kind)}
    assert walked == declared()


@pytest.mark.parametrize("kind", KINDS, ids=[kind.value for kind in KINDS])
async def test_each_transition_changes_the_status_and_records_one_event(
    flow: Flow, app: FastAPI, people: Cast, clock: ManualClock, kind: RequestKind
) -> None:
    """One request per declared transition of `kind`: brought to the state the transition
    starts from, then moved on by it; every transition is checked, then all failures told."""
    failures: list[str] = []
    exercised: set[tuple[RequestKind, RequestStatus, Event]] = set()
    for source, event, way in steps_of(kind):
        what = f"{kind} {source} --{event}-->" + (f" ({way})" if way else "")
        try:
            await check_transition(flow, app, people, clock, kind, source, event, way)
        except AssertionError as exc:
            failures.append(f"{what}: {exc}")
        else:
            exercised.add((kind, source, event))
    assert not failures, "\n".join(failures)
    assert exercised == {t for t in declared() if t[0] is kind}


async def check_transition(
    flow: Flow,
    app: FastAPI,
    people: Cast,
    clock: ManualClock,
    kind: RequestKind,
    source: RequestStatus,
    event: Event,
    way: str,
) -> None:
    _, target = TRANSITIONS[(kind, event)]
    actor, tag = ACTOR_AND_TAG[event]
    filed = await flow.reach(kind, source)
    assert (await flow.read(filed.id))["status"] == source
    before = {e.id for e in await all_events(app)}

    await flow.fire(kind, source, event, filed, way)

    expected = source if target is None else target
    assert (await flow.read(filed.id))["status"] == expected
    new = [e for e in await all_events(app) if e.id not in before]
    tagged = [e for e in new if e.tag == tag]
    assert len(tagged) == 1, (
        f"{tag} recorded {len(tagged)} times: {[(e.tag, e.target_id) for e in new]}"
    )
    [recorded] = tagged
    assert (recorded.target_type, recorded.target_id) == ("legal_request", filed.id)
    # Nothing else about the request's state is recorded by this step.
    on_request = [e.tag for e in new if e.target_id == filed.id]
    assert [t for t in on_request if t.startswith("legal:request:")] == [tag]
    assert recorded.agency_id == people.agency_id
    assert recorded.extra["kind"] == kind and recorded.extra["status"] == expected
    assert recorded.occurred_at == clock.now()
    if actor == "system":
        assert (recorded.actor_user_id, recorded.actor_role) == (None, "system")
        if event is not Event.lapse or source in GRANTED:  # the job's own context
            assert recorded.user_agent == JOB_CONTEXT.user_agent
    else:
        user = people.reviewer if actor == "reviewer" else people.officer
        assert (recorded.actor_user_id, recorded.actor_role) == (user.id, user.role)
        assert recorded.client_address == CLIENT_ADDRESS


# --- 2. a community request closed by the clock --------------------------------------------


async def test_a_community_request_past_its_open_period_closes_and_takes_no_more_shares(
    flow: Flow, app: FastAPI, people: Cast, elm: Home, clock: ManualClock, settings: Settings
) -> None:
    rid = await flow.file(RequestKind.community)
    async with app.state.sessionmaker() as db:
        request = await db.get(LegalRequest, uuid.UUID(rid))
        assert request is not None
        opened = request.created_at
    ten, eleven = (str(c) for c in await clip_ids(app, elm))  # by start: 10:00, 11:00
    share_url = f"/api/v1/households/{elm.household_id}/community-requests/{rid}/share"

    # A minute before the open period ends, the job leaves it open and sharing works.
    clock.advance(opened + timedelta(days=settings.community_open_days, minutes=-1) - clock.now())
    assert (await flow.job()).community_closed == 0
    assert (await flow.read(rid))["status"] == "open"
    shared = await elm.client.post(share_url, json={"clip_ids": [ten]})
    assert shared.status_code == 200, shared.text
    assert shared.json()["shared"] == [ten]

    clock.advance(timedelta(minutes=2))
    assert (await flow.job()).community_closed == 1
    closed = await flow.read(rid)
    assert closed["status"] == "closed" and moment(closed["closed_at"]) == clock.now()
    [close] = [e for e in await all_events(app) if e.tag == "legal:request:close"]
    assert (close.target_type, close.target_id, close.agency_id) == (
        "legal_request",
        rid,
        people.agency_id,
    )
    assert (close.actor_user_id, close.actor_role) == (None, "system")
    assert close.occurred_at == clock.now() and close.extra["status"] == "closed"
    assert (await flow.job()).community_closed == 0  # once only

    # The resident can no longer share; nothing more is on record.
    shares_before = await count(app, CommunityShare)
    events_before = len(await all_events(app))
    refused = await elm.client.post(share_url, json={"clip_ids": [eleven]})
    assert_error(refused, 409, "request_closed")
    assert await count(app, CommunityShare) == shares_before == 1
    assert len(await all_events(app)) == events_before
    # Nor can the agency close it again.
    again = await people.officer_client.post(f"{flow.agency_url}/{rid}/close")
    assert assert_error(again, 409, "wrong_state")["details"]["status"] == "closed"  # type: ignore[index]


# --- 3. emergencies: the camera cap, and no non-disclosure ---------------------------------


async def test_an_emergency_naming_a_household_over_the_camera_cap_is_not_approved_as_asked(
    flow: Flow, app: FastAPI, factory: Factory, people: Cast, elm: Home, settings: Settings
) -> None:
    cap = settings.emergency_max_devices
    for n in range(cap):  # the household now has cap + 1 cameras
        extra = await factory.camera(elm.owner, elm.household_id, name=f"Camera {n}")
        await extra.client.aclose()
    household = [{"kind": "household", "id": str(elm.household_id)}]
    filed = await people.officer_client.post(
        f"{flow.agency_url}/emergencies", json=emergency_body(household)
    )
    assert filed.status_code == 201, filed.text  # one scope item: within the cap at filing
    rid = filed.json()["id"]
    detail = await people.reviewer_client.get(f"/api/v1/review/requests/{rid}")
    assert len(detail.json()["targets"]) == cap + 1

    refused = await decide(people.reviewer_client, rid, "approve", {})
    error = assert_error(refused, 409, "checks_failed")
    assert error["details"] == {
        "failed": [
            {
                "name": "particular",
                "ok": False,
                "detail": f"Overbroad: {cap + 1} cameras, at most {cap}.",
            }
        ]
    }
    found = await flow.read(rid)
    assert found["status"] == "submitted" and found["decided_at"] is None
    assert found["packages"] == [] and await count(app, Package) == 0
    assert [e for e in await all_events(app) if e.tag == "legal:request:approve"] == []

    # Narrowed to the cap it may be granted.
    keep = [t["device_id"] for t in detail.json()["targets"]][:cap]
    narrowed = await decide(
        people.reviewer_client,
        rid,
        "narrow",
        {"keep_devices": keep, "reason": "The cameras facing the street only."},
    )
    assert narrowed.status_code == 200, narrowed.text
    assert narrowed.json()["status"] == "narrowed"

    # Naming more homes or cameras than the cap is refused at filing.
    cameras = [{"kind": "device", "id": t["device_id"]} for t in detail.json()["targets"]]
    too_many = await people.officer_client.post(
        f"{flow.agency_url}/emergencies", json=emergency_body(cameras)
    )
    error = assert_error(too_many, 400, "scope_too_broad")
    assert error["details"] == {"items": cap + 1, "max_items": cap}
    assert await count(app, LegalRequest) == 1


@pytest.mark.parametrize(
    "fields",
    [
        {"nondisclosure_until": "2027-06-01T00:00:00+00:00"},
        {"nondisclosure_until": "2027-06-01T00:00:00+00:00", "nondisclosure_order": "x"},
    ],
    ids=["end date", "end date and order"],
)
async def test_an_emergency_cannot_carry_a_non_disclosure_order(
    flow: Flow, app: FastAPI, people: Cast, elm: Home, fields: dict[str, str]
) -> None:
    body = emergency_body([device_item(elm.camera.id)], **fields)
    legal_before = [e.id for e in await all_events(app) if e.tag.startswith("legal:")]
    refused = await people.officer_client.post(f"{flow.agency_url}/emergencies", json=body)
    error = assert_error(refused, 422, "validation_error")
    assert {(tuple(d["loc"]), d["type"]) for d in error["details"]} == {  # type: ignore[attr-defined]
        (("body", name), "extra_forbidden") for name in fields
    }
    # Nor as a multipart filing with the order attached, the way other kinds send one.
    multipart = await people.officer_client.post(
        f"{flow.agency_url}/emergencies",
        data={"details": json.dumps(body)},
        files={"nondisclosure_order": ("order.pdf", pdf_bytes("order"), "application/pdf")},
    )
    assert_error(multipart, 422, "validation_error")
    assert await count(app, LegalRequest) == 0
    assert await count(app, Notice) == 0
    assert [e.id for e in await all_events(app) if e.tag.startswith("legal:")] == legal_before
