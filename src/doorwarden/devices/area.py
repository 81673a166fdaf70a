"""Which households, and which of their cameras, lie in an area: the community-request
recipients and the cameras an area sweep would reach.

Two steps, the same on SQLite and PostgreSQL: candidates by the indexed H3 cell of each
camera's location (every cell the polygon overlaps, see geo.covering_cells), then the
exact polygon test on the candidates' coordinates (shapely, vectorised; the boundary
counts as inside, see geo). A camera is at its household's location, which each device
row carries (place_cameras keeps it so): the candidates come from one partial index of
the cameras in service (devices/models.py), without a join to the households. Revoked
cameras are not counted, and a household without a location is in no area.

The query also bounds the candidates' coordinates by the polygon's bounding box, which
the database checks in the index before reading further: a cell at the rim reaches
~200 m past the polygon, and for a compact area about half of the cameras in its cells
lie outside it. Cell lists are padded (by repeating the last cell) to a power of two, so
that a few statement shapes serve every area and stay in the drivers' prepared-statement
caches.

The stored cell is trusted: a location must be written with its cell, and copied to the
household's cameras (households/service.py and devices/service.py do both); a camera
whose location was changed behind their back is found where its stored cell says, or
not at all.
"""

from __future__ import annotations

import functools
import itertools
import operator
import uuid
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import Dialect, Select, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden import geo
from doorwarden.devices.models import Device
from doorwarden.households.models import Household

# Cells per IN (...) list: a power of two, far below any driver's parameter limit
# (asyncpg: 32767; SQLite: 32766); geo.MAX_COVER_CELLS allows at most 3 lists.
CELL_BATCH = 4096


class AreaCamera(NamedTuple):
    # A named tuple, not a dataclass: a dense area makes thousands (3x cheaper each).
    household_id: uuid.UUID
    device_id: uuid.UUID


def padded(cells: Sequence[str]) -> list[str]:
    """`cells` repeated at the end up to a power of two (at least 8): the same rows."""
    size = 8
    while size < len(cells):
        size *= 2
    return [*cells, *[cells[-1]] * (size - len(cells))] if cells else []


def _batches(cells: Sequence[str]) -> list[Sequence[str]]:
    return [cells[i : i + CELL_BATCH] for i in range(0, len(cells), CELL_BATCH)]


_UUID_HEX_DIGITS = 32
_new_object, _set_slot = object.__new__, object.__setattr__


def _uuid(value: Any) -> uuid.UUID:
    """asyncpg hands back its own uuid.UUID subclass; SQLite the 32 lowercase hex digits
    SQLAlchemy stores. uuid.UUID(hex) spends most of its ~0.9 µs on forms the database
    never returns (braces, urn:, dashes); setting the two slots a UUID has takes ~0.4 µs
    and makes an equal object (tests/unit/devices/test_area.py). A dense area makes thousands."""
    if isinstance(value, uuid.UUID):
        return value
    if len(value) != _UUID_HEX_DIGITS:
        raise ValueError(f"not a stored UUID: {value!r}")
    made = _new_object(uuid.UUID)
    _set_slot(made, "int", int(value, 16))
    _set_slot(made, "is_safe", uuid.SafeUUID.unknown)
    return made


def _in_area(cells: int) -> Select[uuid.UUID, float | None, float | None, uuid.UUID]:
    """The cameras in service in `cells` cells (parameters c0, c1, ...) and the bounding
    box (south, north, west, east). The partial index's own condition (revoked_at IS
    NULL) must be in the query for either database to use it."""
    # Only the SQL is used: the rows come from the driver, ids in its own form (_uuid).
    return select(Device.household_id, Device.latitude, Device.longitude, Device.id).where(
        Device.location_cell.in_([bindparam(f"c{i}") for i in range(cells)]),
        Device.latitude.between(bindparam("south"), bindparam("north")),
        Device.longitude.between(bindparam("west"), bindparam("east")),
        Device.revoked_at.is_(None),
    )


@functools.lru_cache(maxsize=64)
def _sql(dialect: Dialect, cells: int) -> tuple[str, tuple[str, ...]]:
    """The query's SQL for the dialect and its parameters' names in order: compiled once
    per shape (padded() keeps them few), which saves ~1 ms a query."""
    compiled = _in_area(cells).compile(dialect=dialect)
    return str(compiled), tuple(compiled.positiontup or ())


async def _fetch(db: AsyncSession, area: geo.Area, cells: Sequence[str]) -> Sequence[Any]:
    """The rows as the driver returns them (tuples from aiosqlite, Records from asyncpg),
    in the session's transaction. SQLAlchemy builds the SQL for the dialect; skipping its
    result layer (its adapter's copy of the rows, a Row object each) saves a third of the
    time for a dense area's thousands of rows (BENCHMARKS.md)."""
    conn = await db.connection()
    cells = padded(cells)
    sql, names = _sql(conn.dialect, len(cells))
    west, south, east, north = area.bounds
    values = {"south": south, "north": north, "west": west, "east": east}
    values.update((f"c{i}", cell) for i, cell in enumerate(cells))
    params = [values[name] for name in names]
    driver: Any = (await conn.get_raw_connection()).driver_connection
    if conn.dialect.name == "sqlite":  # SQLAlchemy issued BEGIN when it took the connection
        return await driver.execute_fetchall(sql, params)  # type: ignore[no-any-return]
    if not driver.is_in_transaction():
        # SQLAlchemy's asyncpg adapter opens the server's transaction at its first
        # statement; this one must not run outside the session's transaction.
        await conn.exec_driver_sql("SELECT 1")
    return await driver.fetch(sql, *params)  # type: ignore[no-any-return]


async def _inside(db: AsyncSession, area: geo.Area) -> list[Sequence[Any]]:
    """(household id, latitude, longitude, device id) of every camera in service inside
    `area`, the ids as the driver returns them."""
    found: list[Sequence[Any]] = []
    for batch in _batches(geo.covering_cells(area)):
        rows = await _fetch(db, area, batch)
        latitudes = np.fromiter((row[1] for row in rows), np.float64, len(rows))
        longitudes = np.fromiter((row[2] for row in rows), np.float64, len(rows))
        found += itertools.compress(rows, geo.within(area, latitudes, longitudes).tolist())
    return found


async def cameras_in(db: AsyncSession, area: geo.Area) -> list[AreaCamera]:
    """Every camera in service whose household lies inside `area`, in no particular
    order. GeoError when the area is too large to search (geo.MAX_COVER_CELLS)."""
    homes: dict[Any, uuid.UUID] = {}
    found: list[AreaCamera] = []
    for h, _, _, d in await _inside(db, area):
        household = homes.get(h)
        if household is None:
            household = homes[h] = _uuid(h)
        found.append(AreaCamera(household, _uuid(d)))
    return found


async def households_in(db: AsyncSession, area: geo.Area) -> list[uuid.UUID]:
    """Households with at least one camera in service inside `area`, each once, in
    order. (The community-request recipients.)"""
    homes = {row[0] for row in await _inside(db, area)}
    return sorted(map(_uuid, homes), key=operator.attrgetter("int"))  # UUID order, in C


async def place_cameras(db: AsyncSession, household: Household) -> None:
    """Copy the household's location and cell to its cameras (after it changed): area
    queries find a camera by its own copy. Revoked cameras too, so that the copy is
    never stale, whatever reads it."""
    await db.execute(
        update(Device)
        .where(Device.household_id == household.id)
        .values(
            latitude=household.latitude,
            longitude=household.longitude,
            location_cell=household.location_cell,
        )
    )
