"""geo.py: strict GeoJSON areas, their size on the sphere, the H3 cover that pre-filters
area queries, and exact containment (the boundary counts as inside)."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import h3
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from doorwarden import geo


def polygon(*rings: list[list[float]]) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [list(r) for r in rings]}


def box(west: float, south: float, east: float, north: float) -> list[list[float]]:
    return [[west, south], [east, south], [east, north], [west, north], [west, south]]


SQUARE = box(0, 0, 1, 1)
BOWTIE = [[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{", "the area is not JSON"),
        ("[" * 300_000 + "]" * 300_000, "larger than"),
        ("[" * 50_000 + "]" * 50_000, "not JSON"),  # nested too deep for the parser
        ("[]", "must be a GeoJSON object"),
        ('"Polygon"', "must be a GeoJSON object"),
        ({"type": "Point", "coordinates": [0, 0]}, "must be a GeoJSON Polygon or MultiPolygon"),
        ({"type": "polygon", "coordinates": [SQUARE]}, "must be a GeoJSON Polygon"),
        ({"type": "FeatureCollection", "features": []}, "must be a GeoJSON Polygon"),
        ({"type": "GeometryCollection", "geometries": []}, "must be a GeoJSON Polygon"),
        ({"type": "Feature", "geometry": None}, "the Feature has no geometry"),
        ({"type": "Polygon"}, "a polygon needs at least one ring"),
        ({"type": "Polygon", "coordinates": []}, "a polygon needs at least one ring"),
        ({"type": "Polygon", "coordinates": "0,0"}, "a polygon needs at least one ring"),
        (polygon([[0, 0], [1, 0], [0, 0]]), "at least 4 positions (closed)"),
        (polygon([[0, 0], [1, 0], [1, 1], [0, 1]]), "must be closed"),  # unclosed
        (polygon([[0, 0], [1, 0], [1, 1], [0, 1], [0, 0.5]]), "must be closed"),
        (polygon([[0, 0], [1, 0], [1], [0, 0]]), "[longitude, latitude]"),
        (polygon([[0, 0], [1, 0], [1, 1, 1, 1], [0, 0]]), "[longitude, latitude]"),
        (polygon([[0, 0], [1, 0], ["1", "1"], [0, 0]]), "[longitude, latitude]"),
        (polygon([[0, 0], [1, 0], [True, 1], [0, 0]]), "[longitude, latitude]"),
        (polygon([[0, 0], [1, 0], None, [0, 0]]), "[longitude, latitude]"),
        ('{"type":"Polygon","coordinates":[[[0,0],[1,0],[NaN,1],[0,0]]]}', "finite"),
        ('{"type":"Polygon","coordinates":[[[0,0],[1,0],[Infinity,1],[0,0]]]}', "finite"),
        ('{"type":"Polygon","coordinates":[[[0,0],[1,0],[1e400,1],[0,0]]]}', "finite"),
        (polygon([[0, 0], [1, 0], [10**400, 1], [0, 0]]), "finite"),
        (polygon([[0, 0], [1, 0], [1, 1, math.nan], [0, 0]]), "finite"),  # altitude too
        (polygon(box(0, 0, 1, 91)), "outside longitude -180..180 / latitude -90..90"),
        (polygon(box(180, 0, 181, 1)), "outside longitude"),
        (polygon(BOWTIE), "not a valid polygon: Self-intersection"),
        (polygon(SQUARE, box(2, 2, 3, 3)), "not a valid polygon: Hole lies outside shell"),
        (polygon(SQUARE, SQUARE), "not a valid polygon"),  # a hole as large as the shell
        (polygon([[0, 0], [1, 1], [2, 2], [0, 0]]), "not a valid polygon"),  # no area
        (polygon([[0, 0], [0, 0], [0, 0], [0, 0]]), "not a valid polygon"),
        (
            {"type": "MultiPolygon", "coordinates": [[SQUARE], [box(0.5, 0.5, 2, 2)]]},
            "not a valid polygon: Self-intersection",  # the parts overlap
        ),
        ({"type": "MultiPolygon", "coordinates": []}, "a MultiPolygon needs at least one polygon"),
        ({"type": "MultiPolygon", "coordinates": [[]]}, "a polygon needs at least one ring"),
        (polygon(box(179, 0, -179, 1)), "crossing the antimeridian"),  # the 2° the short way
        (polygon(box(-100, 0, 100, 1)), "wider than 180° of longitude"),
        (
            polygon([[0.001 * i, 0] for i in range(2001)] + [[1, 1], [0, 0]]),
            "more than 2000 positions",
        ),
        (
            {
                "type": "MultiPolygon",
                "coordinates": [[box(i * 0.4, 0, i * 0.4 + 0.2, 1)] for i in range(401)],
            },
            "more than 2000 positions",
        ),
    ],
)
def test_a_bad_area_is_refused_with_a_clear_message(value: Any, message: str) -> None:
    with pytest.raises(geo.GeoError) as refused:
        geo.parse_area(value)
    assert message in str(refused.value)


def test_the_vertex_limit_is_checked_before_every_position_is() -> None:
    huge = polygon([[0, 0]] * 1_000_000)
    started = time.perf_counter()
    with pytest.raises(geo.GeoError, match="more than 2000 positions"):
        geo.parse_area(huge)
    assert time.perf_counter() - started < 0.5


def test_accepted_forms() -> None:
    plain = geo.parse_area(polygon(SQUARE))
    assert plain.equals(shapely.box(0, 0, 1, 1))
    feature = {"type": "Feature", "properties": {}, "geometry": polygon(SQUARE)}
    assert geo.parse_area(feature).equals(plain)
    assert geo.parse_area(json.dumps(feature)).equals(plain)
    # Either winding (RFC 7946 asks parsers not to refuse the other one), tuples as Python
    # code builds them, integers, and an altitude, which is dropped.
    assert geo.parse_area(polygon(SQUARE[::-1])).equals(plain)
    assert geo.parse_area({"type": "Polygon", "coordinates": (tuple(map(tuple, SQUARE)),)})
    three_d = geo.parse_area(polygon([[*p, 12.5] for p in SQUARE]))
    assert not three_d.has_z and three_d.equals(plain)
    assert geo.parse_area(polygon(box(179, 0, 180, 1)))  # up to the antimeridian is fine
    assert geo.parse_area(polygon(box(-1, 89, 1, 90)))  # and up to the pole


def test_dumps_and_to_geojson_round_trip() -> None:
    area = geo.parse_area(
        {
            "type": "MultiPolygon",
            "coordinates": [[SQUARE, box(0.2, 0.2, 0.4, 0.4)], [box(2, 2, 3, 3)]],
        }
    )
    assert geo.to_geojson(area)["type"] == "MultiPolygon"
    again = geo.parse_area(geo.dumps(area))
    assert again.equals(area)
    assert " " not in geo.dumps(area)


# ---------------------------------------------------------------- area


def spherical_rectangle_km2(south: float, north: float, west: float, east: float) -> float:
    """The closed form for a latitude/longitude rectangle on a sphere: R²·Δλ·(sin φ2 - sin φ1)."""
    r = geo.EARTH_RADIUS_KM
    return (
        r
        * r
        * math.radians(east - west)
        * (math.sin(math.radians(north)) - math.sin(math.radians(south)))
    )


def test_a_one_degree_cell_at_the_equator() -> None:
    km2 = geo.area_km2(geo.parse_area(polygon(SQUARE)))
    assert km2 == pytest.approx(spherical_rectangle_km2(0, 1, 0, 1), rel=1e-9)
    # 111.195 km (1° of arc on the mean sphere) squared, less a hair for the converging
    # meridians: 12,363.6 km². (On the WGS84 ellipsoid the same cell is ~12,308 km².)
    assert km2 == pytest.approx(12_363.6, abs=0.5)
    assert km2 == pytest.approx(12_308, rel=0.005)


def test_a_city_block_computed_by_hand() -> None:
    # A Manhattan block: 80 m (north-south) by 274 m (east-west) at 40.7580° N. One degree
    # of latitude is 6371.0088 km · π/180 = 111.1951 km; one of longitude there is that
    # times cos 40.7580° = 0.75752, i.e. 84.2319 km.
    south, west = 40.7580, -73.9855
    north = south + 0.080 / 111.1951
    east = west + 0.274 / (111.1951 * math.cos(math.radians(40.7580)))
    km2 = geo.area_km2(geo.parse_area(polygon(box(west, south, east, north))))
    assert km2 == pytest.approx(0.080 * 0.274, rel=1e-4)  # 0.02192 km²
    assert geo.square_miles(km2) == pytest.approx(0.02192 / 2.589988, rel=1e-4)


def test_holes_are_subtracted_and_parts_added() -> None:
    ring = geo.parse_area(polygon(box(0, 0, 0.1, 0.1), box(0.02, 0.02, 0.06, 0.06)))
    expected = spherical_rectangle_km2(0, 0.1, 0, 0.1) - spherical_rectangle_km2(
        0.02, 0.06, 0.02, 0.06
    )
    assert geo.area_km2(ring) == pytest.approx(expected, rel=1e-9)
    parts = geo.parse_area(
        {"type": "MultiPolygon", "coordinates": [[box(0, 0, 0.1, 0.1)], [box(0, 60, 0.1, 60.1)]]}
    )
    expected = spherical_rectangle_km2(0, 0.1, 0, 0.1) + spherical_rectangle_km2(60, 60.1, 0, 0.1)
    assert geo.area_km2(parts) == pytest.approx(expected, rel=1e-9)


def test_square_miles() -> None:
    assert geo.square_miles(2.589988110336) == pytest.approx(1.0, rel=1e-12)
    # Half a square mile, the community-request limit: a square of 0.7071 mi = 1.138 km.
    side = math.sqrt(0.5 * 2.589988110336)
    lat = 51.5
    area = geo.parse_area(
        polygon(box(0, lat, side / (111.1951 * math.cos(math.radians(lat))), lat + side / 111.1951))
    )
    assert geo.square_miles(geo.area_km2(area)) == pytest.approx(0.5, rel=1e-3)


# ---------------------------------------------------------------- cells and containment


def test_cell_of() -> None:
    assert geo.cell_of(51.5, -0.1) == h3.latlng_to_cell(51.5, -0.1, geo.CELL_RESOLUTION)
    assert h3.get_resolution(geo.cell_of(0, 0)) == 9
    assert geo.cell_of(90, 180) is not None
    for lat, lng in [(None, 0.0), (0.0, None), (None, None), (math.nan, 0.0), (0.0, math.inf),
                     (91.0, 0.0), (0.0, -180.5)]:  # fmt: skip
        assert geo.cell_of(lat, lng) is None


def test_the_boundary_is_inside_holes_are_outside() -> None:
    area = geo.parse_area(polygon(box(0, 0, 0.01, 0.01), box(0.004, 0.004, 0.006, 0.006)))
    cases = {
        (0.002, 0.002): True,  # inside
        (0.02, 0.002): False,  # outside
        (0.0, 0.005): True,  # on the western edge
        (0.005, 0.01): True,  # on the northern edge
        (0.01, 0.01): True,  # on a corner
        (0.005, 0.005): False,  # in the hole
        (0.004, 0.005): True,  # on the hole's rim
        (0.006, 0.006): True,  # on a corner of the hole
    }
    for (lat, lng), expected in cases.items():
        assert geo.contains(area, lat, lng) is expected, (lat, lng)
    assert geo.contained(area, list(cases)) == list(cases.values())


def test_missing_or_impossible_locations_are_in_no_area() -> None:
    everywhere = geo.parse_area(polygon(box(-180, -90, 0, 90)))
    points: list[tuple[float | None, float | None]] = [
        (None, None), (10.0, None), (None, -10.0), (math.nan, -10.0), (10.0, -math.inf),
        (91.0, -10.0), (10.0, -181.0), (10.0, -10.0),
    ]  # fmt: skip
    assert [geo.contains(everywhere, lat, lng) for lat, lng in points] == [False] * 7 + [True]
    assert geo.contained(everywhere, points) == [False] * 7 + [True]
    assert geo.contained(everywhere, []) == []
    # The array form, as the area query calls it (NaN for a missing coordinate).
    lats = [math.nan if a is None else a for a, _ in points]
    lngs = [math.nan if b is None else b for _, b in points]
    assert geo.within(everywhere, lats, lngs).tolist() == [False] * 7 + [True]
    assert geo.within(everywhere, [], []).tolist() == []


def test_multipolygon_containment_and_cover() -> None:
    parts = geo.parse_area(
        {
            "type": "MultiPolygon",
            "coordinates": [[box(-0.1, 51.5, -0.099, 51.501)], [box(2.35, 48.85, 2.351, 48.851)]],
        }
    )
    assert geo.contains(parts, 51.5005, -0.0995) and geo.contains(parts, 48.8505, 2.3505)
    assert not geo.contains(parts, 50.0, 1.0)
    cells = geo.covering_cells(parts)
    assert geo.cell_of(51.5005, -0.0995) in cells and geo.cell_of(48.8505, 2.3505) in cells
    assert len(cells) < 10  # two small patches, not the land between them


def test_the_cover_leaves_out_cells_inside_a_hole_and_keeps_the_rim() -> None:
    outer, hole = box(-0.13, 51.49, -0.07, 51.53), box(-0.11, 51.50, -0.09, 51.52)
    area = geo.parse_area(polygon(outer, hole))
    cells = set(geo.covering_cells(area))
    assert geo.cell_of(51.51, -0.10) not in cells  # the hole's middle
    assert geo.cell_of(51.50, -0.10) in cells  # on the hole's rim: the rim is in the area
    solid = set(geo.covering_cells(geo.parse_area(polygon(outer))))
    assert cells < solid


def test_a_polygon_smaller_than_a_cell_is_covered_by_its_cell() -> None:
    lat, lng = 51.5, -0.1
    tiny = geo.parse_area(polygon(box(lng, lat, lng + 1e-5, lat + 1e-5)))  # ~1 m
    assert geo.cell_of(lat + 5e-6, lng + 5e-6) in geo.covering_cells(tiny)


def test_a_polygon_around_a_cell_vertex_is_covered_by_every_cell_meeting_there() -> None:
    cell = h3.latlng_to_cell(40.7, -74.0, geo.CELL_RESOLUTION)
    for lat, lng in h3.cell_to_boundary(cell):
        d = 1e-7  # ~1 cm around the vertex
        area = geo.parse_area(polygon(box(lng - d, lat - d, lng + d, lat + d)))
        meeting = {geo.cell_of(lat + a, lng + b) for a in (-d / 2, d / 2) for b in (-d / 2, d / 2)}
        assert meeting <= set(geo.covering_cells(area))
        assert geo.cell_of(lat, lng) in geo.covering_cells(area)


def test_too_large_an_area_is_refused_rather_than_searched() -> None:
    # 40 km x 40 km: ~15,000 cells at resolution 9, over the cap.
    metro = geo.parse_area(polygon(box(-0.3, 51.3, 0.28, 51.66)))
    with pytest.raises(geo.GeoError, match=r"too large to search: it overlaps 1\d,\d{3} cells"):
        geo.covering_cells(metro)
    # A continent is refused from its estimate, before any cell is computed.
    continent = geo.parse_area(polygon(box(-10, 35, 30, 60)))
    started = time.perf_counter()
    with pytest.raises(geo.GeoError, match="overlaps about"):
        geo.covering_cells(continent)
    assert time.perf_counter() - started < 0.5
    # A long thin strip the size of a community request is fine: ~100 m x 12 km.
    strip = geo.parse_area(polygon(box(-0.1, 51.5, 0.073, 51.5009)))
    assert geo.square_miles(geo.area_km2(strip)) < 0.5
    assert 60 < len(geo.covering_cells(strip)) < geo.MAX_COVER_CELLS
    assert len(geo.covering_cells(metro, max_cells=20_000)) > 10_000


def test_the_estimate_is_an_upper_bound_for_ordinary_shapes() -> None:
    for area in [
        geo.parse_area(polygon(box(-0.1, 51.5, -0.09, 51.51))),
        geo.parse_area(polygon(box(-0.1, 51.5, 0.073, 51.5009))),
        geo.parse_area(polygon(box(-0.3, 51.3, 0.28, 51.66))),
    ]:
        actual = len(geo.covering_cells(area, max_cells=10**6))
        assert actual <= geo.estimated_cells(area) <= 4 * actual + 50, actual


# ---------------------------------------------------------------- properties


@st.composite
def star_polygons(draw: st.DrawFn) -> tuple[float, float, list[tuple[float, float]]]:
    """A simple polygon star-shaped around its centre (a few metres to ~1.5 km across)
    anywhere from 70° S to 70° N away from the antimeridian, as (lat, lng, ring)."""
    lat = draw(st.floats(-70, 70))
    lng = draw(st.floats(-175, 175))
    size = draw(st.floats(2e-5, 0.015))  # degrees
    n = draw(st.integers(3, 12))
    gaps = draw(st.lists(st.floats(0.2, 1.0), min_size=n, max_size=n))
    radii = draw(st.lists(st.floats(0.2, 1.0), min_size=n, max_size=n))
    total, angle, ring = sum(gaps), 0.0, []
    for gap, radius in zip(gaps, radii, strict=True):
        angle += 2 * math.pi * gap / total
        ring.append((lng + size * radius * math.cos(angle), lat + size * radius * math.sin(angle)))
    return lat, lng, [*ring, ring[0]]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    star_polygons(),
    st.lists(
        st.tuples(st.floats(0, 1), st.floats(0, 1), st.integers(0, 11)), min_size=1, max_size=20
    ),
)
def test_every_point_inside_has_its_cell_in_the_cover(
    star: tuple[float, float, list[tuple[float, float]]],
    picks: list[tuple[float, float, int]],
) -> None:
    lat, lng, ring = star
    area = geo.parse_area(polygon([list(p) for p in ring]))
    cells = set(geo.covering_cells(area))
    edges = len(ring) - 1
    points = []
    for t, s, i in picks:
        # The segment from the centre to a point of an edge lies in a star-shaped
        # polygon; t = 1 puts the point on the edge itself (give or take rounding).
        (x1, y1), (x2, y2) = ring[i % edges], ring[i % edges + 1]
        bx, by = x1 + s * (x2 - x1), y1 + s * (y2 - y1)
        points.append((lat + t * (by - lat), lng + t * (bx - lng)))
    inside = geo.contained(area, points)
    assert geo.within(area, [a for a, _ in points], [b for _, b in points]).tolist() == inside
    for (plat, plng), flag in zip(points, inside, strict=True):
        covered = area.covers(shapely.Point(plng, plat))
        assert geo.contains(area, plat, plng) is flag is covered
        if flag:
            assert geo.cell_of(plat, plng) in cells
