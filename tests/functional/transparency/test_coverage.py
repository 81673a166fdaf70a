"""The public coverage map (transparency/coverage.py): cameras per H3 cell on the real app,
with real paired cameras, small cells withheld, and nothing that locates a household.

The homes here have stood long enough to count (`settle`), and each read publishes the
snapshot first, as the scheduler does on its interval (transparency/tasks.py); the
households made to order are tests/functional/transparency/test_coverage_sybil.py's."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import h3
import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy import update

from doorwarden.accounts.models import User
from doorwarden.clips.models import Clip
from doorwarden.clock import ManualClock
from doorwarden.config import Settings
from doorwarden.devices.models import Device
from doorwarden.households.models import Household
from doorwarden.main import create_app
from doorwarden.middleware import SECURITY_HEADERS
from doorwarden.scheduler import run_now
from doorwarden.transparency.coverage import ring, summarise
from doorwarden.transparency.models import CoveragePlace
from doorwarden.transparency.tasks import coverage_job
from doorwarden.web.forms import tile_origin
from tests.factories import Camera, Factory, make_client
from tests.sealed_clips import seal_clip, upload

API = "/api/v1/transparency/coverage"
PAGE = "/transparency/coverage"
RESOLUTION = 7  # the default
# Three places far apart, each a resolution-7 cell: its centre and two spots in it.
BRISTOL = h3.latlng_to_cell(51.4545, -2.5879, RESOLUTION)
LEEDS = h3.latlng_to_cell(53.7997, -1.5492, RESOLUTION)
YORK = h3.latlng_to_cell(53.9590, -1.0815, RESOLUTION)


def spots(cell: str) -> list[tuple[float, float]]:
    """Distinct points inside `cell` (about 30 m apart), as household locations."""
    lat, lng = h3.cell_to_latlng(cell)
    points = [(lat, lng), (lat + 0.0003, lng), (lat, lng + 0.0003), (lat - 0.0003, lng)]
    assert all(h3.latlng_to_cell(a, b, RESOLUTION) == cell for a, b in points)
    return points


@dataclass
class Home:
    id: uuid.UUID
    location: tuple[float, float] | None
    cameras: list[Camera]


async def home(
    factory: Factory, owner: User, location: tuple[float, float] | None, cameras: int
) -> Home:
    household_id = await factory.household(owner)
    # The factory puts every household at one place; each test sets its own.
    lat, lng = location if location is not None else (None, None)
    async with factory.app.state.sessionmaker.begin() as db:
        await db.execute(
            update(Household)
            .where(Household.id == household_id)
            .values(latitude=lat, longitude=lng)
        )
    paired = [await factory.camera(owner, household_id, f"Camera {i}") for i in range(cameras)]
    for camera in paired:
        sealed = seal_clip(camera.id, camera.key, camera.recipients, 0, size=10_000)
        assert (await upload(camera.client, sealed)).status_code in (200, 201)
    await settle(factory.app, household_id, lat, lng)
    return Home(household_id, location, paired)


SETTLED = timedelta(days=365)


async def settle(
    app: FastAPI, household_id: uuid.UUID, lat: float | None, lng: float | None
) -> None:
    """The household, its cameras and their first clips as if a year old, and at its
    location for as long: a home that counts (coverage_min_age_days, coverage_move_days)."""
    then = app.state.clock.now() - SETTLED
    async with app.state.sessionmaker.begin() as db:
        await db.execute(
            update(Household).where(Household.id == household_id).values(created_at=then)
        )
        await db.execute(
            update(Device).where(Device.household_id == household_id).values(created_at=then)
        )
        await db.execute(
            update(Clip).where(Clip.household_id == household_id).values(verified_at=then)
        )
        await db.merge(
            CoveragePlace(household_id=household_id, latitude=lat, longitude=lng, since=then)
        )


async def publish(app: FastAPI) -> None:
    """The scheduler's turn of the coverage job."""
    await run_now(app.state.sessionmaker, coverage_job(app.state.settings, app.state.clock.now, 0))


async def coverage(
    client: httpx.AsyncClient, query: str = "", *, published: bool = True
) -> dict[str, object]:
    if published:
        transport = client._transport
        assert isinstance(transport, httpx.ASGITransport)
        await publish(transport.app)  # type: ignore[arg-type]
    response = await client.get(API + query)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def cells_of(body: dict[str, object]) -> dict[str, int]:
    features = body["features"]
    assert isinstance(features, list)
    return {f["properties"]["cell"]: f["properties"]["cameras"] for f in features}


@pytest.fixture
async def owner(factory: Factory) -> User:
    return await factory.user()


@pytest.fixture
async def town(factory: Factory, owner: User) -> list[Home]:
    """Bristol: 5 cameras of 3 homes (shown). Leeds: 6 cameras of only 2 homes (withheld).
    York: 1 camera (withheld). One home with no location (on no map)."""
    bristol, leeds, york = spots(BRISTOL), spots(LEEDS), spots(YORK)
    return [
        await home(factory, owner, bristol[0], 2),
        await home(factory, owner, bristol[1], 2),
        await home(factory, owner, bristol[2], 1),
        await home(factory, owner, leeds[0], 3),
        await home(factory, owner, leeds[1], 3),
        await home(factory, owner, york[0], 1),
        await home(factory, owner, None, 1),
    ]


async def test_cameras_are_counted_per_cell_and_small_cells_withheld(
    client: httpx.AsyncClient, town: list[Home]
) -> None:
    body = await coverage(client)
    assert body["type"] == "FeatureCollection"
    assert cells_of(body) == {BRISTOL: 5}
    # Every figure rounded to coverage_round_to (5): 7 withheld, 1 with no place.
    assert body["totals"] == {
        "cameras_counted": 10,
        "cameras_shown": 5,
        "cameras_suppressed": 5,  # Leeds (two homes only) and York (one camera): 7
        "cameras_unlocated": 0,  # 1
        "cells_shown": 1,
        "cells_suppressed": 2,
    }
    assert (body["resolution"], body["min_cameras"], body["min_households"]) == (7, 5, 3)
    assert math.isclose(body["cell_area_km2"], 5.1613, abs_tol=0.001)
    assert body["programmes"] == []  # no camera programme on record here
    (feature,) = body["features"]  # type: ignore[misc]
    assert feature["id"] == BRISTOL
    assert feature["geometry"]["type"] == "Polygon"
    (outline,) = feature["geometry"]["coordinates"]
    assert outline[0] == outline[-1] and len(outline) == 7  # a closed hexagon
    assert [tuple(p) for p in outline] == ring(BRISTOL)
    lat, lng = h3.cell_to_latlng(BRISTOL)
    assert h3.latlng_to_cell(lat, lng, RESOLUTION) == BRISTOL  # [lng, lat] order, as GeoJSON


async def test_nothing_locates_a_household_or_a_camera(
    client: httpx.AsyncClient, town: list[Home]
) -> None:
    text = (await client.get(API)).text + (await client.get(PAGE)).text
    for place in town:
        assert str(place.id) not in text
        assert all(str(c.id) not in text for c in place.cameras)
        if place.location is not None:
            for value in place.location:
                assert f"{value:.4f}" not in text  # not even rounded
    # The only numbers with a fraction are cell vertices and the cell area.
    body = await coverage(client)
    vertices = {tuple(p) for f in body["features"] for p in f["geometry"]["coordinates"][0]}  # type: ignore[attr-defined]
    assert not {(lng, lat) for p in town if p.location for lat, lng in [p.location]} & vertices
    assert set(body) == {
        "type",
        "features",
        "resolution",
        "cell_area_km2",
        "min_cameras",
        "min_households",
        "totals",
        "programmes",
        "generated_at",
    }


async def test_revoked_cameras_are_not_counted_once_the_counts_refresh(
    client: httpx.AsyncClient,
    factory: Factory,
    owner: User,
    town: list[Home],
    clock: ManualClock,
) -> None:
    owner_home = town[0]
    assert cells_of(await coverage(client)) == {BRISTOL: 5}
    as_owner = await factory.signed_in(owner)
    camera = owner_home.cameras[0]
    revoked = await as_owner.delete(f"/api/v1/households/{owner_home.id}/devices/{camera.id}")
    assert revoked.status_code == 204, revoked.text
    # Requests read the published snapshot, never count (public, and a count reads every
    # camera): the revoked camera still counts until the job publishes again.
    assert cells_of(await coverage(client, published=False)) == {BRISTOL: 5}
    clock.advance(timedelta(seconds=301))
    body = await coverage(client)
    assert cells_of(body) == {}  # 4 cameras now: under k
    assert body["totals"]["cameras_counted"] == 10  # type: ignore[index]  # 11, rounded
    assert body["totals"]["cells_suppressed"] == 3  # type: ignore[index]


async def test_a_cell_just_over_k_beside_withheld_cells_is_shown(
    client: httpx.AsyncClient, factory: Factory, clock: ManualClock
) -> None:
    owner = await factory.user()
    centre = h3.cell_to_latlng(BRISTOL)
    (neighbour, *_) = sorted(h3.grid_ring(BRISTOL, 1))
    for location, cameras in zip(spots(BRISTOL)[:3], (2, 2, 2), strict=True):
        await home(factory, owner, location, cameras)
    await home(factory, owner, h3.cell_to_latlng(neighbour), 4)
    body = await coverage(client)
    assert cells_of(body) == {BRISTOL: 5}  # 6, rounded to coverage_round_to
    assert body["totals"]["cells_suppressed"] == 1  # type: ignore[index]
    assert f"{centre[0]:.4f}" not in json.dumps(body)


async def test_an_empty_instance_has_an_empty_map(client: httpx.AsyncClient) -> None:
    body = await coverage(client)
    assert body["features"] == []
    assert body["totals"] == {
        "cameras_counted": 0,
        "cameras_shown": 0,
        "cameras_suppressed": 0,
        "cameras_unlocated": 0,
        "cells_shown": 0,
        "cells_suppressed": 0,
    }
    page = await client.get(PAGE)
    assert page.status_code == 200
    assert "No cell has enough cameras to be shown yet." in page.text


async def test_query_parameters_cannot_change_what_is_shown(
    client: httpx.AsyncClient, town: list[Home]
) -> None:
    # The resolution and thresholds are the instance's; a caller who could pick two
    # resolutions could subtract shown cells from their parent and find withheld ones.
    plain = await coverage(client)
    tried = await coverage(client, "?resolution=9&min_cameras=1&k=1&min_households=1")
    assert tried == plain


async def test_page_and_api_are_public_and_the_same_for_everyone(
    client: httpx.AsyncClient, factory: Factory, town: list[Home]
) -> None:
    resident = await factory.signed_in(await factory.user())
    signed_out = await coverage(client)
    assert await coverage(resident) == signed_out
    page = await client.get(PAGE)
    assert page.status_code == 200
    html = page.text
    assert 'id="coverage-map"' in html
    assert f'data-src="{API}"' in html
    assert 'data-tiles=""' in html
    assert "/static/vendor/leaflet/leaflet.js" in html
    assert "No agency camera programmes are on record" in html
    assert "plain background" in html
    assert f"<code>{BRISTOL}</code>" in html
    for label, value in (
        ("Cameras counted", 10),
        ("Cameras in the cells shown", 5),
        ("Cameras in cells too small to show", 5),
        ("Cells shown", 1),
        ("Cells too small to show", 2),
    ):
        assert f'<th scope="row">{label}</th><td>{value}</td>' in html
    # No tile server: the default policy, images from this site only.
    assert page.headers["content-security-policy"] == SECURITY_HEADERS["content-security-policy"]
    assert "<style" not in html and " style=" not in html  # the CSP allows neither


@pytest.fixture
async def tuned(settings: Settings, clock: ManualClock) -> AsyncIterator[FastAPI]:
    """The app with every coverage setting changed."""
    changed = Settings(
        **{
            **settings.model_dump(),
            "secret_key": settings.secret_key.get_secret_value(),
            "coverage_h3_resolution": 5,
            "coverage_min_cameras": 2,
            "coverage_min_households": 2,
            "coverage_cache_s": 0,
            "coverage_round_to": 2,
            "map_tile_url": "https://{s}.tiles.example.org/{z}/{x}/{y}.png",
            "map_tile_attribution": "© Example <Tiles>",
        }
    )
    application = create_app(changed, clock=clock)
    async with application.router.lifespan_context(application):
        yield application


async def test_settings_choose_the_cells_the_thresholds_and_the_tiles(tuned: FastAPI) -> None:
    factory = Factory(tuned)
    owner = await factory.user()
    a, b = spots(BRISTOL)[:2]
    await home(factory, owner, a, 1)
    await home(factory, owner, b, 1)
    await home(factory, owner, spots(YORK)[0], 1)
    async with make_client(tuned) as client:
        body = await coverage(client)
        expected = h3.latlng_to_cell(a[0], a[1], 5)
        assert cells_of(body) == {expected: 2}  # k=2 from two homes; York's one withheld
        assert h3.get_resolution(expected) == 5
        assert (body["resolution"], body["min_cameras"], body["min_households"]) == (5, 2, 2)
        await home(factory, owner, spots(YORK)[1], 1)  # counted at the next publishing
        assert len(cells_of(await coverage(client))) == 2
        page = await client.get(PAGE)
    assert 'data-tiles="https://{s}.tiles.example.org/{z}/{x}/{y}.png"' in page.text
    assert 'data-attribution="© Example &lt;Tiles&gt;"' in page.text
    policy = page.headers["content-security-policy"]
    assert "img-src 'self' data: https://*.tiles.example.org;" in policy
    assert "script-src 'self';" in policy and "style-src 'self';" in policy
    # Only the map page may load tiles: every other page keeps the default policy.
    async with make_client(tuned) as client:
        other = await client.get("/login")
    assert other.headers["content-security-policy"] == SECURITY_HEADERS["content-security-policy"]


@pytest.mark.parametrize(
    "change",
    [
        {"coverage_h3_resolution": 16},
        {"coverage_h3_resolution": -1},
        {"coverage_min_cameras": 1},
        {"coverage_min_households": 1},
        {"coverage_cache_s": -1},
        {"coverage_round_to": 1},
        {"coverage_interval_s": -1},
        {"map_tile_url": "https://tiles.example.org/tile.png"},  # no {z}/{x}/{y}
        {"map_tile_url": "javascript:alert(1)//{z}/{x}/{y}"},
        {"map_tile_url": "https://tiles.example.org; img-src *;/{z}/{x}/{y}.png"},
        {"map_tile_url": "https://a{s}.example.org/{z}/{x}/{y}.png"},
    ],
)
def test_bad_coverage_settings_are_refused(change: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Settings(development=True, **change)  # type: ignore[arg-type]


def test_the_tile_origin_is_the_csp_source() -> None:
    assert tile_origin("https://tile.openstreetmap.org/{z}/{x}/{y}.png") == (
        "https://tile.openstreetmap.org"
    )
    assert tile_origin("https://{s}.Tile.example.org:8443/a/{z}/{x}/{y}.png") == (
        "https://*.tile.example.org:8443"
    )
    assert Settings(development=True, map_tile_url="").map_tile_url is None


def test_summary_counts_households_and_skips_what_has_no_place() -> None:
    now = ManualClock().now()
    (lat, lng), (lat2, lng2) = spots(BRISTOL)[:2]
    rows = [
        (lat, lng, 4),
        (lat2, lng2, 1),
        (None, None, 2),
        (lat, None, 1),
        (91.0, 0.0, 1),  # impossible coordinates count as no place
        (float("nan"), 0.0, 1),
    ]
    found = summarise(rows, resolution=7, min_cameras=5, min_households=2, now=now)
    assert [(c.id, c.cameras) for c in found.cells] == [(BRISTOL, 5)]
    assert found.cameras_unlocated == 5
    fewer_homes = summarise(rows, resolution=7, min_cameras=5, min_households=3, now=now)
    assert fewer_homes.cells == [] and fewer_homes.cameras_suppressed == 5


def test_a_cell_across_the_antimeridian_is_drawn_in_one_piece() -> None:
    cell = h3.latlng_to_cell(0.0, 179.99, 3)
    longitudes = [lng for lng, _ in ring(cell)]
    assert max(longitudes) - min(longitudes) < 5
    assert all(lng > 0 for lng in longitudes)
