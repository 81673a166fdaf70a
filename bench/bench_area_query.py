"""Which cameras lie in a community-request area, with a million cameras: latency.

A fresh migrated database (a temp SQLite file, and/or a temporary PostgreSQL database)
gets a metro area's cameras by bulk insert: households spread over a 40 km x 40 km box
(a dense centre, a dozen suburban centres, a sparse background; about 1% without a
location), each with 1 or 2 cameras in service (the target count, 1,000,000 by default),
plus about 2% revoked cameras, which must not be found. Then `devices.area.cameras_in`
is timed for random community-request areas (at most 0.5 sq mi, from 0.05: rectangles,
circles, irregular star shapes, street corridors, L shapes, rings with a hole, pairs of
blocks as a MultiPolygon), centred where people live (a random household) or, one time in
four, anywhere in the box. Each query runs in its own session, as a request would.

Baselines in the same run, each finding the same cameras (checked): the query without
the cell pre-filter, as one would write it without an index on the location (a
latitude/longitude bounding-box scan of the households joined with their devices, then
the same exact test); and the previous design (migration 0006): candidates by the
households' cell index, joined to their devices, through SQLAlchemy's result rows. The
current one reads the cameras' own copy of the location from one partial index
(migration 0007), through the driver.

    .venv/bin/python bench/bench_area_query.py [--backend sqlite|postgresql|both]
        [--cameras 1000000] [--polygons 200] [--baseline-polygons 50] [--quick]

PostgreSQL: a temporary database is created on --pg-url (default the test server,
postgresql+asyncpg://postgres@127.0.0.1:5432/test), migrated, analysed, and dropped.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from doorwarden import geo
from doorwarden.db import create_engine, create_sessionmaker, is_sqlite, upgrade_database
from doorwarden.devices.area import CELL_BATCH, AreaCamera, cameras_in, households_in, padded
from doorwarden.devices.models import Device
from doorwarden.households.models import Household

PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
CENTRE = (41.88, -87.63)  # latitude, longitude of the box's centre
BOX_KM = 40.0
M_PER_DEG = 6371008.8 * math.pi / 180
BATCH = 20_000
MAX_SQ_MI = 0.5
TARGET_P95_MS = 20.0


# ---------------------------------------------------------------- population


def _to_lat_lng(x_m: np.ndarray, y_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lat = CENTRE[0] + y_m / M_PER_DEG
    lng = CENTRE[1] + x_m / (M_PER_DEG * math.cos(math.radians(CENTRE[0])))
    return lat, lng


def locations(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """n points in the box: 25% around the centre (sigma 4 km), 50% around 12 suburban
    centres (sigma 1.2-3 km), 25% uniform; anything outside the box is drawn again."""
    half = BOX_KM * 500
    towns = rng.uniform(-0.8 * half, 0.8 * half, size=(12, 2))
    town_sigma = rng.uniform(1200, 3000, size=12)
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    have = 0
    while have < n:
        m = int((n - have) * 1.1) + 100
        kind = rng.choice(3, size=m, p=[0.25, 0.5, 0.25])
        town = rng.integers(0, 12, size=m)
        x = np.where(
            kind == 0,
            rng.normal(0, 4000, m),
            np.where(
                kind == 1, rng.normal(towns[town, 0], town_sigma[town]), rng.uniform(-half, half, m)
            ),
        )
        y = np.where(
            kind == 0,
            rng.normal(0, 4000, m),
            np.where(
                kind == 1, rng.normal(towns[town, 1], town_sigma[town]), rng.uniform(-half, half, m)
            ),
        )
        keep = (np.abs(x) < half) & (np.abs(y) < half)
        xs.append(x[keep])
        ys.append(y[keep])
        have += int(keep.sum())
    return _to_lat_lng(np.concatenate(xs)[:n], np.concatenate(ys)[:n])  # fmt: skip


@dataclass
class Population:
    households: int
    cameras: int
    revoked: int
    unlocated: int
    seconds: float
    lat: np.ndarray
    lng: np.ndarray


def _uuids(n: int, rnd: random.Random) -> list[uuid.UUID]:
    return [uuid.UUID(int=rnd.getrandbits(128), version=4) for _ in range(n)]


HOME_COLUMNS = [
    "id", "name", "address", "address_key", "latitude", "longitude", "location_cell",
    "time_zone", "created_at",
]  # fmt: skip
DEVICE_COLUMNS = [
    "id", "household_id", "name", "public_key", "token_hash", "token_prefix", "revoked_at",
    "created_at", "latitude", "longitude", "location_cell",
]  # fmt: skip


async def _bulk_insert(
    url: str, homes: list[tuple[Any, ...]], devices: list[tuple[Any, ...]]
) -> None:
    """Straight to the driver (SQLAlchemy's per-value processing would take most of the
    time): executemany on SQLite, COPY on PostgreSQL, values in each one's own form."""
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            assert raw is not None
            if is_sqlite(url):
                await raw.execute("PRAGMA cache_size=-1000000")  # this connection only: 1 GB
                for table, columns, rows in (
                    ("households", HOME_COLUMNS, homes),
                    ("devices", DEVICE_COLUMNS, devices),
                ):
                    marks = ", ".join("?" * len(columns))
                    names = ", ".join(columns)
                    sql = f"INSERT INTO {table} ({names}) VALUES ({marks})"  # noqa: S608 - ours
                    for first in range(0, len(rows), BATCH):
                        await raw.executemany(
                            sql, [_sqlite_row(r) for r in rows[first : first + BATCH]]
                        )
            else:
                await raw.copy_records_to_table("households", records=homes, columns=HOME_COLUMNS)
                await raw.copy_records_to_table("devices", records=devices, columns=DEVICE_COLUMNS)
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            # As autovacuum leaves a table that has been in service: PostgreSQL's
            # index-only scans need the visibility map that VACUUM writes.
            await conn.execute(text("ANALYZE" if is_sqlite(url) else "VACUUM ANALYZE"))
    finally:
        await engine.dispose()  # fmt: skip


def _sqlite_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """As SQLAlchemy stores them on SQLite: UUIDs as 32 hex digits, UTC times as text."""
    return tuple(
        v.hex if isinstance(v, uuid.UUID)
        else v.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(v, datetime)
        else v
        for v in row
    )  # fmt: skip


async def populate(url: str, cameras: int, seed: int) -> Population:
    """Households with 1-2 cameras each until `cameras` are in service, by bulk insert."""
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    rnd = random.Random(seed)  # noqa: S311 - a reproducible population, nothing secret
    households = round(cameras / 1.43)  # 43% of homes have a second camera
    extra = cameras - households
    per_home = np.ones(households, dtype=np.int64)
    per_home[rng.choice(households, size=extra, replace=False)] = 2
    lat, lng = locations(households, rng)
    unlocated = rng.random(households) < 0.01
    ids = _uuids(households, rnd)
    now = datetime(2026, 12, 1, tzinfo=UTC)
    homes: list[tuple[Any, ...]] = []
    for i in range(households):
        a, b = (None, None) if unlocated[i] else (float(lat[i]), float(lng[i]))
        homes.append(
            (ids[i], f"Home {i}", "", None, a, b, geo.cell_of(a, b), "America/Chicago", now)
        )
    revoked_at = datetime(2026, 11, 1, tzinfo=UTC)
    owners = np.repeat(np.arange(households), per_home)
    revoked_owner = rng.integers(0, households, size=cameras // 50)
    all_owners = np.concatenate([owners, revoked_owner])
    device_ids = _uuids(len(all_owners), rnd)
    devices = [
        (
            device_ids[k], ids[int(h)], "Front door", "A" * 43, f"{k:064x}", f"{k:016x}",
            revoked_at if k >= cameras else None, now, *homes[int(h)][4:7],  # its home's place
        )
        for k, h in enumerate(all_owners)
    ]  # fmt: skip
    await _bulk_insert(url, homes, devices)
    return Population(
        households=households,
        cameras=cameras,
        revoked=len(revoked_owner),
        unlocated=int(unlocated.sum()),
        seconds=time.perf_counter() - started,
        lat=lat[~unlocated],
        lng=lng[~unlocated],
    )


# ---------------------------------------------------------------- areas


def _shape(kind: str, rnd: random.Random) -> Any:
    """A shape around (0, 0) in metres, of no particular size."""
    turn = rnd.uniform(0, math.pi)
    if kind == "rectangle":
        aspect = rnd.uniform(1, 4)
        g = shapely.box(-aspect, -1, aspect, 1)
    elif kind == "circle":
        g = shapely.Point(0, 0).buffer(1, quad_segs=8)
    elif kind == "star":
        n = rnd.randint(7, 20)
        angles = sorted(rnd.uniform(0, 2 * math.pi) for _ in range(n))
        g = shapely.Polygon(
            [(r * math.cos(a), r * math.sin(a)) for a in angles for r in [rnd.uniform(0.4, 1)]]
        )
    elif kind == "corridor":  # a street: 80-150 m wide, up to 0.5 sq mi long
        g = shapely.box(-rnd.uniform(15, 50), -1, rnd.uniform(15, 50), 1)
    elif kind == "L":
        g = shapely.union(shapely.box(0, 0, 3, 1), shapely.box(0, 0, 1, 3))
    elif kind == "ring":
        g = (
            shapely.Point(0, 0)
            .buffer(1, quad_segs=8)
            .difference(
                shapely.Point(rnd.uniform(-0.2, 0.2), 0).buffer(rnd.uniform(0.3, 0.6), quad_segs=6)
            )
        )
    else:  # two blocks apart: a MultiPolygon
        gap = rnd.uniform(2.5, 5)
        g = shapely.MultiPolygon(
            [shapely.box(-gap - 1, -1, -gap + 1, 1), shapely.box(gap - 1, -1, gap + 1, 1)]
        )
    return shapely.affinity.rotate(g, turn, origin=(0, 0), use_radians=True)  # fmt: skip


KINDS = ["rectangle", "circle", "star", "corridor", "L", "ring", "multi"]


def areas(count: int, population: Population, seed: int) -> list[tuple[str, Any]]:
    rnd = random.Random(seed)  # noqa: S311 - reproducible areas
    found: list[tuple[str, Any]] = []
    coslat = math.cos(math.radians(CENTRE[0]))
    while len(found) < count:
        kind = KINDS[len(found) % len(KINDS)]
        g = _shape(kind, rnd)
        if kind == "corridor":  # a 80-150 m wide street, however long the area allows
            width_m = rnd.uniform(80, 150)
            g = shapely.affinity.scale(g, width_m / 2, width_m / 2, origin=(0, 0))
            target_km2 = rnd.uniform(0.05, MAX_SQ_MI) * geo.KM2_PER_SQ_MILE
            g = shapely.affinity.scale(g, target_km2 * 1e6 / g.area, 1, origin=(0, 0))
        else:
            target_km2 = rnd.uniform(0.05, MAX_SQ_MI) * geo.KM2_PER_SQ_MILE
            s = math.sqrt(target_km2 * 1e6 / g.area)
            g = shapely.affinity.scale(g, s, s, origin=(0, 0))
        if rnd.random() < 0.25:
            half = BOX_KM * 500
            lat, lng = _to_lat_lng(
                np.array([rnd.uniform(-half, half)]), np.array([rnd.uniform(-half, half)])
            )
            clat, clng = float(lat[0]), float(lng[0])
        else:
            i = rnd.randrange(len(population.lat))
            clat, clng = float(population.lat[i]), float(population.lng[i])
        placed = shapely.transform(
            g, lambda xy, a=clat, b=clng: np.column_stack(
                [b + xy[:, 0] / (M_PER_DEG * coslat), a + xy[:, 1] / M_PER_DEG]
            )
        )  # fmt: skip
        placed = shapely.set_precision(placed, 1e-7)  # 1 cm, as a map client would send
        try:
            area = geo.parse_area(geo.to_geojson(placed))
        except geo.GeoError as exc:
            raise AssertionError(f"a generated {kind} area was refused: {exc}") from exc
        if geo.square_miles(geo.area_km2(area)) > MAX_SQ_MI:
            continue
        found.append((kind, area))
    return found


# ---------------------------------------------------------------- queries


async def bbox_scan(db: AsyncSession, area: Any) -> list[AreaCamera]:
    """The baseline: no cell pre-filter, a bounding box on the coordinates, the same
    exact test."""
    west, south, east, north = area.bounds
    rows = (
        await db.execute(
            select(Household.id, Household.latitude, Household.longitude, Device.id)
            .join(Device, Device.household_id == Household.id)
            .where(
                Household.latitude.between(south, north),
                Household.longitude.between(west, east),
                Device.revoked_at.is_(None),
            )
        )
    ).all()
    inside = geo.contained(area, ((lat, lng) for _, lat, lng, _ in rows))
    return [AreaCamera(h, d) for (h, _, _, d), ok in zip(rows, inside, strict=True) if ok]


async def household_join(db: AsyncSession, area: Any) -> list[AreaCamera]:
    """The previous design: candidate homes by their cell (and the bounding box), joined
    to their cameras in service, the same exact test."""
    west, south, east, north = area.bounds
    found: list[AreaCamera] = []
    cells = geo.covering_cells(area)
    for first in range(0, len(cells), CELL_BATCH):
        rows = (
            await db.execute(
                select(Household.id, Household.latitude, Household.longitude, Device.id)
                .join(Device, Device.household_id == Household.id)
                .where(
                    Household.location_cell.in_(padded(cells[first : first + CELL_BATCH])),
                    Household.latitude.between(south, north),
                    Household.longitude.between(west, east),
                    Device.revoked_at.is_(None),
                )
            )
        ).all()
        inside = geo.contained(area, ((lat, lng) for _, lat, lng, _ in rows))
        found += [AreaCamera(h, d) for (h, _, _, d), ok in zip(rows, inside, strict=True) if ok]
    return found


async def timed(
    sessions: async_sessionmaker[AsyncSession], query: Any, area: Any
) -> tuple[float, Any]:
    """One query in its own session, as a request makes it (the timer includes taking the
    pooled connection and BEGIN)."""
    async with sessions() as db:
        started = time.perf_counter()
        found = await query(db, area)
        elapsed = time.perf_counter() - started
    return elapsed * 1000, found


def pct(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


def line(name: str, ms: Sequence[float], base_p50: float | None = None) -> str:
    ratio = "" if base_p50 is None else f"  {base_p50 / pct(ms, 50):7.1f}x faster (p50)"
    return (
        f"  {name:<40} p50 {pct(ms, 50):7.1f}  p95 {pct(ms, 95):7.1f}  p99 {pct(ms, 99):7.1f}"
        f"  max {max(ms):7.1f} ms{ratio}"
    )


async def warm(engine: AsyncEngine, url: str) -> None:
    """Tables and indexes into memory, as on a server that has been answering queries:
    the benchmark measures queries, not a cold disk."""
    if is_sqlite(url):
        path = Path(make_url(url).database or "")
        for part in (path, path.with_name(path.name + "-wal")):
            if part.exists():
                with part.open("rb") as f:
                    while f.read(1 << 20):
                        pass
        return
    async with engine.connect() as conn:
        conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_prewarm"))
        names = await conn.scalars(
            text(
                "SELECT indexname FROM pg_indexes WHERE tablename IN ('households', 'devices')"
                " UNION ALL SELECT 'households' UNION ALL SELECT 'devices'"
            )
        )
        for name in names.all():
            await conn.execute(text("SELECT pg_prewarm(:name)"), {"name": name})


async def measure(
    sessions: async_sessionmaker[AsyncSession],
    polygons: list[tuple[str, Any]],
    query: Any,
    rounds: int,
) -> tuple[list[float], list[float], list[int]]:
    """Each area `rounds` times, the areas in a new order each round: (first time of each
    area, median of its times, cameras found)."""
    times: list[list[float]] = [[] for _ in polygons]
    sizes = [0] * len(polygons)
    order = list(range(len(polygons)))
    for r in range(rounds):
        random.Random(r).shuffle(order)  # noqa: S311 - a reproducible order
        for i in order:
            ms, found = await timed(sessions, query, polygons[i][1])
            times[i].append(ms)
            sizes[i] = len(found)
    return [t[0] for t in times], [statistics.median(t) for t in times], sizes


async def bench_one(label: str, url: str, args: argparse.Namespace) -> None:
    print(f"\n== {label}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    started = time.perf_counter()
    await upgrade_database(url)
    migrated = time.perf_counter() - started
    engine = create_engine(url)
    sessions = create_sessionmaker(engine)
    try:
        population = await populate(url, args.cameras, args.seed)
        print(
            f"  population: {population.households:,} households ({population.unlocated:,} "
            f"without a location), {population.cameras:,} cameras in service + "
            f"{population.revoked:,} revoked; migrated in {migrated:.1f} s, generated, "
            f"inserted and analysed in {population.seconds:.1f} s"
        )
        polygons = areas(args.polygons, population, args.seed + 1)
        await warm(engine, url)
        for _, area in polygons[:5]:  # the connection, the statement caches
            await timed(sessions, cameras_in, area)
        cells, cell_ms = [], []
        for _, area in polygons:
            t0 = time.perf_counter()
            cells.append(len(geo.covering_cells(area)))
            cell_ms.append((time.perf_counter() - t0) * 1000)
        first, median, found = await measure(sessions, polygons, cameras_in, args.rounds)
        _, homes_ms, homes = await measure(sessions, polygons, households_in, args.rounds)
        _, joined_ms, joined = await measure(sessions, polygons, household_join, args.rounds)
        assert joined == found, "the previous design found other cameras"
        base_ms = []
        for _, area in polygons[: args.baseline_polygons]:
            ms, cams = await timed(sessions, bbox_scan, area)
            base_ms.append(ms)
            _, ours = await timed(sessions, cameras_in, area)
            assert set(cams) == set(ours), "the cell pre-filter changed the answer"
            _, before = await timed(sessions, household_join, area)
            assert set(before) == set(ours), "the cameras' copy of the location disagrees"
            _, recipients = await timed(sessions, households_in, area)
            assert recipients == sorted({c.household_id for c in ours}, key=lambda u: u.int)
        print(
            f"  {len(polygons)} areas of 0.05-0.5 sq mi: cells per area median "
            f"{statistics.median(cells):.0f} (max {max(cells)}); cameras found median "
            f"{statistics.median(found):.0f}, p95 {pct(found, 95):.0f}, max {max(found)}; "
            f"households median {statistics.median(homes):.0f}, max {max(homes)}"
        )
        base = statistics.median(base_ms)
        print(line(f"baseline: bbox scan ({len(base_ms)} areas, once)", base_ms))
        print(line("geo.covering_cells alone", cell_ms))
        print(line("cameras_in, first time per area", first, base))
        print(line(f"cameras_in, median of {args.rounds} per area", median, base))
        print(line(f"previous design (0006), median of {args.rounds}", joined_ms, base))
        p50x, p95x = (pct(joined_ms, p) / pct(median, p) for p in (50, 95))
        print(f"  cameras_in against the previous design: p50 {p50x:.1f}x, p95 {p95x:.1f}x faster")
        print(line(f"households_in, median of {args.rounds} per area", homes_ms, base))
        by_kind: dict[str, list[float]] = {}
        for (kind, _), ms in zip(polygons, median, strict=True):
            by_kind.setdefault(kind, []).append(ms)
        for kind, ms in by_kind.items():
            print(line(f"  cameras_in, {kind}", ms))
        dense = [ms for ms, n in zip(median, found, strict=True) if n >= 1000]
        if dense:
            print(line(f"  cameras_in, the {len(dense)} areas with >= 1,000 cameras", dense))
        p95 = pct(median, 95)
        verdict = "met" if p95 < TARGET_P95_MS else "NOT met"
        print(f"  target p95 < {TARGET_P95_MS:g} ms: {verdict} ({p95:.1f} ms)")
        print(
            f"  load average (1 min) at the start: {load:.2f}, at the end: {os.getloadavg()[0]:.2f}"
        )
    finally:
        await engine.dispose()  # fmt: skip


async def main(args: argparse.Namespace) -> None:
    print(
        f"area queries on {args.cameras:,} cameras, {args.polygons} areas x {args.rounds} "
        f"rounds, seed {args.seed}, {os.cpu_count()} CPUs"
    )
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory(prefix="area-bench-") as tmp:
            await bench_one(
                "SQLite (WAL, aiosqlite)", f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}", args
            )
    if args.backend in ("postgresql", "both"):
        admin = make_url(args.pg_url)
        name = f"dw_area_bench_{os.getpid()}"
        admin_engine = create_engine(admin.render_as_string(hide_password=False))
        async with admin_engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            url = admin.set(database=name).render_as_string(hide_password=False)
            async with admin_engine.connect() as conn:
                version = await conn.scalar(text("SHOW server_version"))
            await bench_one(f"PostgreSQL {version} (asyncpg)", url, args)
        finally:
            async with admin_engine.connect() as conn:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            await admin_engine.dispose()  # fmt: skip


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--cameras", type=int, default=1_000_000)
    parser.add_argument("--polygons", type=int, default=200)
    parser.add_argument("--baseline-polygons", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pg-url", default=PG_URL)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--quick", action="store_true", help="20,000 cameras, 40 areas: a smoke run"
    )
    args = parser.parse_args()
    if args.quick:
        args.cameras, args.polygons, args.baseline_polygons = 20_000, 40, 10
    return args


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
