"""Issue 16 item 4: the coverage map's k-anonymity against households made to order.

An attacker with an ordinary account makes two households, pairs four cameras and puts
them in a cell where one real camera is withheld: five cameras of three households would
show the cell, and with it the real camera. The map now counts only households and
cameras that have been there for their time (coverage_min_age_days, a camera that has
delivered clips as long; coverage_move_days after a move), from a snapshot the scheduler
publishes, rounded (transparency/tasks.py)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import h3
import httpx
from fastapi import FastAPI

from doorwarden.accounts.models import User
from doorwarden.clock import ManualClock
from doorwarden.scheduler import run_now
from doorwarden.transparency.tasks import coverage_job
from tests.factories import Factory
from tests.sealed_clips import seal_clip, upload

API = "/api/v1/transparency/coverage"
RESOLUTION = 7
TARGET = h3.latlng_to_cell(53.7997, -1.5492, RESOLUTION)  # Leeds: the real camera's cell
ELSEWHERE = h3.latlng_to_cell(51.4545, -2.5879, RESOLUTION)  # Bristol


def spot(cell: str, i: int) -> tuple[float, float]:
    lat, lng = h3.cell_to_latlng(cell)
    point = (lat + 0.0003 * (i % 3), lng + 0.0003 * (i // 3))
    assert h3.latlng_to_cell(*point, RESOLUTION) == cell
    return point


async def refresh(app: FastAPI) -> None:
    """The scheduler's turn of the coverage job (it runs on its interval in the server)."""
    job = coverage_job(app.state.settings, app.state.clock.now, 0)
    await run_now(app.state.sessionmaker, job)


async def cells(app: FastAPI, client: httpx.AsyncClient) -> dict[str, int]:
    await refresh(app)
    response = await client.get(API)
    assert response.status_code == 200, response.text
    return {
        f["properties"]["cell"]: f["properties"]["cameras"] for f in response.json()["features"]
    }


async def household_at(
    owner: User, browser: httpx.AsyncClient, where: tuple[float, float], name: str
) -> uuid.UUID:
    """A household made through the API, as any signed-up account may."""
    made = await browser.post(
        "/api/v1/households",
        json={"name": name, "latitude": where[0], "longitude": where[1]},
    )
    assert made.status_code == 201, made.text
    return uuid.UUID(made.json()["id"])


async def cameras_delivering(
    factory: Factory, owner: User, household_id: uuid.UUID, n: int
) -> None:
    """n cameras paired through the pairing-code flow, each delivering a clip."""
    for i in range(n):
        camera = await factory.camera(owner, household_id, f"Camera {i}")
        sealed = seal_clip(camera.id, camera.key, camera.recipients, 0, size=10_000)
        done = await upload(camera.client, sealed)
        assert done.status_code in (200, 201), done.text


async def move(
    browser: httpx.AsyncClient, household_id: uuid.UUID, to: tuple[float, float]
) -> None:
    moved = await browser.patch(
        f"/api/v1/households/{household_id}", json={"latitude": to[0], "longitude": to[1]}
    )
    assert moved.status_code == 200, moved.text


async def test_sybil_households_do_not_reveal_a_withheld_camera(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, clock: ManualClock
) -> None:
    # The real home: one camera in Leeds, there for months; withheld (one camera).
    resident = await factory.user()
    as_resident = await factory.signed_in(resident)
    real = await household_at(resident, as_resident, spot(TARGET, 0), "Real home")
    await cameras_delivering(factory, resident, real, 1)
    # The attacker, an open sign-up account, also keeps two households in Bristol, with
    # two cameras each, for months.
    attacker = await factory.user()
    as_attacker = await factory.signed_in(attacker)
    aged = [
        await household_at(attacker, as_attacker, spot(ELSEWHERE, i), f"Old {i}") for i in range(2)
    ]
    for sybil in aged:
        await cameras_delivering(factory, attacker, sybil, 2)
    clock.advance(timedelta(days=90))
    assert await cells(app, client) == {}  # Bristol: 4 cameras; Leeds: 1

    # New households, two cameras each, right in the real camera's cell: five cameras of
    # three households there. The cell stays withheld.
    as_attacker = await factory.signed_in(attacker)  # a session lasts less than 90 days
    fresh = [
        await household_at(attacker, as_attacker, spot(TARGET, i + 1), f"Sybil {i}")
        for i in range(2)
    ]
    for sybil in fresh:
        await cameras_delivering(factory, attacker, sybil, 2)
    assert await cells(app, client) == {}
    # The old ones moved in beside it (nine cameras of five households): still withheld,
    # and nowhere else meanwhile; a day short of the cooling-off, the same.
    for i, sybil in enumerate(aged, start=3):
        await move(as_attacker, sybil, spot(TARGET, i))
    assert await cells(app, client) == {}
    clock.advance(timedelta(days=29))
    assert await cells(app, client) == {}
    response = await client.get(API)
    # Every camera is in the totals, none in a place, and the figures are rounded.
    assert response.json()["totals"]["cameras_counted"] == 10
    assert response.json()["totals"]["cameras_shown"] == 0


async def test_a_real_household_counts_after_its_time(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, clock: ManualClock
) -> None:
    owner = await factory.user()
    browser = await factory.signed_in(owner)
    for i in range(3):
        home = await household_at(owner, browser, spot(TARGET, i), f"Home {i}")
        await cameras_delivering(factory, owner, home, 2)
    assert await cells(app, client) == {}  # six cameras of three homes, all new
    clock.advance(timedelta(days=29))
    assert await cells(app, client) == {}
    clock.advance(timedelta(days=2))
    assert await cells(app, client) == {TARGET: 5}  # six, published rounded to fives
