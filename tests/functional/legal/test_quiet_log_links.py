"""Attack (issue 16 item 3): joining the public log's quiet entries back to a household.

A share with an agency, or an enrolment in an agency's camera programme, says in public
that it happened and for which agency, but not for which household. If its actor (the
resident) or its camera stayed public, an agency could join it with the non-quiet
entries of the same actor or camera (`device:pair`, `clip:receive`, a login) and so name
the household. Nor does the agency's own list of shared clips name the camera."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI

from doorwarden.audit.tasks import run_append
from doorwarden.config import Settings
from doorwarden.roles import Role
from tests.factories import Factory, make_client
from tests.functional.legal.test_community_requests import (
    clip_ids,
    filed,
    share,
)
from tests.legal_flow import Cast, cast, home

QUIET = ("legal:", "clip:share", "governance:programme:")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Two homes are enough here (the floor of 5 is tested in test_community_oracle.py)."""
    return settings.model_copy(update={"community_min_households": 0})


@pytest.fixture
async def people(factory: Factory) -> AsyncIterator[Cast]:
    made = await cast(factory)
    yield made
    await made.close()


async def test_the_public_log_gives_no_way_to_join_a_share_to_a_pairing(
    people: Cast, factory: Factory, app: FastAPI
) -> None:
    sharer = await home(factory, "1 Sharing Lane", clip_hours=(10.0,))
    await home(factory, "2 Other Lane", clip_hours=(10.0,))
    rid = await filed(people.officer_client, people.agency_id)
    assert (await share(sharer, rid, list((await clip_ids(sharer)).values()))).status_code == 200
    await run_append(app.state.sessionmaker, app.state.log_signer)
    async with make_client(app) as anonymous:
        entries = (await anonymous.get("/api/v1/log/entries", params={"end": 1000})).json()
    leaves = [json.loads(e["leaf"]) for e in entries["entries"]]
    quiet = [leaf for leaf in leaves if leaf["tag"].startswith(QUIET)]
    loud = [leaf for leaf in leaves if not leaf["tag"].startswith(QUIET)]
    shares = [leaf for leaf in quiet if leaf["tag"] == "clip:share"]
    assert shares
    # Every identifier a non-quiet entry names: actors, households, targets.
    named = {leaf[k] for leaf in loud for k in ("actor", "household", "target")} - {None}
    assert str(sharer.owner.id) in named and str(sharer.camera.id) in named  # the join key
    for leaf in quiet:
        joinable = {leaf[k] for k in ("actor", "household", "target")} & named
        assert not joinable, (leaf["tag"], joinable)
    assert all(leaf["v"] == 3 for leaf in leaves)

    # The sharer still checks its own share entries: the actor is committed to privately.
    own = await sharer.client.get(f"/api/v1/households/{sharer.household_id}/log-entries")
    assert own.status_code == 200, own.text
    mine = [e for e in own.json() if json.loads(e["leaf"])["tag"] == "clip:share"]
    assert mine
    for entry in mine:
        digest = hashlib.sha256(bytes.fromhex(entry["salt"]) + entry["private"].encode())
        assert digest.hexdigest() == json.loads(entry["leaf"])["commitment"]
        private = json.loads(entry["private"])
        assert private["actor"] == str(sharer.owner.id)
        assert private["household"] == str(sharer.household_id)


async def test_the_agency_is_not_told_which_camera_a_shared_clip_came_from(
    people: Cast, factory: Factory
) -> None:
    sharer = await home(factory, "1 Sharing Lane", clip_hours=(10.0,))
    rid = await filed(people.officer_client, people.agency_id)
    assert (await share(sharer, rid, list((await clip_ids(sharer)).values()))).status_code == 200
    url = f"/api/v1/agencies/{people.agency_id}/requests/{rid}/shares"
    response = await people.officer_client.get(url)
    assert response.status_code == 200, response.text
    [clip] = response.json()
    assert "device_id" not in clip
    assert str(sharer.camera.id) not in response.text


async def test_auditors_cannot_join_a_share_to_the_sharer_either(
    people: Cast, factory: Factory
) -> None:
    """The instance's trail hides a share's household and clip from operators and
    auditors; its actor (the resident) and where they acted from would name it again."""
    sharer = await home(factory, "1 Sharing Lane", clip_hours=(10.0,))
    rid = await filed(people.officer_client, people.agency_id)
    assert (await share(sharer, rid, list((await clip_ids(sharer)).values()))).status_code == 200
    auditor = await factory.signed_in(await factory.user(Role.auditor))
    response = await auditor.get("/api/v1/audit/events", params={"limit": 500})
    await auditor.aclose()
    assert response.status_code == 200, response.text
    [shared] = [e for e in response.json() if e["tag"] == "clip:share"]
    assert shared["actor_user_id"] is None and shared["household_id"] is None
    assert shared["client_address"] is None and shared["user_agent"] is None
    assert str(sharer.owner.id) not in json.dumps(shared)
