"""Attack (issue 16 item 2): a community request as an oracle for one home.

An agency draws a tiny box around one door, or an area it knows holds one or two homes,
and files a community request: if the request is accepted, or refused differently, it
learns whether that house has a camera. A community request now needs an area of at
least `community_min_square_miles` and reaches at least `community_min_households`
homes with cameras, or it is refused, the same way whether 0, 1 or 4 homes are inside."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from doorwarden.audit.tasks import run_append
from doorwarden.config import Settings
from tests.factories import Factory, assert_error, make_client
from tests.functional.legal.test_community_requests import (
    AREA,
    box,
    file_community,
    nothing_left,
)
from tests.legal_flow import Cast, cast, home

# About 2 m by 2 m around the door of the home where home() puts it.
DOOR = box(0.00003, 0.00002)
TOLD: dict[str, str] = {}  # the refusal's message as first read, for the next cases


def same(response: Any) -> tuple[int, Any]:
    """What the agency reads of a refusal, minus nothing."""
    return response.status_code, response.json()


async def homes(factory: Factory, n: int) -> None:
    for i in range(n):
        await home(factory, f"{i + 1} Inside Lane", clip_hours=())


@pytest.fixture
async def people(factory: Factory) -> AsyncIterator[Cast]:
    made = await cast(factory)
    yield made
    await made.close()


async def test_a_box_around_one_door_is_refused_the_same_with_or_without_a_camera(
    people: Cast, factory: Factory, app: FastAPI
) -> None:
    without = await file_community(people.officer_client, people.agency_id, area=DOOR)
    await homes(factory, 1)
    with_camera = await file_community(people.officer_client, people.agency_id, area=DOOR)
    assert_error(with_camera, 400, "area_too_small")
    assert same(without) == same(with_camera)
    await nothing_left(app)


@pytest.mark.parametrize("inside", [0, 1, 4])
async def test_an_area_with_fewer_than_the_minimum_of_homes_is_refused_alike(
    people: Cast, factory: Factory, app: FastAPI, inside: int
) -> None:
    await homes(factory, inside)
    refused = await file_community(people.officer_client, people.agency_id, case_number="CM-Q")
    error = assert_error(refused, 409, "too_few_households")
    assert error["details"] == {"min_households": 5}
    # Word for word the same whatever the number inside (0, 1 or 4).
    assert refused.json() == {
        "error": {
            "code": "too_few_households",
            "message": error["message"],
            "details": {"min_households": 5},
        }
    }
    assert str(inside) not in str(error["message"]).replace("5", "")
    await nothing_left(app)
    # And the agency's view of the refusal does not change with the number of homes.
    TOLD.setdefault("message", str(error["message"]))
    assert TOLD["message"] == str(error["message"])


async def test_an_area_with_the_minimum_of_homes_is_accepted(
    people: Cast, factory: Factory, app: FastAPI
) -> None:
    await homes(factory, 5)
    response = await file_community(people.officer_client, people.agency_id, area=AREA)
    assert response.status_code == 201, response.text
    # One public leaf per home told, but nothing in it per home: no household, no actor,
    # a notice id no other entry names. (Each home still checks its own: test_quiet_log_links.)
    await run_append(app.state.sessionmaker, app.state.log_signer)
    async with make_client(app) as anonymous:
        entries = (await anonymous.get("/api/v1/log/entries", params={"end": 1000})).json()
    leaves = [json.loads(e["leaf"]) for e in entries["entries"]]
    told = [leaf for leaf in leaves if leaf["tag"] == "legal:notice:deliver"]
    assert len(told) == 5
    others = json.dumps([leaf for leaf in leaves if not leaf["tag"].startswith("legal:")])
    for leaf in told:
        assert leaf["household"] is None and leaf["actor"] is None, leaf
        assert leaf["target"] not in others


def test_the_minimums_can_be_raised_but_not_lowered() -> None:
    base: dict[str, Any] = {"secret_key": "x" * 48}
    raised = Settings(**base, community_min_households=20, community_min_square_miles=0.1)
    assert (raised.community_min_households, raised.community_min_square_miles) == (20, 0.1)
    for lowered in ({"community_min_households": 4}, {"community_min_square_miles": 0.01}):
        with pytest.raises(ValidationError, match=next(iter(lowered))):
            Settings(**base, **lowered)
    # Only a development instance (the demo's street of three homes) may ask fewer homes.
    assert Settings(development=True, community_min_households=3).community_min_households == 3
