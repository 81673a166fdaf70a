"""The public coverage map: how many cameras the instance has per H3 cell.

Anyone may read it, so it must not say where any one camera or household is:

* a camera is placed at its household's location, and only the cell that location falls
  in leaves this module: cell ids and their hexagons, never a coordinate of a home;
* a cell is shown only when it holds at least `min_cameras` cameras (k) from at least
  `min_households` households: five cameras of one home would point at that home, and
  of two homes each could subtract its own. A withheld cell's cameras are counted in the
  totals, never placed, and how many cells were withheld is said, never which;
* the resolution is a setting, not a request parameter: whoever could ask for two
  resolutions could subtract the shown children from their parent cell and find the
  withheld ones. (A shown cell beside withheld ones says nothing about them.)
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import h3
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.devices.models import Device
from doorwarden.households.models import Household

# Six decimals (about 0.1 m) is far finer than any cell edge, and halves the payload.
PRECISION = 6

# (latitude, longitude, active cameras) of one household.
HouseholdRow = tuple[float | None, float | None, int]


@dataclass(frozen=True)
class Cell:
    id: str
    cameras: int
    ring: list[tuple[float, float]]  # the hexagon as GeoJSON wants it: (lng, lat), closed


@dataclass(frozen=True)
class Coverage:
    resolution: int
    min_cameras: int
    min_households: int
    generated_at: datetime
    cells: list[Cell] = field(default_factory=list)  # shown cells, most cameras first
    cells_suppressed: int = 0
    cameras_suppressed: int = 0
    cameras_unlocated: int = 0  # their household has no location: on no map at all

    @property
    def cameras_shown(self) -> int:
        return sum(c.cameras for c in self.cells)

    @property
    def cameras_counted(self) -> int:
        """Cameras placed in a cell, shown or withheld."""
        return self.cameras_shown + self.cameras_suppressed

    @property
    def cell_area_km2(self) -> float:
        return float(h3.average_hexagon_area(self.resolution, "km^2"))


def _located(latitude: float | None, longitude: float | None) -> bool:
    return (
        latitude is not None
        and longitude is not None
        and math.isfinite(latitude)
        and math.isfinite(longitude)
        and -90 <= latitude <= 90
        and -180 <= longitude <= 180
    )


def ring(cell: str) -> list[tuple[float, float]]:
    """The cell's hexagon as a closed GeoJSON ring. A cell across the antimeridian gets
    longitudes past 180 rather than a ring that wraps the whole world."""
    points = [(float(lng), float(lat)) for lat, lng in h3.cell_to_boundary(cell)]
    longitudes = [lng for lng, _ in points]
    if max(longitudes) - min(longitudes) > 180:
        points = [(lng + 360 if lng < 0 else lng, lat) for lng, lat in points]
    points.append(points[0])
    return [(round(lng, PRECISION), round(lat, PRECISION)) for lng, lat in points]


def summarise(
    rows: Iterable[HouseholdRow],
    *,
    resolution: int,
    min_cameras: int,
    min_households: int,
    now: datetime,
) -> Coverage:
    """Count each household's cameras in its cell, then withhold the small cells."""
    cameras: dict[str, int] = {}
    households: dict[str, int] = {}
    unlocated = 0
    for latitude, longitude, count in rows:
        if not _located(latitude, longitude):
            unlocated += count
            continue
        cell = str(h3.latlng_to_cell(latitude, longitude, resolution))
        cameras[cell] = cameras.get(cell, 0) + count
        households[cell] = households.get(cell, 0) + 1
    shown, suppressed_cells, suppressed_cameras = [], 0, 0
    for cell, count in cameras.items():
        if count >= min_cameras and households[cell] >= min_households:
            shown.append(Cell(id=cell, cameras=count, ring=ring(cell)))
        else:
            suppressed_cells += 1
            suppressed_cameras += count
    shown.sort(key=lambda c: (-c.cameras, c.id))
    return Coverage(
        resolution=resolution,
        min_cameras=min_cameras,
        min_households=min_households,
        generated_at=now,
        cells=shown,
        cells_suppressed=suppressed_cells,
        cameras_suppressed=suppressed_cameras,
        cameras_unlocated=unlocated,
    )


async def household_cameras(db: AsyncSession) -> list[HouseholdRow]:
    """Every household with a camera in service: its location and how many it has."""
    rows = await db.execute(
        select(Household.latitude, Household.longitude, func.count(Device.id))
        .join(Device, Device.household_id == Household.id)
        .where(Device.revoked_at.is_(None))
        .group_by(Household.id, Household.latitude, Household.longitude)
    )
    return [(lat, lng, int(n)) for lat, lng, n in rows]


async def coverage(
    db: AsyncSession, *, resolution: int, min_cameras: int, min_households: int, now: datetime
) -> Coverage:
    return summarise(
        await household_cameras(db),
        resolution=resolution,
        min_cameras=min_cameras,
        min_households=min_households,
        now=now,
    )


class CoverageCache:
    """The last count, reused for `max_age_s`: the map is public, and each count reads
    every camera of the instance. One count at a time; the others wait for it."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._key: tuple[int, int, int] | None = None
        self._value: Coverage | None = None

    async def get(
        self,
        key: tuple[int, int, int],
        *,
        now: datetime,
        max_age_s: float,
        count: Callable[[], Awaitable[Coverage]],
    ) -> Coverage:
        async with self._lock:
            value = self._value
            fresh = (
                value is not None
                and self._key == key
                and timedelta(0) <= now - value.generated_at < timedelta(seconds=max_age_s)
            )
            if not fresh or value is None:
                value = await count()
                self._key, self._value = key, value
            return value
