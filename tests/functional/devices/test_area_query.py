"""Area queries on the real database (devices/area.py): households created through the
service at chosen places, cameras paired through the real flow; candidates come from the
stored H3 cell, the exact polygon decides. Also: the coverage counts grouped by stored
cell (transparency/coverage.py) equal the counts made home by home."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime

import h3
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden import geo
from doorwarden.accounts.models import User
from doorwarden.crypto.keys import SigningKey, b64e
from doorwarden.devices import service as devices
from doorwarden.devices.area import AreaCamera, cameras_in, households_in, padded
from doorwarden.devices.models import Device
from doorwarden.households import service as households
from doorwarden.households.models import Household
from doorwarden.transparency.coverage import (
    box_cell,
    cell_cameras,
    coverage,
    household_cameras,
    summarise,
)
from tests.factories import CTX, Factory, make_client

# A block in Bristol (about 280 m x 330 m) with a courtyard (70 m x 110 m) cut out of it.
WEST, SOUTH, EAST, NORTH = -2.5900, 51.4530, -2.5860, 51.4560
HOLE = (-2.5885, 51.4540, -2.5875, 51.4550)


def box(west: float, south: float, east: float, north: float) -> list[list[float]]:
    return [[west, south], [east, south], [east, north], [west, north], [west, south]]


BLOCK = geo.parse_area(
    {"type": "Polygon", "coordinates": [box(WEST, SOUTH, EAST, NORTH), box(*HOLE)]}
)


async def home(
    factory: Factory, owner: User, location: tuple[float, float] | None, cameras: int = 1
) -> tuple[uuid.UUID, list[uuid.UUID]]:
    lat, lng = location if location is not None else (None, None)
    async with factory.app.state.sessionmaker.begin() as db:
        household = await households.create_household(
            db,
            owner=owner,
            name="Home",
            address="",
            latitude=lat,
            longitude=lng,
            time_zone="Europe/London",
            ctx=CTX,
        )
    paired = [await factory.camera(owner, household.id, f"Camera {i}") for i in range(cameras)]
    return household.id, [c.id for c in paired]


async def move(
    db: AsyncSession, owner: User, household: uuid.UUID, location: tuple[float, float] | None
) -> None:
    """The owner changes the household's location, through the service."""
    lat, lng = location if location is not None else (None, None)
    stored = await households.get_household(db, household)
    await devices.update_household(
        db, household=stored, changes={"latitude": lat, "longitude": lng}, actor=owner, ctx=CTX
    )


async def found(app: FastAPI, area: geo.Area) -> set[AreaCamera]:
    async with app.state.sessionmaker() as db:
        cameras = await cameras_in(db, area)
    assert len(cameras) == len(set(cameras))  # each camera once
    return set(cameras)


async def homes_found(app: FastAPI, area: geo.Area) -> list[uuid.UUID]:
    async with app.state.sessionmaker() as db:
        return await households_in(db, area)


def cams(household: uuid.UUID, devices: list[uuid.UUID]) -> set[AreaCamera]:
    return {AreaCamera(household, d) for d in devices}


@pytest.fixture
async def owner(factory: Factory) -> User:
    return await factory.user()


async def test_inside_outside_edges_and_the_hole(factory: Factory, owner: User) -> None:
    inside = await home(factory, owner, (51.4535, -2.5895), cameras=2)
    outside = await home(factory, owner, (51.4535, -2.5855))  # 35 m east of the block
    on_edge = await home(factory, owner, (51.4545, WEST))  # on the western edge
    on_corner = await home(factory, owner, (NORTH, EAST))
    in_hole = await home(factory, owner, (51.4545, -2.5880))
    on_rim = await home(factory, owner, (HOLE[1], -2.5880))  # the courtyard's southern edge
    # The home outside (and the one in the hole) are candidates: their cells overlap the
    # block, so only the exact test keeps them out.
    cells = set(geo.covering_cells(BLOCK))
    assert {geo.cell_of(51.4535, -2.5855), geo.cell_of(51.4545, -2.5880)} <= cells
    expected = cams(*inside) | cams(*on_edge) | cams(*on_corner) | cams(*on_rim)
    assert await found(factory.app, BLOCK) == expected
    assert await homes_found(factory.app, BLOCK) == sorted(
        [inside[0], on_edge[0], on_corner[0], on_rim[0]], key=lambda u: u.int
    )
    assert outside[0] not in await homes_found(factory.app, BLOCK)
    assert in_hole[0] not in await homes_found(factory.app, BLOCK)
    # Without the courtyard cut out, the home in it is found too.
    solid = geo.parse_area({"type": "Polygon", "coordinates": [box(WEST, SOUTH, EAST, NORTH)]})
    assert await found(factory.app, solid) == expected | cams(*in_hole)


async def test_revoked_cameras_and_homes_without_a_place_or_a_camera_are_not_found(
    factory: Factory, owner: User
) -> None:
    both = await home(factory, owner, (51.4535, -2.5890), cameras=2)
    only = await home(factory, owner, (51.4535, -2.5880))
    nowhere = await home(factory, owner, None)
    async with factory.app.state.sessionmaker.begin() as db:
        cameraless = await households.create_household(
            db, owner=owner, name="No camera", address="", latitude=51.4535,
            longitude=-2.5870, time_zone="UTC", ctx=CTX,
        )  # fmt: skip
    assert await found(factory.app, BLOCK) == cams(*both) | cams(*only)
    as_owner = await factory.signed_in(owner)
    for household, device in [(both[0], both[1][0]), (only[0], only[1][0])]:
        revoked = await as_owner.delete(f"/api/v1/households/{household}/devices/{device}")
        assert revoked.status_code == 204, revoked.text
    assert await found(factory.app, BLOCK) == {AreaCamera(both[0], both[1][1])}
    assert await homes_found(factory.app, BLOCK) == [both[0]]
    # The home without a location has no cell and is in no area, however large.
    async with factory.app.state.sessionmaker() as db:
        stored = await db.get(Household, nowhere[0])
        assert stored is not None and stored.location_cell is None
        assert await db.get(Household, cameraless.id) is not None
    world = geo.parse_area({"type": "Polygon", "coordinates": [box(-3, 51, -2, 52)]})
    with pytest.raises(geo.GeoError, match="too large to search"):
        await found(factory.app, world)


async def test_a_moved_household_is_found_at_its_new_place_only(
    factory: Factory, owner: User
) -> None:
    household, devices = await home(factory, owner, (51.4550, -2.5895))
    elsewhere = geo.parse_area(
        {"type": "Polygon", "coordinates": [box(-2.5710, 51.4590, -2.5690, 51.4610)]}
    )
    assert await found(factory.app, BLOCK) == cams(household, devices)
    assert await found(factory.app, elsewhere) == set()
    async with factory.app.state.sessionmaker.begin() as db:
        old_cell = (await households.get_household(db, household)).location_cell
        await move(db, owner, household, (51.4600, -2.5700))
    async with factory.app.state.sessionmaker() as db:
        moved = await households.get_household(db, household)
        assert moved.location_cell == geo.cell_of(51.4600, -2.5700) != old_cell
    assert await found(factory.app, BLOCK) == set()
    assert await found(factory.app, elsewhere) == cams(household, devices)
    parts = [[box(WEST, SOUTH, EAST, NORTH)], [box(-2.5710, 51.4590, -2.5690, 51.4610)]]
    both = geo.parse_area({"type": "MultiPolygon", "coordinates": parts})
    assert await found(factory.app, both) == cams(household, devices)
    # Removing the location takes it off every map.
    async with factory.app.state.sessionmaker.begin() as db:
        await move(db, owner, household, None)
    assert await found(factory.app, both) == set()


async def stored_places(app: FastAPI, household: uuid.UUID) -> set[tuple[object, ...]]:
    """(latitude, longitude, cell) of the household and of each of its cameras."""
    async with app.state.sessionmaker() as db:
        stored = await households.get_household(db, household)
        cameras = (
            await db.execute(
                select(Device.latitude, Device.longitude, Device.location_cell).where(
                    Device.household_id == household
                )
            )
        ).all()
    return {(stored.latitude, stored.longitude, stored.location_cell), *map(tuple, cameras)}


async def test_cameras_carry_their_household_location_through_moves_and_pairing(
    factory: Factory, owner: User
) -> None:
    household, before = await home(factory, owner, (51.4550, -2.5895), cameras=2)
    assert await stored_places(factory.app, household) == {
        (51.4550, -2.5895, geo.cell_of(51.4550, -2.5895))
    }
    async with factory.app.state.sessionmaker.begin() as db:
        await move(db, owner, household, (51.4600, -2.5700))
    later = await factory.camera(owner, household, "Garden")
    assert await stored_places(factory.app, household) == {
        (51.4600, -2.5700, geo.cell_of(51.4600, -2.5700))
    }
    elsewhere = geo.parse_area(
        {"type": "Polygon", "coordinates": [box(-2.5710, 51.4590, -2.5690, 51.4610)]}
    )
    assert await found(factory.app, elsewhere) == cams(household, [*before, later.id])
    # A change that does not move the home leaves the cameras alone (and still agrees).
    async with factory.app.state.sessionmaker.begin() as db:
        stored = await households.get_household(db, household)
        await devices.update_household(
            db, household=stored, changes={"name": "Renamed"}, actor=owner, ctx=CTX
        )
    assert len(await stored_places(factory.app, household)) == 1


async def test_a_camera_paired_while_its_home_moves_is_placed_where_the_home_ends_up(
    factory: Factory, owner: User
) -> None:
    """The move holds the household's row (PostgreSQL) or the database (SQLite) until it
    commits; the pairing waits for it and copies the new place. Without the wait, the
    pairing would copy the old place and the move would not see the new camera."""
    household, _ = await home(factory, owner, (51.4550, -2.5895), cameras=0)
    async with factory.app.state.sessionmaker.begin() as db:
        _, code = await devices.create_pairing_code(
            db, household_id=household, user=owner, ctx=CTX, now=factory.app.state.clock.now()
        )
    agent = make_client(factory.app, "203.0.113.50")
    key = SigningKey.generate()
    async with factory.app.state.sessionmaker.begin() as db:
        await move(db, owner, household, (51.4600, -2.5700))
        pairing = asyncio.create_task(
            agent.post(
                "/api/v1/devices/pair",
                json={"code": code, "name": "Racer", "public_key": b64e(key.public)},
            )
        )
        await asyncio.sleep(0.5)  # the pairing is under way, waiting for the move
        assert not pairing.done()
    paired = await pairing
    assert paired.status_code == 201, paired.text
    assert await stored_places(factory.app, household) == {
        (51.4600, -2.5700, geo.cell_of(51.4600, -2.5700))
    }


async def test_the_query_runs_in_the_session_transaction(factory: Factory, owner: User) -> None:
    """It reads through the driver, but within the caller's transaction: what the session
    has written and not committed is found, and gone after a rollback."""
    household, _ = await home(factory, owner, (51.4535, -2.5890), cameras=0)
    async with factory.app.state.sessionmaker() as db, db.begin():
        stored = await households.get_household(db, household)
        camera = Device(
            household_id=household, name="Uncommitted", public_key="A" * 43,
            token_hash="f" * 64, token_prefix="f" * 16, latitude=stored.latitude,
            longitude=stored.longitude, location_cell=stored.location_cell,
        )  # fmt: skip
        db.add(camera)
        await db.flush()
        assert await cameras_in(db, BLOCK) == [AreaCamera(household, camera.id)]
        assert await households_in(db, BLOCK) == [household]
        await db.rollback()
    assert await found(factory.app, BLOCK) == set()


async def test_a_long_thin_area_with_many_cells(factory: Factory, owner: User) -> None:
    """A street 90 m wide and 7 km long (0.24 sq mi): hundreds of cells in the IN list."""
    street = geo.parse_area(
        {"type": "Polygon", "coordinates": [box(-2.64, 51.4540, -2.54, 51.4548)]}
    )
    assert geo.square_miles(geo.area_km2(street)) < 0.5
    assert len(geo.covering_cells(street)) > 30
    near_ends = [await home(factory, owner, (51.4544, lng)) for lng in (-2.6399, -2.5401)]
    beside = await home(factory, owner, (51.4552, -2.59))  # 45 m north of it
    assert await found(factory.app, street) == cams(*near_ends[0]) | cams(*near_ends[1])
    assert beside[0] not in await homes_found(factory.app, street)


def test_cell_lists_are_padded_to_a_few_shapes() -> None:
    assert padded([]) == []
    assert padded(["a"]) == ["a"] * 8
    assert padded(["a", "b"] * 5) == ["a", "b"] * 5 + ["b"] * 6
    assert [len(padded(["x"] * n)) for n in (8, 9, 16, 17, 100)] == [8, 16, 16, 32, 128]


# ---------------------------------------------------------------- coverage


async def test_coverage_from_stored_cells_equals_counting_home_by_home(app: FastAPI) -> None:
    """Clusters of homes in random resolution-9 cells around Bristol, some straddling the
    edge of a coverage cell; plus revoked cameras, a home without a location and one whose
    coordinates were changed without its cell."""
    rnd = random.Random(20261202)
    now = datetime(2026, 12, 2, tzinfo=UTC)
    centre = h3.latlng_to_cell(51.4545, -2.5879, 9)
    cells = rnd.sample(sorted(h3.grid_disk(centre, 40)), 60)
    homes: list[Household] = []
    for cell in cells:
        lat0, lng0 = h3.cell_to_latlng(cell)
        for _ in range(rnd.randint(1, 4)):
            while True:
                lat, lng = lat0 + rnd.uniform(-0.002, 0.002), lng0 + rnd.uniform(-0.003, 0.003)
                if geo.cell_of(lat, lng) == cell:
                    break
            homes.append(Household(name="Home", latitude=lat, longitude=lng, location_cell=cell))
    homes.append(Household(name="Nowhere", latitude=None, longitude=None, location_cell=None))
    async with app.state.sessionmaker.begin() as db:
        db.add_all(homes)
        await db.flush()
        for n, household in enumerate(homes):
            for k in range(rnd.choice([1, 1, 2, 3])):
                db.add(
                    Device(
                        household_id=household.id, name="Cam", public_key="A" * 43,
                        token_hash=f"{n:032x}{k:032x}", token_prefix=f"{n:08x}{k:08x}",
                        revoked_at=now if rnd.random() < 0.1 else None,
                    )
                )  # fmt: skip
        # Written behind the service's back: the stored cell no longer matches.
        await db.execute(
            update(Household)
            .where(Household.id == homes[0].id)
            .values(latitude=51.40, longitude=-2.50)
        )
    async with app.state.sessionmaker() as db:
        groups = await cell_cameras(db)
        one_by_one = [g for g in groups if g.located and box_cell(g, 7) is None]
        assert one_by_one and len(one_by_one) < len(groups) / 2  # both ways are exercised
        for resolution in (4, 6, 7, 8, 9, 10):
            expected = summarise(
                await household_cameras(db),
                resolution=resolution, min_cameras=2, min_households=2, now=now,
            )  # fmt: skip
            counted = await coverage(
                db, resolution=resolution, min_cameras=2, min_households=2, now=now
            )
            assert counted == expected, resolution
            assert counted.cameras_unlocated > 0
            if resolution >= 7:
                assert len(counted.cells) > 5 and counted.cells_suppressed > 0
        total = await db.scalar(
            select(func.count()).select_from(Device).where(Device.revoked_at.is_(None))
        )
        assert counted.cameras_counted + counted.cameras_unlocated == total
