"""Rings over HTTP (POST /api/v1/device/events, the fallback of the control connection)
and a household's timeline (GET .../events, POST .../events/seen): strict input, replays
are the same event, a flood is refused and counted, and only the household's members
read it (never staff, never another household)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from doorwarden.clock import ManualClock
from doorwarden.config import Settings
from doorwarden.events.models import Event
from doorwarden.roles import Role
from tests.factories import Camera, Factory, assert_error, make_client

URL = "/api/v1/device/events"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"events_clip_interval_s": 0})


def ring(at: datetime, /, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "camera": "front",
        "kind": "ring",
        "at": at.isoformat(),
        "source": "button",
    }
    body.update(changes)
    return body


async def home_with_camera(factory: Factory) -> tuple[uuid.UUID, Camera, httpx.AsyncClient]:
    owner = await factory.user()
    home = await factory.household(owner)
    return home, await factory.camera(owner, home), await factory.signed_in(owner)


async def events(client: httpx.AsyncClient, home: uuid.UUID, query: str = "") -> list[Any]:
    response = await client.get(f"/api/v1/households/{home}/events{query}")
    assert response.status_code == 200, response.text
    body: list[Any] = response.json()
    return body


async def count_events(app: FastAPI) -> int:
    async with app.state.sessionmaker() as db:
        return int(await db.scalar(select(func.count()).select_from(Event)) or 0)


async def test_a_ring_is_an_event_and_a_replay_is_the_same_event(
    factory: Factory, clock: ManualClock, app: FastAPI
) -> None:
    home, camera, owner = await home_with_camera(factory)
    # A zone other than UTC: kept as the same instant.
    at = clock.now().astimezone(datetime.now().astimezone().tzinfo) - timedelta(seconds=3)
    body = ring(at, camera="Front door")
    first = await camera.client.post(URL, json=body)
    assert first.status_code == 201, first.text
    again = await camera.client.post(URL, json=body)
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    [listed] = await events(owner, home)
    assert listed == {
        "id": first.json()["event_id"],
        "device_id": str(camera.id),
        "camera": "Front door",
        "kind": "ring",
        "occurred_at": listed["occurred_at"],
        "clip_id": None,
        "new": True,
    }
    assert datetime.fromisoformat(listed["occurred_at"]) == at
    # The same id for a different ring is an agent's bug, not a replay.
    reused = await camera.client.post(URL, json={**body, "camera": "back"})
    assert_error(reused, 409, "event_id_reused")
    assert await count_events(app) == 1


async def test_a_ring_queued_offline_keeps_its_real_time(
    factory: Factory, clock: ManualClock
) -> None:
    home, camera, owner = await home_with_camera(factory)
    at = clock.now() - timedelta(days=6, hours=23)
    response = await camera.client.post(URL, json=ring(at, source="gpio"))
    assert response.status_code == 201, response.text
    [listed] = await events(owner, home)
    assert datetime.fromisoformat(listed["occurred_at"]) == at


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"kind": "person"}, "person and motion are the server's, from clips"),
        ({"kind": "knock"}, "unknown kind"),
        ({"source": "detector"}, "a camera is not the server's detector"),
        ({"source": "doorknob"}, "unknown source"),
        ({"at": "2026-12-06T11:00:00"}, "a time without a zone"),
        ({"at": 1765018800}, "a number for a time"),
        ({"camera": ""}, "empty camera name"),
        ({"camera": "c" * 65}, "camera name too long"),
        ({"camera": "front\ndoor"}, "control character"),
        ({"camera": "front\u0000"}, "NUL"),
        ({"id": ""}, "empty id"),
        ({"id": "x" * 65}, "id too long"),
        ({"id": "a b"}, "id with a space"),
        ({"type": "event"}, "unknown field over HTTP"),
        ({"extra": 1}, "unknown field"),
    ],
)
async def test_malformed_rings_are_refused(
    factory: Factory, clock: ManualClock, app: FastAPI, change: dict[str, Any], why: str
) -> None:
    _, camera, _ = await home_with_camera(factory)
    response = await camera.client.post(URL, json=ring(clock.now(), **change))
    assert_error(response, 422, "validation_error")
    assert await count_events(app) == 0, why


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[]", b"", b'{"id": "a", "id": "b"}', b"[" * 5000 + b"]" * 5000],
)
async def test_bodies_that_are_not_a_ring_object_are_refused(
    factory: Factory, app: FastAPI, body: bytes
) -> None:
    _, camera, _ = await home_with_camera(factory)
    response = await camera.client.post(
        URL, content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code in (413, 422), response.text
    assert_error(response, response.status_code)
    assert await count_events(app) == 0


async def test_an_oversized_ring_is_refused(factory: Factory, clock: ManualClock) -> None:
    _, camera, _ = await home_with_camera(factory)
    body = json.dumps(ring(clock.now())).encode()
    padded = body[:-1] + b"," + b" " * 5000 + b'"pad": 1}'
    assert_error(
        await camera.client.post(URL, content=padded, headers={"content-type": "application/json"}),
        413,
        "payload_too_large",
    )


@pytest.mark.parametrize(
    "offset", [timedelta(minutes=6), timedelta(days=365), -timedelta(days=7, minutes=1)]
)
async def test_times_out_of_range_are_refused(
    factory: Factory, clock: ManualClock, app: FastAPI, offset: timedelta
) -> None:
    _, camera, _ = await home_with_camera(factory)
    response = await camera.client.post(URL, json=ring(clock.now() + offset))
    assert_error(response, 422, "time_out_of_range")
    assert await count_events(app) == 0


async def test_people_cannot_ring_and_a_camera_rings_only_into_its_own_home(
    factory: Factory, clock: ManualClock, app: FastAPI
) -> None:
    home, _, owner = await home_with_camera(factory)
    other_home, other_camera, other_owner = await home_with_camera(factory)
    # The owner's own session (and API token) cannot speak as a camera.
    assert_error(await owner.post(URL, json=ring(clock.now())), 403)
    token_client = await factory.with_token(await factory.user())
    assert_error(await token_client.post(URL, json=ring(clock.now())), 403)
    anonymous = make_client(app)
    assert_error(await anonymous.post(URL, json=ring(clock.now())), 401)
    # Another home's camera: its ring is its own home's, whatever it says.
    body = ring(clock.now(), household_id=str(home))
    assert_error(await other_camera.client.post(URL, json=body), 422, "validation_error")
    created = await other_camera.client.post(URL, json=ring(clock.now()))
    assert created.status_code == 201, created.text
    assert await events(owner, home) == []
    assert [e["id"] for e in await events(other_owner, other_home)] == [created.json()["event_id"]]
    assert await count_events(app) == 1


async def test_a_ring_flood_is_refused_counted_and_shown_to_the_owner(
    factory: Factory, clock: ManualClock, app: FastAPI
) -> None:
    home, camera, owner = await home_with_camera(factory)
    start = clock.now()
    accepted = []
    for i in range(6):
        response = await camera.client.post(URL, json=ring(start + timedelta(seconds=i)))
        assert response.status_code == 201, response.text
        accepted.append(response.json()["event_id"])
    refused = []
    for i in range(4):
        refused.append(await camera.client.post(URL, json=ring(start + timedelta(seconds=6 + i))))
    for response in refused:
        error = assert_error(response, 429, "too_many_rings")
        retry_after = int(response.headers["retry-after"])
        assert 1 <= retry_after <= 60
        assert error["details"]["retry_after"] == retry_after  # type: ignore[index]
    assert [e["details"]["refused"] for e in (r.json()["error"] for r in refused)] == [1, 2, 3, 4]
    # A replay of an accepted ring is still the same event, not a refusal.
    assert (await camera.client.get("/api/v1/device")).status_code == 200
    assert await count_events(app) == 6
    counted = await owner.get(f"/api/v1/households/{home}/events/refusals")
    assert counted.status_code == 200, counted.text
    [row] = counted.json()
    assert row["device_id"] == str(camera.id) and row["refused"] == 4
    # Rings dated out of order cannot get around the limit either.
    before = await camera.client.post(URL, json=ring(start - timedelta(seconds=30)))
    assert_error(before, 429, "too_many_rings")
    # A minute later on the camera's clock, rings are taken again.
    clock.advance(timedelta(seconds=70))
    later = await camera.client.post(URL, json=ring(clock.now()))
    assert later.status_code == 201, later.text


async def test_rings_queued_offline_across_an_hour_all_arrive(
    factory: Factory, clock: ManualClock, app: FastAPI
) -> None:
    _, camera, _ = await home_with_camera(factory)
    start = clock.now() - timedelta(hours=1)
    for i in range(12):
        response = await camera.client.post(URL, json=ring(start + timedelta(minutes=5 * i)))
        assert response.status_code == 201, response.text
    assert await count_events(app) == 12


async def test_a_camera_dating_a_flood_across_the_week_is_still_limited(
    factory: Factory, clock: ManualClock, app: FastAPI
) -> None:
    _, camera, _ = await home_with_camera(factory)
    codes = []
    for i in range(62):
        at = clock.now() - timedelta(hours=i + 1)
        codes.append((await camera.client.post(URL, json=ring(at))).status_code)
    assert codes == [201] * 60 + [429, 429]


@pytest.mark.parametrize("role", [Role.operator_admin, Role.auditor, Role.legal_reviewer])
async def test_staff_never_read_a_households_events(
    factory: Factory, clock: ManualClock, role: Role
) -> None:
    home, camera, _ = await home_with_camera(factory)
    assert (await camera.client.post(URL, json=ring(clock.now()))).status_code == 201
    staff = await factory.user(role)
    for client in (await factory.signed_in(staff), await factory.with_token(staff)):
        assert_error(await client.get(f"/api/v1/households/{home}/events"), 403)
        assert_error(await client.get(f"/api/v1/households/{home}/events/refusals"), 403)
        seen = await client.post(f"/api/v1/households/{home}/events/seen", json={"all": True})
        assert_error(seen, 403)


async def test_another_household_and_the_camera_cannot_read_events(
    factory: Factory, clock: ManualClock
) -> None:
    home, camera, _ = await home_with_camera(factory)
    assert (await camera.client.post(URL, json=ring(clock.now()))).status_code == 201
    _, _, stranger = await home_with_camera(factory)
    assert_error(await stranger.get(f"/api/v1/households/{home}/events"), 403)
    assert_error(await camera.client.get(f"/api/v1/households/{home}/events"), 401)


async def test_new_until_each_member_has_seen_it(factory: Factory, clock: ManualClock) -> None:
    owner_user = await factory.user()
    shared_user = await factory.user()
    home = await factory.household(owner_user)
    await factory.share(home, owner_user, shared_user)
    camera = await factory.camera(owner_user, home)
    owner, shared = await factory.signed_in(owner_user), await factory.signed_in(shared_user)
    ids = []
    for i in range(3):
        response = await camera.client.post(URL, json=ring(clock.now() - timedelta(minutes=i)))
        ids.append(response.json()["event_id"])
    seen = await owner.post(f"/api/v1/households/{home}/events/seen", json={"ids": [ids[0]]})
    assert seen.status_code == 204, seen.text
    # Seen twice is still seen once.
    again = await owner.post(f"/api/v1/households/{home}/events/seen", json={"ids": [ids[0]]})
    assert again.status_code == 204, again.text
    assert [(e["id"], e["new"]) for e in await events(owner, home)] == [
        (ids[0], False), (ids[1], True), (ids[2], True),
    ]  # fmt: skip
    assert all(e["new"] for e in await events(shared, home))
    all_seen = await shared.post(f"/api/v1/households/{home}/events/seen", json={"all": True})
    assert all_seen.status_code == 204, all_seen.text
    assert not any(e["new"] for e in await events(shared, home))
    assert [e["new"] for e in await events(owner, home)] == [False, True, True]


async def test_seen_refuses_bad_input_and_ignores_other_households_events(
    factory: Factory, clock: ManualClock
) -> None:
    home, _, owner = await home_with_camera(factory)
    other_home, other_camera, other_owner = await home_with_camera(factory)
    response = await other_camera.client.post(URL, json=ring(clock.now()))
    foreign_id = response.json()["event_id"]
    url = f"/api/v1/households/{home}/events/seen"
    assert (await owner.post(url, json={"ids": [foreign_id]})).status_code == 204
    assert [e["new"] for e in await events(other_owner, other_home)] == [True]
    bad: Any
    for bad in ({}, {"ids": [], "all": True}, {"all": False}, {"ids": ["x"]}, {"ids": None},
                {"ids": [str(uuid.uuid4())] * 501}, {"all": "yes"}, []):  # fmt: skip
        assert_error(await owner.post(url, json=bad), 422)
    # The session's CSRF token is required of a browser.
    del owner.headers["x-csrf-token"]
    assert_error(await owner.post(url, json={"all": True}), 403, "csrf_failed")


async def test_filters_by_camera_kind_and_day(factory: Factory, clock: ManualClock) -> None:
    owner_user = await factory.user()
    home = await factory.household(owner_user)
    front = await factory.camera(owner_user, home, "Front")
    back = await factory.camera(owner_user, home, "Back")
    owner = await factory.signed_in(owner_user)
    now = clock.now()
    yesterday = now - timedelta(days=1)
    for cam, at in ((front, now), (front, yesterday), (back, now)):
        assert (await cam.client.post(URL, json=ring(at))).status_code == 201
    assert len(await events(owner, home)) == 3
    assert {e["device_id"] for e in await events(owner, home, f"?device_id={back.id}")} == {
        str(back.id)
    }
    day = yesterday.astimezone(UTC).date().isoformat()
    [only] = await events(owner, home, f"?day={day}")
    assert datetime.fromisoformat(only["occurred_at"]) == yesterday
    assert await events(owner, home, "?kind=person") == []
    assert len(await events(owner, home, "?kind=ring&limit=2")) == 2
    occurred = [e["occurred_at"] for e in await events(owner, home)]
    assert occurred == sorted(occurred, reverse=True)
    for bad in ("?limit=0", "?limit=501", "?kind=knock", "?day=2026-13-01", "?device_id=x"):
        assert_error(await owner.get(f"/api/v1/households/{home}/events{bad}"), 422)


async def test_notify_is_woken_after_a_new_ring_is_committed(
    factory: Factory, clock: ManualClock, app: FastAPI
) -> None:
    _, camera, _ = await home_with_camera(factory)
    committed: list[int] = []

    async def wake() -> None:  # what notify installs; here it reads what is committed
        committed.append(await count_events(app))

    app.state.notify_wake = wake
    body = ring(clock.now())
    assert (await camera.client.post(URL, json=body)).status_code == 201
    assert committed == [1]
    assert (await camera.client.post(URL, json=body)).status_code == 200  # a replay: no wake
    assert committed == [1]
