"""A member's notification rules: defaults, saving, validation, and who may touch them."""

from __future__ import annotations

import uuid

import pytest
from fastapi import FastAPI

from doorwarden.roles import Role
from tests.factories import Factory, assert_error, make_client

DEFAULTS = {
    "cameras": None,
    "kinds": ["ring", "person", "integrity_alert", "legal_notice"],
    "quiet_hours": None,
    "cooldown_s": 60,
    "email": False,
    "saved": False,
}


def url(household_id: uuid.UUID) -> str:
    return f"/api/v1/households/{household_id}/notification-rules"


async def test_defaults_then_saved_rules_each_members_own(factory: Factory) -> None:
    owner, shared = await factory.user(), await factory.user()
    home = await factory.household(owner)
    await factory.share(home, owner, shared)
    camera = await factory.camera(owner, home)
    me, them = await factory.signed_in(owner), await factory.signed_in(shared)
    assert (await me.get(url(home))).json() == DEFAULTS
    rules = {
        "cameras": [str(camera.id)],
        "kinds": ["motion", "ring"],
        "quiet_hours": {"start": "22:30", "end": "07:00"},
        "cooldown_s": 0,
        "email": True,
    }
    saved = await me.put(url(home), json=rules)
    assert saved.status_code == 200, saved.text
    assert saved.json() == {**rules, "kinds": ["ring", "motion"], "saved": True}
    assert (await me.get(url(home))).json() == saved.json()
    # The shared member's rules are their own: still the defaults.
    assert (await them.get(url(home))).json() == DEFAULTS
    # Back to every camera, no quiet hours; an API token may do it too.
    token = await factory.with_token(owner)
    again = await token.put(url(home), json={"cameras": None, "kinds": [], "cooldown_s": 86400})
    assert again.status_code == 200, again.text
    assert again.json() == {
        "cameras": None,
        "kinds": [],
        "quiet_hours": None,
        "cooldown_s": 86400,
        "email": False,
        "saved": True,
    }
    for client in (me, them, token):
        await client.aclose()


async def test_a_camera_must_be_one_of_this_households(factory: Factory) -> None:
    owner, other = await factory.user(), await factory.user()
    home, elsewhere = await factory.household(owner), await factory.household(other, "B")
    theirs = await factory.camera(other, elsewhere)
    mine = await factory.camera(owner, home)
    me = await factory.signed_in(owner)
    for cameras in ([str(theirs.id)], [str(mine.id), str(uuid.uuid4())]):
        refused = await me.put(url(home), json={"cameras": cameras, "kinds": ["ring"]})
        error = assert_error(refused, 422, "unknown_camera")
        assert error["details"] == {"cameras": [c for c in cameras if c != str(mine.id)]}
    # A removed camera is no longer one to choose.
    removed = await me.delete(f"/api/v1/households/{home}/devices/{mine.id}")
    assert removed.status_code in (200, 204), removed.text
    assert_error(
        await me.put(url(home), json={"cameras": [str(mine.id)], "kinds": ["ring"]}),
        422,
        "unknown_camera",
    )
    assert (await me.get(url(home))).json()["saved"] is False  # nothing was saved
    await me.aclose()


@pytest.mark.parametrize(
    "body",
    [
        {},  # kinds is required
        {"kinds": ["ring", "doorknock"]},
        {"kinds": ["ring", "ring"]},
        {"kinds": "ring"},
        {"kinds": ["ring"], "cameras": ["not-a-uuid"]},
        {"kinds": ["ring"], "cameras": [str(uuid.uuid4())] * 2},
        {"kinds": ["ring"], "cameras": [str(uuid.uuid4()) for _ in range(101)]},
        {"kinds": ["ring"], "quiet_hours": {"start": "25:00", "end": "07:00"}},
        {"kinds": ["ring"], "quiet_hours": {"start": "7:00", "end": "08:00"}},
        {"kinds": ["ring"], "quiet_hours": {"start": "07:00", "end": "07:00"}},
        {"kinds": ["ring"], "quiet_hours": {"start": "07:00"}},
        {"kinds": ["ring"], "quiet_hours": {"start": "07:00", "end": "08:00", "x": 1}},
        {"kinds": ["ring"], "cooldown_s": -1},
        {"kinds": ["ring"], "cooldown_s": 86401},
        {"kinds": ["ring"], "cooldown_s": 1.5},
        {"kinds": ["ring"], "email": "yes please"},
        {"kinds": ["ring"], "household_id": str(uuid.uuid4())},
    ],
)
async def test_malformed_rules_are_refused(factory: Factory, body: dict[str, object]) -> None:
    owner = await factory.user()
    home = await factory.household(owner)
    me = await factory.signed_in(owner)
    assert_error(await me.put(url(home), json=body), 422)
    assert (await me.get(url(home))).json() == DEFAULTS
    await me.aclose()


async def test_oversized_and_non_json_bodies_are_refused(factory: Factory) -> None:
    owner = await factory.user()
    home = await factory.household(owner)
    me = await factory.signed_in(owner)
    huge = await me.put(
        url(home),
        content=b'{"kinds": ["ring"], "pad": "' + b"x" * 2_000_000 + b'"}',
        headers={"content-type": "application/json"},
    )
    assert huge.status_code in (413, 422), huge.text
    garbage = await me.put(
        url(home), content=b"\xff{", headers={"content-type": "application/json"}
    )
    assert garbage.status_code in (400, 422), garbage.text
    assert (await me.get(url(home))).json() == DEFAULTS
    await me.aclose()


async def test_only_members_reach_their_rules(app: FastAPI, factory: Factory) -> None:
    owner, stranger = await factory.user(), await factory.user()
    home = await factory.household(owner)
    await factory.household(stranger, "Theirs")
    admin = await factory.user(Role.operator_admin)
    agency = await factory.agency(admin)
    people = [
        stranger,
        admin,
        await factory.user(Role.auditor),
        await factory.user(Role.legal_reviewer),
        await factory.user(Role.agency_officer, agency_id=agency),
    ]
    body = {"kinds": ["ring"], "email": True}
    for person in people:
        client = await factory.signed_in(person)
        assert_error(await client.get(url(home)), 403, "forbidden")
        assert_error(await client.put(url(home), json=body), 403, "forbidden")
        await client.aclose()
    anonymous = make_client(app)
    assert_error(await anonymous.get(url(home)), 401)
    await anonymous.aclose()
    me = await factory.signed_in(owner)
    assert (await me.get(url(home))).json() == DEFAULTS  # nobody else changed them
    # A replayed PUT is the same rules, not a second row.
    for _ in range(2):
        assert (await me.put(url(home), json=body)).status_code == 200
    assert (await me.get(url(home))).json()["email"] is True
    await me.aclose()
