"""Camera settings from the web (docs/camera-settings.md): the owner reads, changes and
resets them; nobody else does; versions, validation, limits and privacy-zone audits. On
the app in process (no agent connected here: changes wait for it); the control
connection is tests/functional/devices/test_camera_settings_link.py's."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from doorwarden.accounts.models import User
from doorwarden.crypto.keys import RecipientKey, SigningKey, b64d, b64e
from doorwarden.households.service import memberships
from doorwarden.roles import Role
from tests.factories import Factory, assert_error, make_client

pytestmark = pytest.mark.db
SQUARE = [[0.1, 0.1], [0.4, 0.1], [0.4, 0.4], [0.1, 0.4]]
BIG = [[0.0, 0.0], [0.6, 0.0], [0.6, 0.6], [0.0, 0.6]]
SMALL = [[0.1, 0.1], [0.2, 0.1], [0.2, 0.2], [0.1, 0.2]]


class Home:
    def __init__(self, factory: Factory, owner: User, household: uuid.UUID, device: uuid.UUID):
        self.factory, self.owner, self.household, self.device = factory, owner, household, device

    def path(self, camera: str = "front", *, household: uuid.UUID | None = None) -> str:
        return (
            f"/api/v1/households/{household or self.household}/devices/{self.device}"
            f"/cameras/{camera}/settings"
        )


@pytest.fixture
async def home(factory: Factory) -> Home:
    owner = await factory.user()
    household = await factory.household(owner)
    camera = await factory.camera(owner, household)
    await camera.client.aclose()
    return Home(factory, owner, household, camera.id)


async def put(c: httpx.AsyncClient, path: str, version: int, settings: Any) -> httpx.Response:
    return await c.put(path, json={"version": version, "settings": settings})


async def audit_tags(c: httpx.AsyncClient, household: uuid.UUID) -> list[dict[str, Any]]:
    response = await c.get(f"/api/v1/households/{household}/audit-events")
    assert response.status_code == 200, response.text
    return [e for e in response.json() if e["tag"].startswith("camera:")]


async def tags_by_version(c: httpx.AsyncClient, household: uuid.UUID) -> dict[int, set[str]]:
    """The camera events by the version they record (one clock: no order by time)."""
    out: dict[int, set[str]] = {}
    for event in await audit_tags(c, household):
        out.setdefault(event["extra"]["version"], set()).add(event["tag"])
    return out


async def test_the_owner_reads_changes_and_resets_a_cameras_settings(home: Home) -> None:
    owner = await home.factory.signed_in(home.owner)
    empty = await owner.get(home.path())
    assert empty.status_code == 200, empty.text
    body = empty.json()
    assert (body["version"], body["settings"], body["applied"], body["connected"]) == (
        0, {}, None, False,
    )  # fmt: skip
    assert body["fields"]["privacy_zones"]["title"] == "Privacy zones"
    assert set(body["fields"]) >= {"motion.zones", "motion.sensitivity", "notify.labels"}

    change = {"privacy_zones": [SQUARE], "motion.sensitivity": 0.7, "notify.labels": ["ring"]}
    changed = await put(owner, home.path(), 0, change)
    assert changed.status_code == 200, changed.text
    assert changed.json()["version"] == 1
    assert changed.json()["settings"] == change
    again = await owner.get(home.path())
    assert again.json()["settings"] == change and again.json()["version"] == 1

    # Only what is sent stays set: a field left out goes back to the file.
    second = await put(owner, home.path(), 1, {"privacy_zones": [BIG]})
    assert second.json()["settings"] == {"privacy_zones": [BIG]}
    reset = await owner.delete(home.path())
    assert reset.status_code == 200, reset.text
    assert (reset.json()["version"], reset.json()["settings"]) == (3, {})
    by_version = await tags_by_version(owner, home.household)
    assert by_version == {
        1: {"camera:settings:update"},
        2: {"camera:settings:update"},  # SQUARE -> BIG: grown, not reduced
        # The reset dropped a web zone (the file's are not known here): told.
        3: {"camera:settings:update", "camera:privacy:reduce"},
    }
    events = await audit_tags(owner, home.household)
    fields = {e["extra"]["version"]: e["extra"]["fields"] for e in events if "fields" in e["extra"]}
    assert fields == {
        1: ["privacy_zones", "motion.sensitivity", "notify.labels"],
        2: ["privacy_zones", "motion.sensitivity", "notify.labels"],
        3: ["privacy_zones"],
    }
    await owner.aclose()


async def test_shrinking_or_removing_a_privacy_zone_is_audited_growing_it_is_not(
    home: Home,
) -> None:
    owner = await home.factory.signed_in(home.owner)
    strip = [[0.4, 0.0], [0.6, 0.0], [0.6, 0.6], [0.4, 0.6]]
    steps = [
        [SQUARE],  # 1: a first zone: nothing reduced
        [BIG],  # 2: grown to cover it
        [BIG, SMALL],  # 3: another added
        [SQUARE, strip],  # 4: BIG split, a part of it dropped: reduced
        [BIG],  # 5: merged back, covering both
        [[[0.6, 0.6], [0.0, 0.6], [0.0, 0.0], [0.6, 0.0]]],  # 6: BIG redrawn backwards
        [],  # 7: all removed: reduced
    ]
    for version, zones in enumerate(steps):
        response = await put(owner, home.path(), version, {"privacy_zones": zones})
        assert response.status_code == 200, response.text
    reduced = {
        v for v, tags in (await tags_by_version(owner, home.household)).items()
        if "camera:privacy:reduce" in tags
    }  # fmt: skip
    assert reduced == {4, 7}
    events = await audit_tags(owner, home.household)
    (last,) = [
        e for e in events if e["tag"] == "camera:privacy:reduce" and e["extra"]["version"] == 7
    ]
    assert last["target_id"] == str(home.device)
    assert (last["extra"]["zones_before"], last["extra"]["zones_after"]) == (1, 0)
    await owner.aclose()


async def test_a_change_naming_an_old_version_is_refused(home: Home) -> None:
    owner = await home.factory.signed_in(home.owner)
    assert (await put(owner, home.path(), 0, {"motion.sensitivity": 0.5})).status_code == 200
    stale = await put(owner, home.path(), 0, {"motion.sensitivity": 0.9})
    error = assert_error(stale, 409, "version_conflict")
    assert error["details"]["version"] == 1
    ahead = await put(owner, home.path(), 7, {"motion.sensitivity": 0.9})
    assert_error(ahead, 409, "version_conflict")
    reset_stale = await owner.delete(home.path(), params={"version": 0})
    assert_error(reset_stale, 409, "version_conflict")
    assert (await owner.get(home.path())).json()["settings"] == {"motion.sensitivity": 0.5}
    await owner.aclose()


async def test_concurrent_changes_naming_the_same_version_one_wins(home: Home) -> None:
    owner = await home.factory.signed_in(home.owner)
    for version in (0, 1):  # the first change (an insert) and a later one (an update)
        answers = await asyncio.gather(
            *(put(owner, home.path(), version, {"motion.sensitivity": i / 10}) for i in range(4))
        )
        codes = sorted(r.status_code for r in answers)
        assert codes == [200, 409, 409, 409], [r.text for r in answers]
        winner = next(r for r in answers if r.status_code == 200).json()
        assert winner["version"] == version + 1
        assert (await owner.get(home.path())).json()["settings"] == winner["settings"]
    await owner.aclose()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"privacy_zones": [[[0.1, 0.1], [0.2, 0.2]]]}, "privacy_zones.0"),  # two points
        ({"privacy_zones": [[[0.1, 0.1], [0.2, 1.5], [0.3, 0.1]]]}, "privacy_zones.0.1.1"),
        ({"motion.zones": [[[0.1, 0.1], [0.2, "x"], [0.3, 0.1]]]}, "motion.zones.0.1.1"),
        ({"motion.sensitivity": 2}, "motion.sensitivity"),
        ({"notify.labels": ["doorbell"]}, "notify.labels.0"),
        ({"motion.colour": "red"}, "motion.colour"),  # an unknown field
        ({"privacy_zones": [SQUARE] * 17}, "privacy_zones"),  # too many
    ],
)
async def test_a_wrong_field_is_refused_and_named(
    home: Home, overrides: dict[str, Any], field: str
) -> None:
    owner = await home.factory.signed_in(home.owner)
    response = await put(owner, home.path(), 0, overrides)
    error = assert_error(response, 422, "invalid_input")
    assert error["details"] == {"field": field}
    assert (await owner.get(home.path())).json()["version"] == 0
    await owner.aclose()


async def test_bodies_of_the_wrong_shape_or_size_are_refused(home: Home) -> None:
    owner = await home.factory.signed_in(home.owner)
    path = home.path()
    extra = await owner.put(path, json={"version": 0, "settings": {}, "force": True})
    assert_error(extra, 422, "validation_error")
    as_text = await owner.put(path, json={"version": "0", "settings": {}})
    assert_error(as_text, 422, "validation_error")
    not_json = await owner.put(path, content=b"{nope", headers={"content-type": "application/json"})
    assert_error(not_json, 422)
    huge = b'{"version": 0, "settings": {"motion.zones": [' + b"[0.5, 0.5]," * 40_000 + b"]}}"
    too_big = await owner.put(path, content=huge, headers={"content-type": "application/json"})
    assert_error(too_big, 413, "payload_too_large")
    deep = b'{"version": 0, "settings": {"x": ' + b"[" * 500 + b"]" * 500 + b"}}"
    assert (await owner.put(path, content=deep)).status_code in (400, 422)
    # The largest valid settings, every digit a float has, fit (rounded when stored).
    polygon = [[0.123456789012345 + i / 1000, 0.98765432109876 - i / 1000] for i in range(64)]
    biggest = {name: [polygon] * 16 for name in ("motion.zones", "motion.ignore", "privacy_zones")}
    response = await put(owner, path, 0, biggest)
    assert response.status_code == 200, response.text[:300]
    stored = response.json()["settings"]["privacy_zones"][0][0]
    assert stored == [round(polygon[0][0], 6), round(polygon[0][1], 6)]
    await owner.aclose()


async def test_nobody_but_the_owner_reads_changes_or_snapshots(
    app: FastAPI, factory: Factory, home: Home
) -> None:
    shared = await factory.user()
    await factory.share(home.household, home.owner, shared)
    neighbour = await factory.user()
    await factory.household(neighbour, "Next door")
    admin = await factory.user(Role.operator_admin)
    agency = await factory.agency_in_good_standing(admin)
    people = [
        await factory.signed_in(shared),
        await factory.signed_in(neighbour),
        await factory.signed_in(admin),
        await factory.signed_in(await factory.user(Role.legal_reviewer)),
        await factory.signed_in(await factory.user(Role.auditor)),
        await factory.signed_in(await factory.user(Role.agency_officer, agency_id=agency)),
    ]
    owner = await factory.signed_in(home.owner)
    assert (await put(owner, home.path(), 0, {"privacy_zones": [SQUARE]})).status_code == 200
    snapshot = home.path().removesuffix("/settings") + "/snapshot"
    for who in people:
        assert_error(await who.get(home.path()), 403, "forbidden")
        assert_error(await put(who, home.path(), 1, {"privacy_zones": []}), 403, "forbidden")
        assert_error(await who.delete(home.path()), 403, "forbidden")
        assert_error(await who.post(snapshot), 403, "forbidden")
    anonymous = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")
    assert_error(await anonymous.get(home.path()), 401, "not_authenticated")
    # The neighbour's own household, with this household's camera in the path: unknown.
    async with factory.app.state.sessionmaker() as db:
        (their_home,) = (await memberships(db, neighbour.id)).keys()
    assert_error(await people[1].get(home.path(household=their_home)), 404)
    assert_error(await put(people[1], home.path(household=their_home), 1, {}), 404)
    # Nothing changed.
    body = (await owner.get(home.path())).json()
    assert (body["version"], body["settings"]) == (1, {"privacy_zones": [SQUARE]})
    for c in (*people, owner, anonymous):
        await c.aclose()


async def test_a_snapshot_needs_the_camera_connected_here(home: Home) -> None:
    owner = await home.factory.signed_in(home.owner)
    snapshot = home.path().removesuffix("/settings") + "/snapshot"
    assert_error(await owner.post(snapshot), 409, "camera_offline")
    await owner.aclose()


async def test_an_end_to_end_household_gets_no_snapshot(home: Home) -> None:
    owner = await home.factory.signed_in(home.owner)
    key = await owner.put(
        "/api/v1/account/e2e-key", json={"public_key": b64e(RecipientKey.generate().public)}
    )
    assert key.status_code == 200, key.text
    switched = await owner.put(
        f"/api/v1/households/{home.household}/encryption", json={"mode": "e2e"}
    )
    assert switched.status_code == 200, switched.text
    snapshot = home.path().removesuffix("/settings") + "/snapshot"
    refused = assert_error(await owner.post(snapshot), 409, "conflict")
    assert "end-to-end" in str(refused["message"])
    await owner.aclose()


async def test_the_pairing_and_the_cameras_state_carry_the_settings_key(
    app: FastAPI, factory: Factory
) -> None:
    owner = await factory.user()
    household = await factory.household(owner)
    me = await factory.signed_in(owner)
    code = (await me.post(f"/api/v1/households/{household}/pairing-codes")).json()["code"]
    key = SigningKey.generate()
    camera = make_client(app, "203.0.113.50")
    paired = await camera.post(
        "/api/v1/devices/pair", json={"code": code, "name": "Porch", "public_key": b64e(key.public)}
    )
    assert paired.status_code == 201, paired.text
    expected = b64e(app.state.log_signer.key.public)
    assert paired.json()["settings_key"] == expected
    camera.headers["authorization"] = f"Bearer {paired.json()['token']}"
    state = await camera.get("/api/v1/device")
    assert state.status_code == 200 and state.json()["settings_key"] == expected
    assert len(b64d(expected, what="key", length=32)) == 32
    await camera.aclose()
    await me.aclose()
