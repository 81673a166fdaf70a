"""Community requests through the API: an agency asks the residents of a small area of
its jurisdiction for clips of a short window; the homes with cameras there are told;
each owner shares clip by clip or ignores it; the agency sees the clips shared and
nothing else (not who was asked, not who ignored, not where a sharer lives)."""

from __future__ import annotations

import hashlib
import io
import json
import math
import uuid
import zipfile
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from doorwarden.audit.models import AuditEvent
from doorwarden.audit.tasks import run_append
from doorwarden.clock import ManualClock
from doorwarden.config import Settings
from doorwarden.legal.community.models import CommunityRecipient, CommunityShare
from doorwarden.legal.disclosure.models import Package, PackageClip
from doorwarden.legal.models import LegalRequest, Notice
from doorwarden.roles import Role
from tests.factories import Factory, assert_error, make_client
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

LNG, LAT = -0.1, 51.5  # where home() puts households by default, inside TESTSHIRE


def box(dlng: float, dlat: float, lng: float = LNG, lat: float = LAT) -> dict[str, Any]:
    """A GeoJSON Polygon dlng by dlat degrees centred on (lng, lat)."""
    w, s, e, n = lng - dlng / 2, lat - dlat / 2, lng + dlng / 2, lat + dlat / 2
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


def polygon(*ring: tuple[Any, Any]) -> dict[str, Any]:
    """A GeoJSON Polygon of exactly these positions (not closed unless they are)."""
    return {"type": "Polygon", "coordinates": [[list(p) for p in ring]]}


AREA = box(0.016, 0.01)  # about 0.48 square miles around (51.5, -0.1)
OUTSIDE_LAT = 51.52  # 2 km north: in the jurisdiction, not in AREA


def community_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "case_number": f"CM-{uuid.uuid4().hex[:8]}",
        "area": AREA,
        "window_start": iso(at(9)),
        "window_end": iso(at(12)),
        "public_text": "A car was broken into on Elm Street on the morning of 25 November; "
        "footage of the street may help.",
    }
    body.update(changes)
    return body


def community_url(agency_id: uuid.UUID) -> str:
    return f"/api/v1/agencies/{agency_id}/requests/community"


async def file_community(
    client: httpx.AsyncClient, agency_id: uuid.UUID, **changes: Any
) -> httpx.Response:
    return await client.post(community_url(agency_id), json=community_body(**changes))


async def filed(client: httpx.AsyncClient, agency_id: uuid.UUID, **changes: Any) -> str:
    response = await file_community(client, agency_id, **changes)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def clip_ids(made: Home) -> dict[float, str]:
    """The home's clips by the hour (of 2026-11-25) they start at."""
    response = await made.client.get(f"/api/v1/households/{made.household_id}/clips")
    assert response.status_code == 200, response.text
    out = {}
    for clip in response.json():
        start = datetime.fromisoformat(clip["start_at"])
        out[(start - at(0)).total_seconds() / 3600] = clip["id"]
    assert len(out) == len(made.clips), out
    return out


def share_url(made: Home, request_id: str) -> str:
    return f"/api/v1/households/{made.household_id}/community-requests/{request_id}/share"


async def share(made: Home, request_id: str, ids: list[str]) -> httpx.Response:
    return await made.client.post(share_url(made, request_id), json={"clip_ids": ids})


async def count(app: FastAPI, model: Any, *where: Any) -> int:
    async with app.state.sessionmaker() as db:
        return int(await db.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def events(app: FastAPI, tag: str) -> list[AuditEvent]:
    async with app.state.sessionmaker() as db:
        query = select(AuditEvent).where(AuditEvent.tag == tag).order_by(AuditEvent.occurred_at)
        return list((await db.scalars(query)).all())


async def nothing_left(app: FastAPI) -> None:
    """No request, no recipient, no notice, no submission event."""
    assert await count(app, LegalRequest) == 0
    assert await count(app, CommunityRecipient) == 0
    assert await count(app, Notice) == 0
    assert await events(app, "legal:request:submit") == []


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The tests here file with one or two homes in the area: below the floor of
    `community_min_households`, which the model's validation keeps operators from
    lowering. Its refusals are tested in test_community_oracle.py."""
    return settings.model_copy(update={"community_min_households": 0})


@pytest.fixture
async def people(factory: Factory) -> AsyncIterator[Cast]:
    made = await cast(factory)
    yield made
    await made.close()


# -- filing ------------------------------------------------------------------------------


async def test_a_small_recent_area_request_is_filed_open(people: Cast, app: FastAPI) -> None:
    response = await file_community(people.officer_client, people.agency_id, case_number="CM-1")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["kind"] == "community" and body["status"] == "open"
    assert body["case_number"] == "CM-1" and body["agency_id"] == str(people.agency_id)
    assert body["public_text"].startswith("A car was broken into")
    assert datetime.fromisoformat(body["window_start"]) == at(9)
    assert datetime.fromisoformat(body["window_end"]) == at(12)
    assert 1.2 < body["area_km2"] < 1.3  # 0.48 sq mi
    assert body["scope"] == [] and body["packages"] == []
    [submitted] = await events(app, "legal:request:submit")
    assert submitted.target_id == body["id"] and submitted.agency_id == people.agency_id
    assert submitted.actor_user_id == people.officer.id and submitted.extra["kind"] == "community"
    # Read back under the agency, as filed.
    read = await people.officer_client.get(
        f"/api/v1/agencies/{people.agency_id}/requests/{body['id']}"
    )
    assert read.status_code == 200 and read.json()["status"] == "open"


def _ring(n: int) -> list[list[float]]:
    """A closed ring of n distinct positions round an ellipse about 600 m across."""
    ring = [
        [LNG + 0.004 * math.cos(2 * math.pi * k / n), LAT + 0.003 * math.sin(2 * math.pi * k / n)]
        for k in range(n)
    ]
    return [*ring, ring[0]]


Changes = Callable[[datetime], dict[str, Any]]

REFUSALS: list[tuple[str, Changes, int, str, str]] = [
    # (name, changes given the clock's now, status, code, a word of the message)
    ("area 0.6 sq mi", lambda _: {"area": box(0.0202, 0.01)}, 400, "area_too_large", "0.60"),
    (
        "13-hour window",
        lambda _: {"window_start": iso(at(0)), "window_end": iso(at(13))},
        400,
        "window_too_long",
        "13",
    ),
    (
        "window reaching past now",
        lambda now: {
            "window_start": iso(now - timedelta(hours=2)),
            "window_end": iso(now + timedelta(hours=1)),
        },
        400,
        "window_in_future",
        "future",
    ),
    (
        "window wholly in the future",
        lambda now: {
            "window_start": iso(now + timedelta(days=1)),
            "window_end": iso(now + timedelta(days=1, hours=2)),
        },
        400,
        "window_in_future",
        "future",
    ),
    (
        "area partly outside the jurisdiction",
        lambda _: {"area": box(0.01, 0.004, lat=51.6)},  # straddles Testshire's north edge
        400,
        "out_of_jurisdiction",
        "jurisdiction",
    ),
    (
        "area wholly outside the jurisdiction",
        lambda _: {"area": box(0.01, 0.005, lng=2.35, lat=48.85)},
        400,
        "out_of_jurisdiction",
        "jurisdiction",
    ),
    (
        "not a polygon",
        lambda _: {"area": {"type": "Point", "coordinates": [LNG, LAT]}},
        400,
        "invalid_area",
        "Polygon",
    ),
    (
        "unclosed ring",
        lambda _: {
            "area": polygon((-0.101, 51.499), (-0.099, 51.499), (-0.099, 51.501), (-0.101, 51.501))
        },
        400,
        "invalid_area",
        "closed",
    ),
    (
        "self-intersecting (a bow tie)",
        lambda _: {
            "area": polygon(
                (-0.101, 51.499),
                (-0.099, 51.501),
                (-0.099, 51.499),
                (-0.101, 51.501),
                (-0.101, 51.499),
            )
        },
        400,
        "invalid_area",
        "not a valid polygon",
    ),
    (
        "crossing the antimeridian",
        lambda _: {
            "area": polygon(
                (179.995, 51.5),
                (-179.995, 51.5),
                (-179.995, 51.505),
                (179.995, 51.505),
                (179.995, 51.5),
            )
        },
        400,
        "invalid_area",
        "antimeridian",
    ),
    (
        "2,500 vertices",
        lambda _: {"area": {"type": "Polygon", "coordinates": [_ring(2500)]}},
        400,
        "invalid_area",
        "positions",
    ),
    (
        "coordinates as strings",
        lambda _: {
            "area": polygon(
                ("-0.101", "51.499"),
                ("-0.099", "51.499"),
                ("-0.099", "51.501"),
                ("-0.101", "51.499"),
            )
        },
        400,
        "invalid_area",
        "numbers",
    ),
]


@pytest.mark.parametrize(
    ("changes", "status", "code", "word"),
    [pytest.param(*r[1:], id=r[0]) for r in REFUSALS],
)
async def test_refused_filings_say_why_and_leave_nothing(
    people: Cast,
    app: FastAPI,
    clock: ManualClock,
    changes: Changes,
    status: int,
    code: str,
    word: str,
) -> None:
    await home(people.factory, "1 Inside Lane", clip_hours=(10.0,))  # it must not be told
    refused = await file_community(people.officer_client, people.agency_id, **changes(clock.now()))
    error = assert_error(refused, status, code)
    assert word in str(error["message"]), error
    await nothing_left(app)


async def test_a_nan_coordinate_is_an_invalid_area(people: Cast, app: FastAPI) -> None:
    """JSON has no NaN, but Python's parser reads the literal: it must not reach shapely."""
    ring = [[-0.101, 51.499], [math.nan, 51.499], [-0.099, 51.501], [-0.101, 51.499]]
    body = json.dumps(community_body(area={"type": "Polygon", "coordinates": [ring]}))
    assert "NaN" in body
    refused = await people.officer_client.post(
        community_url(people.agency_id),
        content=body,
        headers={"content-type": "application/json"},
    )
    error = assert_error(refused, 400, "invalid_area")
    assert "finite" in str(error["message"])
    await nothing_left(app)


async def test_an_area_at_the_limit_is_accepted(people: Cast) -> None:
    # 0.0168 x 0.01 degrees here is 0.499 sq mi: just within 0.5.
    response = await file_community(people.officer_client, people.agency_id, area=box(0.0168, 0.01))
    assert response.status_code == 201, response.text
    assert response.json()["area_km2"] <= 0.5 * 2.589988110336


async def test_a_second_open_request_of_the_same_case_is_refused(
    people: Cast, app: FastAPI
) -> None:
    first = await filed(people.officer_client, people.agency_id, case_number="CM-DUP")
    again = await file_community(people.officer_client, people.agency_id, case_number="CM-DUP")
    error = assert_error(again, 409, "duplicate_request")
    assert error["details"] == {"request_id": first}
    assert await count(app, LegalRequest) == 1
    # Another case is another request; and once closed, the case may be asked again.
    await filed(people.officer_client, people.agency_id, case_number="CM-OTHER")
    closed = await people.officer_client.post(
        f"/api/v1/agencies/{people.agency_id}/requests/{first}/close"
    )
    assert closed.status_code == 200 and closed.json()["status"] == "closed", closed.text
    await filed(people.officer_client, people.agency_id, case_number="CM-DUP")
    assert await count(app, LegalRequest) == 3


async def test_an_agency_without_a_jurisdiction_area_cannot_ask(
    people: Cast, factory: Factory, app: FastAPI
) -> None:
    agency_id = await factory.agency_in_good_standing(people.admin, "Arealess Police")
    cleared = await people.admin_client.patch(
        f"/api/v1/agencies/{agency_id}", json={"jurisdiction_area": None}
    )
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["has_jurisdiction_area"] is False
    assert cleared.json()["standing"] == "active"
    officer = await factory.signed_in(await factory.user(Role.agency_officer, agency_id=agency_id))
    refused = await file_community(officer, agency_id)
    assert_error(refused, 409, "no_jurisdiction")
    await officer.aclose()
    await nothing_left(app)


async def test_the_operator_switches_community_requests_off_and_on(
    people: Cast, factory: Factory, app: FastAPI
) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as anonymous:
        before = await anonymous.get("/api/v1/policy")
        assert before.status_code == 200, before.text
        assert before.json()["community_requests_enabled"] is True
        assert before.json()["community_max_square_miles"] == 0.5
        assert before.json()["community_max_hours"] == 12
        # Only an operator may switch it.
        assert_error(
            await anonymous.put("/api/v1/policy", json={"community_requests_enabled": False}), 401
        )
        resident = await factory.signed_in(await factory.user())
        for client in (people.officer_client, people.reviewer_client, resident):
            refused = await client.put("/api/v1/policy", json={"community_requests_enabled": False})
            assert_error(refused, 403, "forbidden")
        await resident.aclose()
        assert await events(app, "instance:policy:update") == []
        unknown = await people.admin_client.put(
            "/api/v1/policy", json={"community_requests_enabled": False, "warrant_max_hours": 99}
        )
        assert_error(unknown, 422, "validation_error")

        off = await people.admin_client.put(
            "/api/v1/policy", json={"community_requests_enabled": False}
        )
        assert off.status_code == 200, off.text
        assert off.json()["community_requests_enabled"] is False and off.json()["updated_at"]
        public = (await anonymous.get("/api/v1/policy")).json()
        assert public["community_requests_enabled"] is False
        [switched] = await events(app, "instance:policy:update")
        assert switched.actor_user_id == people.admin.id
        assert switched.extra == {"community_requests_enabled": False, "was": True}

        refused = await file_community(people.officer_client, people.agency_id)
        assert_error(refused, 403, "community_requests_disabled")
        await nothing_left(app)

        on = await people.admin_client.put(
            "/api/v1/policy", json={"community_requests_enabled": True}
        )
        assert on.status_code == 200 and on.json()["community_requests_enabled"] is True
        assert (await anonymous.get("/api/v1/policy")).json()["community_requests_enabled"]
        switches = await events(app, "instance:policy:update")
        assert [e.extra for e in switches] == [
            {"community_requests_enabled": False, "was": True},
            {"community_requests_enabled": True, "was": False},
        ]
    await filed(people.officer_client, people.agency_id)


# -- recipients --------------------------------------------------------------------------


async def test_homes_with_cameras_in_the_area_are_told_and_no_others(
    people: Cast, factory: Factory, app: FastAPI
) -> None:
    inside = await home(factory, "1 Inside Lane", clip_hours=(8.0, 10.0, 11.0, 14.0))
    outside = await home(factory, "9 Far Road", latitude=OUTSIDE_LAT, clip_hours=(10.0,))
    gone = await home(factory, "3 Gone Lane", clip_hours=(10.0,))
    removed = await gone.client.delete(
        f"/api/v1/households/{gone.household_id}/devices/{gone.camera.id}"
    )
    assert removed.status_code == 204, removed.text

    rid = await filed(people.officer_client, people.agency_id, case_number="CM-TOLD")
    view = await legal_view(inside.client, inside.household_id)
    [notice] = view["notices"]
    assert notice["kind"] == "community" and notice["request_id"] == rid
    assert "Testshire Police" in notice["message"] and "CM-TOLD" in notice["message"]
    assert "A car was broken into" in notice["message"] and notice["delivered_at"]
    [asked] = view["community_requests"]
    clips = await clip_ids(inside)
    assert (
        asked["id"] == rid and asked["status"] == "open" and asked["agency"] == "Testshire Police"
    )
    assert asked["case_number"] == "CM-TOLD" and asked["public_text"].startswith("A car")
    # The clips overlapping 09:00-12:00: not the 08:00 or 14:00 ones.
    assert asked["shareable_clips"] == [clips[10.0], clips[11.0]]
    assert asked["shared_clips"] == []
    assert view["requests"] == []  # a community request is not a demand on the household

    for other in (outside, gone):
        view = await legal_view(other.client, other.household_id)
        assert view["notices"] == [] and view["community_requests"] == []
    async with app.state.sessionmaker() as db:
        recipients = (await db.scalars(select(CommunityRecipient))).all()
        assert [(str(r.request_id), r.household_id) for r in recipients] == [
            (rid, inside.household_id)
        ]
        assert recipients[0].responded_at is None
    [submitted] = await events(app, "legal:request:submit")
    assert submitted.extra["households_asked"] == 1
    delivered = await events(app, "legal:notice:deliver")
    assert [e.household_id for e in delivered] == [inside.household_id]


async def test_a_shared_member_cannot_read_or_answer_the_request(
    people: Cast, factory: Factory
) -> None:
    inside = await home(factory, "1 Inside Lane")
    member = await factory.user()
    await factory.share(inside.household_id, inside.owner, member)
    member_client = await factory.signed_in(member)
    rid = await filed(people.officer_client, people.agency_id)
    clips = await clip_ids(inside)
    assert_error(await member_client.get(f"/api/v1/households/{inside.household_id}/legal"), 403)
    refused = await member_client.post(share_url(inside, rid), json={"clip_ids": [clips[10.0]]})
    assert_error(refused, 403, "forbidden")
    await member_client.aclose()
    assert (await legal_view(inside.client, inside.household_id))["community_requests"][0][
        "shared_clips"
    ] == []


# -- sharing -----------------------------------------------------------------------------


async def test_the_owner_shares_clip_by_clip(people: Cast, factory: Factory, app: FastAPI) -> None:
    mine = await home(factory, "1 Inside Lane", clip_hours=(10.0, 11.0, 14.0))
    neighbour = await home(factory, "2 Inside Lane", clip_hours=(10.5,))
    stranger = await home(factory, "9 Far Road", latitude=OUTSIDE_LAT, clip_hours=(10.0,))
    rid = await filed(people.officer_client, people.agency_id, case_number="CM-SHARE")
    clips, theirs, far = await clip_ids(mine), await clip_ids(neighbour), await clip_ids(stranger)

    first = await share(mine, rid, [clips[10.0]])
    assert first.status_code == 200, first.text
    assert first.json() == {"shared": [clips[10.0]], "total_shared": 1}
    [shared] = await events(app, "clip:share")
    assert shared.household_id == mine.household_id and shared.agency_id == people.agency_id
    assert shared.target_type == "clip" and shared.target_id == clips[10.0]
    assert shared.actor_user_id == mine.owner.id
    assert shared.extra == {"request": rid, "case_number": "CM-SHARE"}

    # Again: nothing new, nothing recorded twice.
    again = await share(mine, rid, [clips[10.0], clips[10.0]])
    assert again.status_code == 200 and again.json() == {"shared": [], "total_shared": 1}
    assert len(await events(app, "clip:share")) == 1

    # Not the household's to share with this request: outside the window, another
    # household's clip (asked too, or not asked at all), a clip that does not exist.
    for ids in (
        [clips[14.0]],
        [theirs[10.5]],
        [far[10.0]],
        [str(uuid.uuid4())],
        [clips[11.0], clips[14.0]],  # one good, one not: neither is shared
    ):
        refused = await share(mine, rid, ids)
        error = assert_error(refused, 400, "clip_not_shareable")
        assert str(error["details"]["clips"][0]) in ids  # type: ignore[index]
        assert clips[11.0] not in error["details"]["clips"]  # type: ignore[index]
    assert len(await events(app, "clip:share")) == 1
    assert await count(app, CommunityShare) == 1

    # A clip the owner deleted is no longer shareable.
    deleted = await mine.client.delete(
        f"/api/v1/households/{mine.household_id}/clips/{clips[11.0]}"
    )
    assert deleted.status_code == 204, deleted.text
    assert_error(await share(mine, rid, [clips[11.0]]), 400, "clip_not_shareable")
    asked = (await legal_view(mine.client, mine.household_id))["community_requests"][0]
    assert asked["shareable_clips"] == [clips[10.0]] and asked["shared_clips"] == [clips[10.0]]

    # A household that was not asked cannot tell the request exists.
    assert_error(await share(stranger, rid, [far[10.0]]), 404, "not_found")
    assert_error(await share(mine, str(uuid.uuid4()), [clips[10.0]]), 404, "not_found")
    # Nor can an owner answer in another household's name.
    cross = await mine.client.post(share_url(neighbour, rid), json={"clip_ids": [theirs[10.5]]})
    assert_error(cross, 403, "forbidden")

    async with app.state.sessionmaker() as db:
        rows = {r.household_id: r for r in (await db.scalars(select(CommunityRecipient))).all()}
    assert set(rows) == {mine.household_id, neighbour.household_id}
    assert rows[mine.household_id].responded_at is not None
    assert rows[neighbour.household_id].responded_at is None

    # Closed by the agency: nothing more can be shared.
    closed = await people.officer_client.post(
        f"/api/v1/agencies/{people.agency_id}/requests/{rid}/close"
    )
    assert closed.status_code == 200 and closed.json()["status"] == "closed", closed.text
    assert closed.json()["closed_at"]
    assert_error(await share(neighbour, rid, [theirs[10.5]]), 409, "request_closed")
    assert_error(await share(mine, rid, [clips[10.0]]), 409, "request_closed")
    assert await count(app, CommunityShare) == 1
    asked = (await legal_view(neighbour.client, neighbour.household_id))["community_requests"][0]
    assert asked["status"] == "closed"
    # Closing twice is a conflict, not a second close.
    assert_error(
        await people.officer_client.post(
            f"/api/v1/agencies/{people.agency_id}/requests/{rid}/close"
        ),
        409,
    )


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"clip_ids": []}, id="empty"),
        pytest.param({"clip_ids": [str(uuid.uuid4()) for _ in range(101)]}, id="101 ids"),
        pytest.param({"clip_ids": ["not-a-uuid"]}, id="not a uuid"),
        pytest.param({"clip_ids": [12345]}, id="a number"),
        pytest.param({"clip_ids": "all"}, id="not a list"),
        pytest.param({}, id="missing"),
        pytest.param({"clip_ids": None}, id="null"),
        pytest.param({"clip_ids": [], "all": True}, id="unknown field"),
        pytest.param({"clip_ids": ["00000000-0000-0000-0000-000000000000"], "auto": 1},
                     id="unknown field with ids"),
    ],
)  # fmt: skip
async def test_bad_share_bodies_are_refused_in_the_error_shape(
    people: Cast, factory: Factory, app: FastAPI, body: dict[str, Any]
) -> None:
    mine = await home(factory, "1 Inside Lane", clip_hours=(10.0,))
    rid = await filed(people.officer_client, people.agency_id)
    refused = await mine.client.post(share_url(mine, rid), json=body)
    assert 400 <= refused.status_code < 500, refused.text
    assert_error(refused, refused.status_code)
    assert await count(app, CommunityShare) == 0
    assert await events(app, "clip:share") == []


async def test_a_non_json_share_body_is_refused(people: Cast, factory: Factory) -> None:
    mine = await home(factory, "1 Inside Lane", clip_hours=(10.0,))
    rid = await filed(people.officer_client, people.agency_id)
    refused = await mine.client.post(
        share_url(mine, rid), content=b"{oops", headers={"content-type": "application/json"}
    )
    assert_error(refused, refused.status_code)
    assert 400 <= refused.status_code < 500


# -- what the agency sees ----------------------------------------------------------------

SHARED_FIELDS = {"id", "start_at", "end_at", "duration_ms", "labels"}


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


def assert_tells_nothing(text: str, secrets: list[str]) -> None:
    for secret in secrets:
        assert secret not in text, secret
    lowered = text.lower()
    for word in ("household", "recipient", "asked", "address", "responded"):
        assert word not in lowered, word


async def test_the_agency_sees_only_the_clips_shared(
    people: Cast, factory: Factory, app: FastAPI
) -> None:
    sharer = await home(factory, "1 Sharing Lane", clip_hours=(10.0, 11.0))
    ignorer = await home(factory, "2 Ignoring Lane", clip_hours=(10.0, 11.5))
    await home(factory, "9 Far Road", latitude=OUTSIDE_LAT, clip_hours=(10.0,))
    base = f"/api/v1/agencies/{people.agency_id}/requests"
    rid = await filed(people.officer_client, people.agency_id, case_number="CM-SEE")
    officer = people.officer_client

    # Nothing shared yet: no clips, and no package to build.
    assert (await officer.get(f"{base}/{rid}/shares")).json() == []
    assert_error(await officer.post(f"{base}/{rid}/packages"), 409, "nothing_shared")
    assert await count(app, Package) == 0

    mine = await clip_ids(sharer)
    done = await share(sharer, rid, [mine[11.0]])
    assert done.status_code == 200, done.text

    shares = await officer.get(f"{base}/{rid}/shares")
    assert shares.status_code == 200, shares.text
    [seen] = shares.json()
    assert set(seen) == SHARED_FIELDS
    assert seen["id"] == mine[11.0] and "device_id" not in seen
    assert datetime.fromisoformat(seen["start_at"]) == at(11.0)
    assert datetime.fromisoformat(seen["end_at"]) == at(11.0) + timedelta(seconds=12)
    assert seen["duration_ms"] == 12_000

    # Everything the agency can read of the request.
    secrets = [
        str(sharer.household_id),
        str(ignorer.household_id),
        str(ignorer.camera.id),
        str(sharer.owner.id),
        str(ignorer.owner.id),
        sharer.address,
        ignorer.address,
        *(await clip_ids(ignorer)).values(),
        mine[10.0],  # the sharer's clip it kept
    ]
    answers = [
        await officer.get(f"{base}/{rid}"),
        await officer.get(base),
        shares,
    ]
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert_tells_nothing(answer.text, secrets)
    detail = answers[0].json()
    assert set(detail) == set(answers[1].json()[0])
    assert not {k for k in _keys(detail) if "count" in k or "households" in k}

    # The package: exactly the shared clip.
    built = await officer.post(f"{base}/{rid}/packages")
    assert built.status_code == 201, built.text
    package = built.json()
    assert package["kind"] == "community" and package["clips"] == 1
    assert_tells_nothing(built.text, secrets)
    download = await officer.get(package["download_url"])
    assert download.status_code == 200, download.text
    assert download.headers["content-type"] == "application/zip"
    async with app.state.sessionmaker() as db:
        row = await db.get(Package, uuid.UUID(package["id"]))
        assert row is not None and row.sha256 == download.headers["x-content-sha256"]
        in_package = (
            await db.scalars(select(PackageClip.clip_id).where(PackageClip.package_id == row.id))
        ).all()
        object_key = row.object_key
    assert [str(c) for c in in_package] == [mine[11.0]]
    stored = b"".join([b async for b in app.state.clip_store.stream(object_key)])
    assert stored == download.content
    with zipfile.ZipFile(io.BytesIO(download.content)) as zipped:
        manifest = json.loads(zipped.read("package.json"))
        assert [c["id"] for c in manifest["clips"]] == [mine[11.0]]
        assert manifest["kind"] == "community" and manifest["request"] == rid
        for name in zipped.namelist():
            data = zipped.read(name)
            for secret in secrets:
                assert secret.encode() not in data, (name, secret)
        names = set(zipped.namelist())
        # The package's own files (the clips' manifests are the cameras' signed words,
        # whose "recipients" are the keys the clip is sealed to): no household in them.
        ours = {n for n in names if n.endswith(".json") and "/" not in n}
        texts = [zipped.read(n).decode() for n in sorted(ours)]
    assert "subscribers.json" not in names
    assert {"package.json", "request.json", "custody.json", "devices.json"} <= ours
    for text in texts:
        keys = {k.lower() for k in _keys(json.loads(text))}
        assert not {k for k in keys if "household" in k or "recipient" in k}, keys
    # The request as listed later carries the package, and still nothing more.
    later = await officer.get(f"{base}/{rid}")
    assert [p["id"] for p in later.json()["packages"]] == [package["id"]]
    assert_tells_nothing(later.text, secrets)
    # The sharer is told exactly what the agency received; the household that ignored
    # the request is told of no disclosure.
    [told] = [n for n in (await legal_view(sharer.client, sharer.household_id))["notices"]
              if n["kind"] == "disclosure"]  # fmt: skip
    assert told["request_id"] == rid and told["delivered_at"]
    assert "received the clips your household shared" in told["message"]
    assert mine[11.0] in told["message"] and mine[10.0] not in told["message"]
    ignored = (await legal_view(ignorer.client, ignorer.household_id))["notices"]
    assert [n["kind"] for n in ignored] == ["community"]
    disclosed = await events(app, "legal:disclose")
    assert [(e.household_id, e.extra["clips"]) for e in disclosed] == [
        (sharer.household_id, [mine[11.0]])
    ]


async def test_other_agencies_and_other_roles_cannot_reach_the_shares(
    people: Cast, factory: Factory, app: FastAPI
) -> None:
    sharer = await home(factory, "1 Sharing Lane", clip_hours=(10.0,))
    rid = await filed(people.officer_client, people.agency_id)
    assert (await share(sharer, rid, list((await clip_ids(sharer)).values()))).status_code == 200
    other = await factory.agency_in_good_standing(people.admin, "Otherton Police")
    other_officer = await factory.signed_in(
        await factory.user(Role.agency_officer, agency_id=other)
    )
    ours = f"/api/v1/agencies/{people.agency_id}/requests/{rid}"
    theirs = f"/api/v1/agencies/{other}/requests/{rid}"
    # Another agency: refused on our path, not found under its own.
    assert_error(await other_officer.get(f"{ours}/shares"), 403, "wrong_agency")
    assert_error(await other_officer.post(f"{ours}/packages"), 403, "wrong_agency")
    assert_error(await other_officer.post(f"{ours}/close"), 403, "wrong_agency")
    assert_error(await other_officer.get(ours), 403, "wrong_agency")
    assert_error(await other_officer.get(f"{theirs}/shares"), 404, "not_found")
    assert_error(await other_officer.post(f"{theirs}/packages"), 404, "not_found")
    assert_error(await other_officer.post(f"{theirs}/close"), 404, "not_found")
    await other_officer.aclose()
    # Staff and residents have no agency route at all.
    resident = sharer.client
    for client in (people.reviewer_client, people.admin_client, resident):
        assert_error(await client.get(f"{ours}/shares"), 403, "forbidden")
        assert_error(await client.post(f"{ours}/packages"), 403, "forbidden")
        assert_error(await client.post(f"{ours}/close"), 403, "forbidden")
        assert_error(await client.get(ours), 403, "forbidden")
        refused = await client.post(community_url(people.agency_id), json=community_body())
        assert_error(refused, 403)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as anonymous:
        assert_error(await anonymous.get(f"{ours}/shares"), 401)
    assert await count(app, Package) == 0
    assert await count(app, LegalRequest) == 1
    # A request of another kind has no shares to list or package.
    warrant = await file_warrant(
        people.officer_client, people.agency_id, [device_item(sharer.camera.id)]
    )
    assert warrant.status_code == 201, warrant.text
    other_kind = f"/api/v1/agencies/{people.agency_id}/requests/{warrant.json()['id']}"
    assert_error(await people.officer_client.get(f"{other_kind}/shares"), 404, "not_found")
    assert_error(await people.officer_client.post(f"{other_kind}/packages"), 404, "not_found")


async def test_the_public_log_does_not_tell_the_agency_who_was_asked(
    people: Cast, factory: Factory, app: FastAPI
) -> None:
    sharer = await home(factory, "1 Sharing Lane", clip_hours=(10.0,))
    ignorer = await home(factory, "2 Ignoring Lane", clip_hours=(10.0,))
    rid = await filed(people.officer_client, people.agency_id)
    assert (await share(sharer, rid, list((await clip_ids(sharer)).values()))).status_code == 200
    await run_append(app.state.sessionmaker, app.state.log_signer)
    async with make_client(app) as anonymous:
        entries = (await anonymous.get("/api/v1/log/entries", params={"end": 1000})).json()
    leaves = [json.loads(e["leaf"]) for e in entries["entries"]]
    about_the_request = [
        leaf
        for leaf in leaves
        if leaf["agency"] == str(people.agency_id)
        and leaf["tag"] in ("legal:notice:deliver", "clip:share")
    ]
    assert about_the_request  # the events are in the log
    named = {leaf["household"] for leaf in about_the_request}
    assert named <= {None}, named
    # Nor does any entry the agency can connect to its request: the shared clip's id is
    # not public in its share entry, so it cannot be followed to the sharer's others.
    shared = set((await clip_ids(sharer)).values())
    for leaf in about_the_request:
        assert leaf["target"] not in {str(c) for c in shared}, leaf
    connected = [leaf for leaf in leaves if leaf["agency"] == str(people.agency_id)]
    assert str(ignorer.household_id) not in json.dumps(connected)
    assert str(sharer.household_id) not in json.dumps(connected)
    # The sharer's household still gets these entries and can check each one.
    own = await sharer.client.get(f"/api/v1/households/{sharer.household_id}/log-entries")
    assert own.status_code == 200, own.text
    quiet = [e for e in own.json() if json.loads(e["leaf"])["tag"] == "clip:share"]
    assert quiet, own.text
    for entry in quiet:
        digest = hashlib.sha256(bytes.fromhex(entry["salt"]) + entry["private"].encode())
        assert digest.hexdigest() == json.loads(entry["leaf"])["commitment"]
        assert json.loads(entry["private"])["household"] == str(sharer.household_id)
