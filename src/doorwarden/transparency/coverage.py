"""The public coverage map: how many cameras the instance has per H3 cell.

Anyone may read it, so it must not say where any one camera or household is:

* a camera is placed at its household's location, and only the cell that location falls
  in leaves this module: cell ids and their hexagons, never a coordinate of a home;
* a cell is shown only when it holds at least `min_cameras` cameras (k) from at least
  `min_households` households: five cameras of one home would point at that home, and
  of two homes each could subtract its own. A withheld cell's cameras are counted in the
  totals, never placed, and how many cells were withheld is said, never which;
* only homes that could not have been made to order are placed (Standing): anyone may
  sign up, and k households of one attacker moved beside a real camera would show it.
  The rest count in the totals only. The published map is the scheduler's rounded
  snapshot (transparency/tasks.py), never a count on demand;
* the resolution is a setting, not a request parameter: whoever could ask for two
  resolutions could subtract the shown children from their parent cell and find the
  withheld ones. (A shown cell beside withheld ones says nothing about them.)

Counting: a home is counted in the coverage cell its location falls in. Each household
keeps its location's cell at geo.CELL_RESOLUTION (9), so for coverage resolutions up to 9
the database groups the cameras by that stored cell and returns one row per cell, with
the bounding box of its homes' locations, rather than one row per household. Whenever
that box lies inside one coverage cell, the whole group is counted there at once (the
common case). The parent of the stored cell is not used: about 6% of homes lie in
another coverage cell than their cell's parent (H3 children do not tile their parent
exactly), and the map counts homes where they are. Groups whose box straddles a coverage
cell's edge, and any stored cell that does not match its location (a location written
without its cell), are counted home by home from their coordinates, as finer resolutions
are. The result is the same as counting every home from its coordinates.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import h3
from sqlalchemy import ColumnElement, and_, case, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.clips.models import Clip
from doorwarden.devices.area import CELL_BATCH
from doorwarden.devices.models import Device
from doorwarden.geo import CELL_RESOLUTION
from doorwarden.households.models import Household
from doorwarden.transparency.models import CoveragePlace

# Six decimals (about 0.1 m) is far finer than any cell edge, and halves the payload.
PRECISION = 6

# (latitude, longitude, active cameras) of one household.
HouseholdRow = tuple[float | None, float | None, int]

# A box of homes is counted in one coverage cell only when it lies inside that cell with
# this margin to spare (degrees of latitude, ~11 cm): H3 cell edges are great-circle arcs,
# which bow by a few cm from the straight lines between the box's corners over 500 m.
BOX_MARGIN_DEG = 1e-6
# Beyond this latitude the margin's argument is not made; such cells are counted home by home.
BOX_MAX_LATITUDE = 80.0


@dataclass(frozen=True)
class CellGroup:
    """The homes with cameras in service whose stored cell is `cell` (None: none stored)."""

    cell: str | None
    located: bool  # False: these homes have no latitude or no longitude
    households: int
    cameras: int
    south: float | None
    north: float | None
    west: float | None
    east: float | None


@dataclass(frozen=True)
class Standing:
    """Which homes count in a place (issue 16 item 4): anyone may sign up and make
    households, so a home counts only once it could not have been made to order. The
    household and its camera exist since before `settled_before`, the camera delivered a
    clip before it, and the household's location is unchanged since before
    `placed_before` (the coverage job's record, CoveragePlace). The other cameras in
    service count in the totals as withheld, never in a place."""

    settled_before: datetime
    placed_before: datetime

    def conditions(self) -> list[ColumnElement[bool]]:
        delivered = exists().where(
            Clip.device_id == Device.id, Clip.verified_at <= self.settled_before
        )
        placed = exists().where(
            CoveragePlace.household_id == Household.id,
            CoveragePlace.since <= self.placed_before,
            CoveragePlace.latitude.is_not_distinct_from(Household.latitude),
            CoveragePlace.longitude.is_not_distinct_from(Household.longitude),
        )
        return [
            Household.created_at <= self.settled_before,
            Device.created_at <= self.settled_before,
            delivered,
            placed,
        ]


def rounded(value: int, step: int) -> int:
    """To the nearest multiple of `step` (halves up): a published figure changes only
    when several cameras come or go, not when one does."""
    return (value + step // 2) // step * step


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


@dataclass
class _Tally:
    cameras: dict[str, int] = field(default_factory=dict)
    households: dict[str, int] = field(default_factory=dict)
    unlocated: int = 0

    def add(self, cell: str, households: int, cameras: int) -> None:
        self.cameras[cell] = self.cameras.get(cell, 0) + cameras
        self.households[cell] = self.households.get(cell, 0) + households

    def add_homes(self, rows: Iterable[HouseholdRow], resolution: int) -> None:
        for latitude, longitude, count in rows:
            if not _located(latitude, longitude):
                self.unlocated += count
                continue
            self.add(str(h3.latlng_to_cell(latitude, longitude, resolution)), 1, count)


def _counted(
    tally: _Tally,
    *,
    resolution: int,
    min_cameras: int,
    min_households: int,
    now: datetime,
    round_to: int = 1,
    unplaced: int = 0,
) -> Coverage:
    """Withhold the small cells; round each published figure to `round_to` (a shown cell
    to at least `round_to`). `unplaced`: cameras in service not counted in any place."""
    shown, suppressed_cells, suppressed_cameras = [], 0, unplaced
    for cell, count in tally.cameras.items():
        if count >= min_cameras and tally.households[cell] >= min_households:
            cameras = max(round_to, rounded(count, round_to))
            shown.append(Cell(id=cell, cameras=cameras, ring=ring(cell)))
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
        cameras_suppressed=rounded(suppressed_cameras, round_to),
        cameras_unlocated=rounded(tally.unlocated, round_to),
    )


def summarise(
    rows: Iterable[HouseholdRow],
    *,
    resolution: int,
    min_cameras: int,
    min_households: int,
    now: datetime,
) -> Coverage:
    """Count each household's cameras in its cell, then withhold the small cells."""
    tally = _Tally()
    tally.add_homes(rows, resolution)
    return _counted(
        tally,
        resolution=resolution,
        min_cameras=min_cameras,
        min_households=min_households,
        now=now,
    )


def box_cell(group: CellGroup, resolution: int) -> str | None:
    """The coverage cell that holds every home of the group, when its box of locations
    provably lies in one; None when the homes must be counted one by one."""
    south, north, west, east = group.south, group.north, group.west, group.east
    if south is None or north is None or west is None or east is None:
        return None
    if not (_located(south, west) and _located(north, east)):
        return None  # NaN, infinity or an impossible coordinate among them
    if max(abs(south), abs(north)) > BOX_MAX_LATITUDE or east - west > 1:
        return None
    dlat = BOX_MARGIN_DEG
    dlng = BOX_MARGIN_DEG / math.cos(math.radians(max(abs(south), abs(north))))
    cells = {
        h3.latlng_to_cell(lat, lng, resolution)
        for lat in (south - dlat, north + dlat)
        for lng in (west - dlng, east + dlng)
    }
    return str(cells.pop()) if len(cells) == 1 else None


async def household_cameras(
    db: AsyncSession,
    cells: Sequence[str | None] | None = None,
    standing: Standing | None = None,
) -> list[HouseholdRow]:
    """Every household with a camera in service: its location and how many it has. With
    `cells`, only the located ones whose stored cell is one of them (None: none stored)."""
    query = (
        select(Household.latitude, Household.longitude, func.count(Device.id))
        .join(Device, Device.household_id == Household.id)
        .where(Device.revoked_at.is_(None), *(standing.conditions() if standing else ()))
        .group_by(Household.id, Household.latitude, Household.longitude)
    )
    if cells is None:
        return [(lat, lng, int(n)) for lat, lng, n in await db.execute(query)]
    # The homes without a location were counted with their group (cell_cameras).
    query = query.where(Household.latitude.is_not(None), Household.longitude.is_not(None))
    stored = sorted(c for c in cells if c is not None)
    batches: list[Any] = [
        Household.location_cell.in_(stored[i : i + CELL_BATCH])
        for i in range(0, len(stored), CELL_BATCH)
    ]
    if None in cells:
        batches.append(Household.location_cell.is_(None))
    rows: list[HouseholdRow] = []
    for condition in batches:
        rows += [(lat, lng, int(n)) for lat, lng, n in await db.execute(query.where(condition))]
    return rows


async def cell_cameras(db: AsyncSession, standing: Standing | None = None) -> list[CellGroup]:
    """Households with cameras in service grouped by their stored cell: one row per cell
    (and per located or not), with the bounding box of the homes' locations."""
    homes = (
        select(
            Household.location_cell.label("cell"),
            Household.latitude.label("lat"),
            Household.longitude.label("lng"),
            func.count(Device.id).label("cameras"),
        )
        .join(Device, Device.household_id == Household.id)
        .where(Device.revoked_at.is_(None), *(standing.conditions() if standing else ()))
        .group_by(Household.id, Household.location_cell, Household.latitude, Household.longitude)
        .subquery()
    )
    located = case((and_(homes.c.lat.is_not(None), homes.c.lng.is_not(None)), 1), else_=0).label(
        "located"
    )
    rows = await db.execute(
        select(
            homes.c.cell,
            located,
            func.count(),
            func.sum(homes.c.cameras),
            func.min(homes.c.lat),
            func.max(homes.c.lat),
            func.min(homes.c.lng),
            func.max(homes.c.lng),
        ).group_by(homes.c.cell, located)
    )
    return [
        CellGroup(cell, bool(flag), int(n), int(cams), south, north, west, east)
        for cell, flag, n, cams, south, north, west, east in rows
    ]


async def coverage(
    db: AsyncSession,
    *,
    resolution: int,
    min_cameras: int,
    min_households: int,
    now: datetime,
    standing: Standing | None = None,
    round_to: int = 1,
) -> Coverage:
    """The counts. With `standing`, only the homes it admits are placed (the published
    map, transparency/tasks.py); without, every camera in service."""
    tally = _Tally()
    if resolution > CELL_RESOLUTION:  # finer than the stored cells: home by home
        tally.add_homes(await household_cameras(db, standing=standing), resolution)
    else:
        one_by_one: list[str | None] = []
        for group in await cell_cameras(db, standing):
            if not group.located:
                tally.unlocated += group.cameras
                continue
            cell = box_cell(group, resolution)
            if cell is None:
                one_by_one.append(group.cell)
            else:
                tally.add(cell, group.households, group.cameras)
        if one_by_one:
            tally.add_homes(await household_cameras(db, one_by_one, standing), resolution)
    unplaced = 0
    if standing is not None:
        in_service = await db.scalar(
            select(func.count(Device.id)).where(Device.revoked_at.is_(None))
        )
        unplaced = max(0, int(in_service or 0) - sum(tally.cameras.values()) - tally.unlocated)
    return _counted(
        tally,
        resolution=resolution,
        min_cameras=min_cameras,
        min_households=min_households,
        now=now,
        round_to=round_to,
        unplaced=unplaced,
    )
