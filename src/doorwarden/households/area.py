"""Which households, and which of their cameras, lie in an area: the community-request
recipients and the cameras an area sweep would reach.

Two steps, the same on SQLite and PostgreSQL: candidates by the indexed H3 cell of each
household's location (every cell the polygon overlaps, see geo.covering_cells), then the
exact polygon test on the candidates' coordinates (shapely, vectorised). A camera is at
its household's location; removed cameras are not counted.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden import geo
from doorwarden.devices.models import Device
from doorwarden.households.models import Household

# Cells per IN (...) list: far below any driver's parameter limit (asyncpg: 32767).
CELL_BATCH = 5000


@dataclass(frozen=True)
class AreaCamera:
    household_id: uuid.UUID
    device_id: uuid.UUID


def _batches(cells: Sequence[str]) -> list[Sequence[str]]:
    return [cells[i : i + CELL_BATCH] for i in range(0, len(cells), CELL_BATCH)]


async def cameras_in(db: AsyncSession, area: geo.Area) -> list[AreaCamera]:
    """Every camera in service whose household lies inside `area`."""
    found: list[AreaCamera] = []
    for cells in _batches(geo.covering_cells(area)):
        rows = (
            await db.execute(
                select(Household.id, Household.latitude, Household.longitude, Device.id)
                .join(Device, Device.household_id == Household.id)
                .where(Household.location_cell.in_(cells), Device.revoked_at.is_(None))
            )
        ).all()
        inside = geo.contained(area, ((lat, lng) for _, lat, lng, _ in rows))
        found += [AreaCamera(h, d) for (h, _, _, d), ok in zip(rows, inside, strict=True) if ok]
    return found


async def households_in(db: AsyncSession, area: geo.Area) -> list[uuid.UUID]:
    """Households with at least one camera in service inside `area`, each once."""
    return sorted({camera.household_id for camera in await cameras_in(db, area)})
