"""The modes API (docs/modes.md): definitions, the mode in force, the schedule, snoozes;
who may do what (owners set modes, any member snoozes their own notifications, staff and
other households nothing), malformed input, and what `notifies` then says."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from doorwarden.accounts.models import User
from doorwarden.audit.models import AuditEvent
from doorwarden.clock import ManualClock
from doorwarden.modes import service
from doorwarden.roles import Role
from tests.factories import Factory, assert_error


@dataclass
class Home:
    id: uuid.UUID
    owner: httpx.AsyncClient
    shared: httpx.AsyncClient
    owner_user: User
    shared_user: User
    camera: uuid.UUID
    other_camera: uuid.UUID  # paired to another household
    other: uuid.UUID  # another household (its owner is `stranger`)
    stranger: httpx.AsyncClient

    def url(self, tail: str, household: uuid.UUID | None = None) -> str:
        return f"/api/v1/households/{household or self.id}{tail}"


@pytest.fixture
async def home(factory: Factory) -> Home:
    owner, shared, stranger = await factory.user(), await factory.user(), await factory.user()
    home = await factory.household(owner)
    await factory.share(home, owner, shared)
    other = await factory.household(stranger, "Next door")
    camera = await factory.camera(owner, home)
    other_camera = await factory.camera(stranger, other)
    await camera.client.aclose()
    await other_camera.client.aclose()
    return Home(
        home, await factory.signed_in(owner), await factory.signed_in(shared), owner, shared,
        camera.id, other_camera.id, other, await factory.signed_in(stranger),
    )  # fmt: skip


async def audit_tags(app: FastAPI, household: uuid.UUID) -> list[tuple[str, dict[str, Any]]]:
    async with app.state.sessionmaker() as db:
        rows = await db.scalars(
            select(AuditEvent)
            .where(AuditEvent.household_id == household, AuditEvent.tag.like("mode:%"))
            .order_by(AuditEvent.id)
        )
        return [(r.tag, r.extra) for r in rows]


async def test_a_household_starts_at_home_with_the_default_settings(home: Home) -> None:
    response = await home.shared.get(home.url("/modes"))
    assert response.status_code == 200, response.text
    body = response.json()
    cam = str(home.camera)
    assert body["modes"]["home"] == {
        "label": "Home", "cameras": {cam: {"record": True, "detect": True, "notify": False}},
    }  # fmt: skip
    assert body["modes"]["away"]["cameras"][cam] == {"record": True, "detect": True, "notify": True}
    assert body["modes"]["disarmed"]["cameras"][cam] == {
        "record": False, "detect": False, "notify": False,
    }  # fmt: skip
    assert body["cameras"] == [{"id": cam, "name": "Front door"}]
    assert body["schedule"] == []
    current = (await home.shared.get(home.url("/mode"))).json()
    assert current == {
        "mode": "home", "label": "Home", "since": None, "source": "default", "next": None,
        "snoozes": [],
    }  # fmt: skip


async def test_the_owner_sets_the_mode_and_it_is_audited(
    app: FastAPI, home: Home, clock: ManualClock
) -> None:
    response = await home.owner.put(home.url("/mode"), json={"mode": "away"})
    assert response.status_code == 200, response.text
    assert response.json()["mode"] == "away"
    assert response.json()["source"] == "manual"
    seen = (await home.shared.get(home.url("/mode"))).json()
    assert (seen["mode"], seen["label"]) == ("away", "Away")
    assert await audit_tags(app, home.id) == [
        ("mode:set", {"mode": "away", "from": "home", "source": "manual"})
    ]
    # A shared member may not; nor may the owner of another household.
    assert_error(await home.shared.put(home.url("/mode"), json={"mode": "home"}), 403)
    assert_error(await home.stranger.put(home.url("/mode"), json={"mode": "home"}), 403)
    assert (await home.owner.get(home.url("/mode"))).json()["mode"] == "away"


async def test_labels_and_per_camera_settings(app: FastAPI, home: Home) -> None:
    cam = str(home.camera)
    change = {"modes": {"home": {"label": "Daytime", "cameras": {cam: {
        "record": False, "detect": True, "notify": True}}}}}  # fmt: skip
    response = await home.owner.put(home.url("/modes"), json=change)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["modes"]["home"]["label"] == "Daytime"
    assert body["modes"]["home"]["cameras"][cam] == {
        "record": False,
        "detect": True,
        "notify": True,
    }
    assert body["modes"]["away"]["label"] == "Away"  # untouched
    # A label alone keeps the camera settings.
    again = await home.owner.put(home.url("/modes"), json={"modes": {"home": {"label": "Day"}}})
    assert again.json()["modes"]["home"]["cameras"][cam]["record"] is False
    assert (await home.owner.get(home.url("/mode"))).json()["label"] == "Day"
    assert [t for t, _ in await audit_tags(app, home.id)] == ["mode:update", "mode:update"]
    assert_error(await home.shared.put(home.url("/modes"), json=change), 403)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"modes": {"party": {"label": "x"}}},
        {"modes": {"home": {"label": ""}}},
        {"modes": {"home": {"label": "x" * 41}}},
        {"modes": {"home": {"colour": "red"}}},
        {
            "modes": {
                "home": {
                    "cameras": {"not-a-uuid": {"record": True, "detect": True, "notify": True}}
                }
            }
        },
        {
            "modes": {
                "home": {"cameras": {"CAM": {"record": "yes", "detect": True, "notify": True}}}
            }
        },
        {"modes": {"home": {"cameras": {"CAM": {"record": True, "detect": True}}}}},
        {"modes": {"home": {"cameras": {"CAM": {"record": 1, "detect": 1, "notify": 1}}}}},
        {"modes": []},
    ],
)
async def test_malformed_definitions_are_refused(home: Home, body: dict[str, Any]) -> None:
    text = str(body).replace("'", '"').replace("True", "true").replace("CAM", str(home.camera))
    response = await home.owner.put(
        home.url("/modes"), content=text, headers={"content-type": "application/json"}
    )
    assert response.status_code in (400, 422), response.text
    assert "error" in response.json()


async def test_a_camera_of_another_household_or_none_is_refused(home: Home) -> None:
    setting = {"record": False, "detect": False, "notify": False}
    for device in (home.other_camera, uuid.uuid4()):
        body = {"modes": {"away": {"cameras": {str(device): setting}}}}
        assert_error(await home.owner.put(home.url("/modes"), json=body), 400, "unknown_camera")
        snooze = {"device_id": str(device), "hours": 2, "scope": "me"}
        assert_error(
            await home.owner.post(home.url("/snoozes"), json=snooze), 400, "unknown_camera"
        )


@pytest.mark.parametrize(
    "body",
    [
        {"mode": "party"},
        {"mode": None},
        {"mode": "away", "extra": 1},
        {},
        {"mode": "AWAY"},
        {"mode": ["away"]},
    ],
)
async def test_malformed_mode_is_refused(home: Home, body: dict[str, Any]) -> None:
    response = await home.owner.put(home.url("/mode"), json=body)
    assert response.status_code in (400, 422), response.text
    assert (await home.owner.get(home.url("/mode"))).json()["mode"] == "home"


async def test_an_oversized_body_is_refused(home: Home) -> None:
    huge = {"modes": {"home": {"label": "x" * 2_000_000}}}
    response = await home.owner.put(home.url("/modes"), json=huge)
    assert response.status_code in (400, 413, 422), response.text


async def test_staff_are_refused_everything(factory: Factory, home: Home) -> None:
    admin = await factory.user(Role.operator_admin)
    agency = await factory.agency(admin)
    staff = [
        admin,
        await factory.user(Role.auditor),
        await factory.user(Role.legal_reviewer),
        await factory.user(Role.agency_officer, agency_id=agency),
    ]
    for person in staff:
        client = await factory.signed_in(person)
        assert_error(await client.get(home.url("/modes")), 403)
        assert_error(await client.get(home.url("/mode")), 403)
        assert_error(await client.put(home.url("/mode"), json={"mode": "away"}), 403)
        assert_error(await client.put(home.url("/mode-schedule"), json={"entries": []}), 403)
        snooze = {"device_id": None, "hours": 1, "scope": "me"}
        assert_error(await client.post(home.url("/snoozes"), json=snooze), 403)
        assert_error(await client.delete(home.url(f"/snoozes/{uuid.uuid4()}")), 403)
        await client.aclose()


async def test_another_household_is_refused(home: Home) -> None:
    for path in ("/modes", "/mode"):
        assert_error(await home.owner.get(home.url(path, home.other)), 403)
    assert_error(await home.owner.put(home.url("/mode", home.other), json={"mode": "away"}), 403)
    snooze = {"device_id": None, "hours": 1, "scope": "me"}
    assert_error(await home.owner.post(home.url("/snoozes", home.other), json=snooze), 403)
    # The camera's own token is not a person's either.


async def test_a_shared_member_snoozes_their_own_notifications_only(
    app: FastAPI, home: Home, clock: ManualClock
) -> None:
    mine = {"device_id": str(home.camera), "hours": 3, "scope": "me"}
    response = await home.shared.post(home.url("/snoozes"), json=mine)
    assert response.status_code == 201, response.text
    snooze = response.json()
    assert snooze["scope"] == "me"
    # The household's snooze is the owner's.
    household = {"device_id": None, "hours": 3, "scope": "household"}
    assert_error(await home.shared.post(home.url("/snoozes"), json=household), 403)
    owners = await home.owner.post(home.url("/snoozes"), json=household)
    assert owners.status_code == 201, owners.text
    # Each sees the household's and their own, not the other's own.
    shared_sees = (await home.shared.get(home.url("/mode"))).json()["snoozes"]
    owner_sees = (await home.owner.get(home.url("/mode"))).json()["snoozes"]
    assert {s["id"] for s in shared_sees} == {snooze["id"], owners.json()["id"]}
    assert {s["id"] for s in owner_sees} == {owners.json()["id"]}
    # Nobody ends another member's own snooze (not even an owner), and only an owner the
    # household's.
    assert_error(await home.owner.delete(home.url(f"/snoozes/{snooze['id']}")), 404)
    assert_error(await home.shared.delete(home.url(f"/snoozes/{owners.json()['id']}")), 403)
    assert_error(await home.stranger.delete(home.url(f"/snoozes/{snooze['id']}")), 403)
    assert (await home.shared.delete(home.url(f"/snoozes/{snooze['id']}"))).status_code == 204
    assert_error(await home.shared.delete(home.url(f"/snoozes/{snooze['id']}")), 404)  # replayed
    assert (await home.owner.delete(home.url(f"/snoozes/{owners.json()['id']}"))).status_code == 204
    tags = sorted((t, e["scope"]) for t, e in await audit_tags(app, home.id))
    assert tags == sorted([
        ("mode:snooze:create", "me"), ("mode:snooze:create", "household"),
        ("mode:snooze:end", "me"), ("mode:snooze:end", "household"),
    ])  # fmt: skip


@pytest.mark.parametrize(
    "body",
    [
        {"device_id": None, "hours": 0, "scope": "me"},
        {"device_id": None, "hours": 25, "scope": "me"},
        {"device_id": None, "hours": "3", "scope": "me"},
        {"device_id": None, "hours": 1.5, "scope": "me"},
        {"device_id": None, "hours": 3, "scope": "everyone"},
        {"device_id": "nope", "hours": 3, "scope": "me"},
        {"device_id": None, "hours": 3},
        {"device_id": None, "hours": 3, "scope": "me", "until": "2030-01-01"},
    ],
)
async def test_malformed_snoozes_are_refused(home: Home, body: dict[str, Any]) -> None:
    response = await home.shared.post(home.url("/snoozes"), json=body)
    assert response.status_code in (400, 422), response.text
    assert (await home.shared.get(home.url("/mode"))).json()["snoozes"] == []


async def test_a_snooze_of_someone_elses_household_is_not_found(home: Home) -> None:
    response = await home.stranger.post(
        f"/api/v1/households/{home.other}/snoozes", json={"hours": 1, "scope": "household"}
    )
    assert response.status_code == 201
    assert_error(await home.owner.delete(home.url(f"/snoozes/{response.json()['id']}")), 404)


# -- what notifies ------------------------------------------------------------------------


async def test_notifies_follows_the_mode_and_the_snoozes(
    app: FastAPI, home: Home, clock: ManualClock
) -> None:
    owner, shared, cam = home.owner_user.id, home.shared_user.id, home.camera

    async def notifies(user: uuid.UUID, *, kind: str | None = None) -> bool:
        async with app.state.sessionmaker() as db:
            return await service.notifies(db, home.id, cam, user, clock.now(), kind=kind)

    # Home: motion notifies nobody; a ring everybody.
    assert not await notifies(owner)
    assert await notifies(owner, kind="ring")
    await home.owner.put(home.url("/mode"), json={"mode": "away"})
    assert await notifies(owner) and await notifies(shared)
    # The shared member snoozes their own: only they are spared.
    await home.shared.post(home.url("/snoozes"), json={"hours": 2, "scope": "me"})
    assert await notifies(owner)
    assert not await notifies(shared)
    assert await notifies(shared, kind="ring")
    # The owner snoozes this camera for the household: nobody.
    await home.owner.post(
        home.url("/snoozes"), json={"device_id": str(cam), "hours": 1, "scope": "household"}
    )
    assert not await notifies(owner)
    # An hour later the household snooze is over; two hours later the member's too.
    clock.advance(timedelta(hours=1, seconds=1))
    assert await notifies(owner)
    assert not await notifies(shared)
    clock.advance(timedelta(hours=1))
    assert await notifies(shared)
    # A camera set not to notify in away.
    setting = {"record": True, "detect": True, "notify": False}
    await home.owner.put(
        home.url("/modes"), json={"modes": {"away": {"cameras": {str(cam): setting}}}}
    )
    assert not await notifies(owner)
