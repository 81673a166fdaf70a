"""Which households, and which of their cameras, lie in an area: the community-request
recipients and the cameras an area sweep would reach.

Two steps, the same on SQLite and PostgreSQL: candidates by the indexed H3 cell of each
household's location (every cell the polygon overlaps, see geo.covering_cells), then the
exact polygon test on the candidates' coordinates (shapely, vectorised; the boundary
counts as inside, see geo). A camera is at its household's location; revoked cameras
are not counted, and a household without a location is in no area.

The query also bounds the candidates' coordinates by the polygon's bounding box, which
the database checks on the household row it has just read, before looking up its
cameras: a cell at the rim reaches ~200 m past the polygon, and for a compact area about
half of the homes in its cells lie outside it. Cell lists are padded (by repeating the
last cell) to a power of two, so that a few statement shapes serve every area and stay
in the drivers' prepared-statement caches.

The stored cell is trusted: a location must be written with its cell (households/service.py
does); a household whose location was changed behind the service's back is found where
its stored cell says, or not at all.
"""

from __future__ import annotations

import itertools
import operator
import uuid
from collections.abc import Sequence
from typing import Any, NamedTuple

from sqlalchemy import String, exists, select, type_coerce
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


def _uuid(value: Any) -> uuid.UUID:
    # asyncpg hands back its own uuid.UUID subclass; SQLite the 32 hex digits.
    return value if isinstance(value, uuid.UUID) else uuid.UUID(value)


def _raw(column: Any) -> Any:
    """The column without SQLAlchemy's per-row UUID conversion (2-3 µs a value): only
    the rows that pass the exact test are converted."""
    return type_coerce(column, String)


def _candidates(area: geo.Area, cells: Sequence[str]) -> Any:
    west, south, east, north = area.bounds
    return (
        Household.location_cell.in_(padded(cells)),
        Household.latitude.between(south, north),
        Household.longitude.between(west, east),
    )


async def cameras_in(db: AsyncSession, area: geo.Area) -> list[AreaCamera]:
    """Every camera in service whose household lies inside `area`, in no particular
    order. GeoError when the area is too large to search (geo.MAX_COVER_CELLS)."""
    cells = geo.covering_cells(area)
    # Core rather than ORM rows: thousands of plain tuples, without the ORM's per-row work.
    conn = await db.connection()
    homes: dict[Any, uuid.UUID] = {}
    found: list[AreaCamera] = []
    for batch in _batches(cells):
        rows = (
            await conn.execute(
                select(_raw(Household.id), Household.latitude, Household.longitude, _raw(Device.id))
                .join(Device, Device.household_id == Household.id)
                .where(*_candidates(area, batch), Device.revoked_at.is_(None))
            )
        ).all()
        inside = geo.contained(area, [(row[1], row[2]) for row in rows])
        for i in itertools.compress(range(len(rows)), inside):
            h, _, _, d = rows[i]
            household = homes.get(h)
            if household is None:
                household = homes[h] = _uuid(h)
            found.append(AreaCamera(household, _uuid(d)))
    return found


async def households_in(db: AsyncSession, area: geo.Area) -> list[uuid.UUID]:
    """Households with at least one camera in service inside `area`, each once, in
    order. (The community-request recipients: one row per home, not per camera.)"""
    cells = geo.covering_cells(area)
    conn = await db.connection()
    in_service = exists().where(Device.household_id == Household.id, Device.revoked_at.is_(None))
    found: list[uuid.UUID] = []
    for batch in _batches(cells):
        rows = (
            await conn.execute(
                select(_raw(Household.id), Household.latitude, Household.longitude).where(
                    *_candidates(area, batch), in_service
                )
            )
        ).all()
        inside = geo.contained(area, [(row[1], row[2]) for row in rows])
        found += [_uuid(rows[i][0]) for i in itertools.compress(range(len(rows)), inside)]
    return sorted(found, key=operator.attrgetter("int"))  # UUID order, compared in C
