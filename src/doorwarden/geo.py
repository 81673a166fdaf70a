"""Geography: H3 cells for indexing, shapely for exact containment, one code path on
SQLite and PostgreSQL (no PostGIS, no SpatiaLite).

A household's location is stored with its H3 cell at `CELL_RESOLUTION` (about 0.1 km²,
cells ~350 m across). An area query takes every cell the polygon overlaps (a cover, so
no camera near an edge is missed), selects candidates by that indexed column, then keeps
those whose point lies in the polygon. Polygons are GeoJSON (longitude, latitude), parsed
strictly: an area decides who is asked for footage, so a malformed one is refused, never
guessed at (no unclosed ring is closed, no self-intersection repaired).

Decisions, each tested in tests/unit/test_geo.py:

* Edges are straight lines in longitude/latitude, as GeoJSON (RFC 7946 §3.1.1) and
  shapely take them; areas are measured on the sphere.
* The boundary belongs to the area (a closed set, like PostGIS's ST_Covers): a point on
  an edge, on a vertex or on the rim of a hole is inside. In floating point "exactly on"
  a slanted edge is a matter of rounding; only axis-parallel edges and vertices are
  reliably hit, and they count as inside.
* Holes are outside; the parts of a MultiPolygon may not overlap (shapely validity).
* Polygons crossing the antimeridian (or wider than 180° of longitude) are refused: a
  ring from 179° to -179° is read as the long way round the world, never as 2° wide.
* The cover is capped (`MAX_COVER_CELLS`): an area that would need more cells than that
  is refused with a GeoError rather than sent to the database as a huge IN list.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable, Sequence
from typing import Any, TypeAlias

import h3
import numpy as np
import shapely
from shapely.geometry import MultiPolygon, mapping, shape
from shapely.validation import explain_validity

CELL_RESOLUTION = 9
MAX_VERTICES = 2000  # a jurisdiction's outline; refuses junk that would cost seconds
MAX_GEOJSON_BYTES = 512 * 1024
# About 1,050 km² of compact area at CELL_RESOLUTION, or a 1 km² strip some 1,500 km long:
# far beyond a community request (at most 0.5 sq mi, ~15-40 cells), and 2 IN lists.
MAX_COVER_CELLS = 10_000
EARTH_RADIUS_KM = 6371.0088  # mean radius (IUGG)
KM2_PER_SQ_MILE = 2.589988110336  # (1.609344 km)², exact
# H3 draws a cell's edges straight in its face's gnomonic projection, shapely straight in
# longitude/latitude: the two differ by at most ~3e-8° (3 mm) at resolution 9. The cover
# is computed for the area grown by 30 times that, so such a sliver can never drop a cell.
COVER_MARGIN_DEG = 1e-6

# A shapely Polygon or MultiPolygon (shapely ships no type hints).
Area: TypeAlias = Any


class GeoError(ValueError):
    """A polygon or location that cannot be used; the message says why."""


def _location(latitude: float | None, longitude: float | None) -> tuple[float, float] | None:
    """(latitude, longitude) as floats, or None for a missing or impossible location."""
    if latitude is None or longitude is None:
        return None
    try:
        lat, lng = float(latitude), float(longitude)
    except (TypeError, ValueError, OverflowError):
        return None
    if math.isfinite(lat) and math.isfinite(lng) and -90 <= lat <= 90 and -180 <= lng <= 180:
        return lat, lng
    return None


def cell_of(latitude: float | None, longitude: float | None) -> str | None:
    """The location's cell, or None for a missing or impossible location."""
    location = _location(latitude, longitude)
    if location is None:
        return None
    return str(h3.latlng_to_cell(*location, CELL_RESOLUTION))


def _check_position(position: Any) -> None:
    if (
        not isinstance(position, list | tuple)
        or len(position) not in (2, 3)
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in position)
    ):
        raise GeoError("each position must be [longitude, latitude] (numbers)")
    try:
        values = [float(v) for v in position]
    except OverflowError:
        raise GeoError("coordinates must be finite numbers") from None
    if not all(math.isfinite(v) for v in values):
        raise GeoError("coordinates must be finite numbers")
    lng, lat = values[0], values[1]
    if not (-180 <= lng <= 180 and -90 <= lat <= 90):
        raise GeoError("a position is outside longitude -180..180 / latitude -90..90")


def _check_rings(rings: Any) -> int:
    if not isinstance(rings, list | tuple) or not rings:
        raise GeoError("a polygon needs at least one ring")
    vertices = 0
    for ring in rings:
        if not isinstance(ring, list | tuple) or len(ring) < 4:
            raise GeoError("each ring needs at least 4 positions (closed)")
        vertices += len(ring)
        if vertices > MAX_VERTICES:  # before looking at every one of a million positions
            raise GeoError(f"the area has more than {MAX_VERTICES} positions")
        for position in ring:
            _check_position(position)
        if [float(v) for v in ring[0][:2]] != [float(v) for v in ring[-1][:2]]:
            raise GeoError("each ring must be closed (first position = last position)")
    return vertices


def _flat(rings: Sequence[Any]) -> list[list[tuple[float, float]]]:
    """Rings as 2-D float positions (an altitude, which RFC 7946 allows, is dropped)."""
    return [[(float(p[0]), float(p[1])) for p in ring] for ring in rings]


def parse_area(value: str | dict[str, Any]) -> Area:
    """A GeoJSON Polygon or MultiPolygon (or a Feature holding one) as a valid shapely
    geometry; GeoError says what is wrong with anything else."""
    data: Any = value
    if isinstance(data, str):
        if len(data.encode()) > MAX_GEOJSON_BYTES:
            raise GeoError(f"the area is larger than {MAX_GEOJSON_BYTES} bytes")
        try:
            data = json.loads(data)
        except (ValueError, RecursionError):
            raise GeoError("the area is not JSON") from None
    if not isinstance(data, dict):
        raise GeoError("the area must be a GeoJSON object")
    if data.get("type") == "Feature":
        data = data.get("geometry")
        if not isinstance(data, dict):
            raise GeoError("the Feature has no geometry")
    kind = data.get("type")
    coordinates: Any = data.get("coordinates")
    if kind == "Polygon":
        _check_rings(coordinates)
        flat: Any = _flat(coordinates)
    elif kind == "MultiPolygon":
        if not isinstance(coordinates, list | tuple) or not coordinates:
            raise GeoError("a MultiPolygon needs at least one polygon")
        vertices = 0
        for polygon in coordinates:
            vertices += _check_rings(polygon)
            if vertices > MAX_VERTICES:
                raise GeoError(f"the area has more than {MAX_VERTICES} positions")
        flat = [_flat(polygon) for polygon in coordinates]
    else:
        raise GeoError("the area must be a GeoJSON Polygon or MultiPolygon")
    geometry = shape({"type": kind, "coordinates": flat})
    if not geometry.is_valid:
        raise GeoError(f"the area is not a valid polygon: {explain_validity(geometry)}")
    if geometry.is_empty or geometry.area == 0:
        raise GeoError("the area is empty")
    if geometry.bounds[2] - geometry.bounds[0] > 180:
        raise GeoError(
            "areas crossing the antimeridian (or wider than 180° of longitude) are not supported"
        )
    shapely.prepare(geometry)
    return geometry


def to_geojson(area: Area) -> dict[str, Any]:
    return dict(mapping(area))


def dumps(area: Area) -> str:
    return json.dumps(to_geojson(area), separators=(",", ":"))


def _polygons(area: Area) -> list[Any]:
    return list(area.geoms) if isinstance(area, MultiPolygon) else [area]


def _ring_area_km2(ring: Sequence[tuple[float, ...]]) -> float:
    """Area enclosed by a ring on the sphere (Chamberlain & Duquette, "Some algorithms
    for polygons on a sphere", JPL 2007). Exact for rings whose edges run along meridians
    and parallels; for others within well under 0.5% at the sizes we check."""
    total = 0.0
    for (lng1, lat1, *_), (lng2, lat2, *_) in itertools.pairwise(ring):
        total += math.radians(lng2 - lng1) * (
            2 + math.sin(math.radians(lat1)) + math.sin(math.radians(lat2))
        )
    return abs(total) * EARTH_RADIUS_KM**2 / 2


def area_km2(area: Area) -> float:
    """The area on the sphere, holes subtracted, the parts of a MultiPolygon added."""
    return sum(
        _ring_area_km2(list(p.exterior.coords))
        - sum(_ring_area_km2(list(i.coords)) for i in p.interiors)
        for p in _polygons(area)
    )


def square_miles(km2: float) -> float:
    return km2 / KM2_PER_SQ_MILE


def _haversine_km(lng1: float, lat1: float, lng2: float, lat2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lng2 - lng1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def perimeter_km(area: Area) -> float:
    """The length of every ring, holes included."""
    return sum(
        _haversine_km(a[0], a[1], b[0], b[1])
        for polygon in _polygons(area)
        for ring in [polygon.exterior, *polygon.interiors]
        for a, b in itertools.pairwise(ring.coords)
    )


def estimated_cells(area: Area, resolution: int = CELL_RESOLUTION) -> int:
    """About how many cells overlap the area (the inside, plus a band along every ring),
    without computing them, from the size of a cell where the area is: a huge area is
    refused before any work is done."""
    centre = area.representative_point()
    cell = h3.latlng_to_cell(centre.y, centre.x, resolution)
    cell_km2 = float(h3.cell_area(cell, "km^2"))
    edge_km = math.sqrt(2 * cell_km2 / (3 * math.sqrt(3)))  # of a regular hexagon that size
    inside = area_km2(area) / cell_km2
    return math.ceil(inside + 1.5 * perimeter_km(area) / edge_km + 7 * len(_polygons(area)))


def covering_cells(
    area: Area, resolution: int = CELL_RESOLUTION, *, max_cells: int = MAX_COVER_CELLS
) -> list[str]:
    """Every cell that overlaps the area (not only those whose centre lies in it), in
    order. GeoError when that would be more than `max_cells`."""
    estimate = estimated_cells(area, resolution)
    if estimate > 4 * max_cells:
        raise GeoError(_too_many(estimate, max_cells, resolution, "about "))
    grown = shapely.buffer(area, COVER_MARGIN_DEG, quad_segs=1, join_style="mitre")
    shape_ = h3.geo_to_h3shape(to_geojson(grown))
    cells = sorted(str(c) for c in h3.h3shape_to_cells_experimental(shape_, resolution, "overlap"))
    if len(cells) > max_cells:
        raise GeoError(_too_many(len(cells), max_cells, resolution, ""))
    return cells


def _too_many(cells: int, limit: int, resolution: int, about: str) -> str:
    km2 = limit * float(h3.average_hexagon_area(resolution, "km^2"))
    return (
        f"the area is too large to search: it overlaps {about}{cells:,} cells, at most "
        f"{limit:,} (about {km2:,.0f} km² of compact area) can be searched at once"
    )


def contains(area: Area, latitude: float | None, longitude: float | None) -> bool:
    """Whether the location lies in the area, its boundary included; False for a missing
    or impossible location."""
    location = _location(latitude, longitude)
    if location is None:
        return False
    return bool(shapely.intersects_xy(area, location[1], location[0]))


def contained(area: Area, points: Iterable[tuple[float | None, float | None]]) -> list[bool]:
    """`contains` for many (latitude, longitude) points in one vectorised call."""
    pts = np.asarray(
        [(math.nan if a is None else a, math.nan if b is None else b) for a, b in points],
        dtype=np.float64,
    ).reshape(-1, 2)
    return within(area, pts[:, 0], pts[:, 1]).tolist()  # type: ignore[no-any-return]


def within(area: Area, latitudes: np.ndarray, longitudes: np.ndarray) -> np.ndarray:
    """`contains` for arrays of coordinates: a boolean mask. NaN (a missing coordinate)
    and impossible values are outside."""
    lat, lng = np.asarray(latitudes, dtype=np.float64), np.asarray(longitudes, dtype=np.float64)
    if not len(lat):
        return np.zeros(0, dtype=bool)
    with np.errstate(invalid="ignore"):  # NaN compares False: a missing location is out
        valid = (np.abs(lat) <= 90) & (np.abs(lng) <= 180)
    inside = shapely.intersects_xy(area, np.where(valid, lng, 0.0), np.where(valid, lat, 0.0))
    return inside & valid  # type: ignore[no-any-return]
