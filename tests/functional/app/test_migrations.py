"""Migrations and models agree on every backend (what `alembic check` checks), and the
schema can be migrated down and up again."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from doorwarden.db import Base, UTCDateTime, alembic_config, create_engine, upgrade_database
from doorwarden.geo import cell_of
from doorwarden.migrations.models import import_all_models


def _differences(conn: Connection) -> list[object]:
    import_all_models()
    context = MigrationContext.configure(conn, opts={"compare_type": True, "render_as_batch": True})
    return list(compare_metadata(context, Base.metadata))


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


async def test_models_match_the_migrated_schema(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(_differences) == []
            assert {"users", "households", "audit_events"} <= await conn.run_sync(_tables)
    finally:
        await engine.dispose()


def _downgrade_to_base(conn: Connection) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = conn
    command.downgrade(cfg, "base")


async def test_downgrade_to_base_and_upgrade_again(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_downgrade_to_base)
        async with engine.connect() as conn:
            assert await conn.run_sync(_tables) <= {"alembic_version"}
        await upgrade_database(db_url)
        async with engine.connect() as conn:
            assert await conn.run_sync(_differences) == []
    finally:
        await engine.dispose()


def _to(revision: str) -> Callable[[Connection], None]:
    def migrate(conn: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        if revision == "head":
            command.upgrade(cfg, revision)
        else:
            command.downgrade(cfg, revision)

    return migrate


async def test_cameras_paired_before_0007_take_their_household_location(db_url: str) -> None:
    """0007 copies each household's location and cell to its cameras (area queries read
    the copy); a home without a location leaves its cameras without one."""
    homes = sa.table(
        "households", sa.column("id", sa.Uuid()), sa.column("name", sa.String()),
        sa.column("address", sa.String()), sa.column("time_zone", sa.String()),
        sa.column("created_at", UTCDateTime()), sa.column("latitude", sa.Double()),
        sa.column("longitude", sa.Double()), sa.column("location_cell", sa.String()),
    )  # fmt: skip
    cameras = sa.table(
        "devices", sa.column("id", sa.Uuid()), sa.column("household_id", sa.Uuid()),
        sa.column("name", sa.String()), sa.column("public_key", sa.String()),
        sa.column("token_hash", sa.String()), sa.column("token_prefix", sa.String()),
        sa.column("created_at", UTCDateTime()), sa.column("revoked_at", UTCDateTime()),
    )  # fmt: skip
    now = datetime(2026, 12, 4, tzinfo=UTC)
    placed, nowhere = uuid.uuid4(), uuid.uuid4()
    engine = create_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_to("0006"))
            await conn.execute(
                homes.insert(),
                [
                    {"id": placed, "name": "Placed", "address": "", "time_zone": "UTC",
                     "created_at": now, "latitude": 51.45, "longitude": -2.59,
                     "location_cell": cell_of(51.45, -2.59)},
                    {"id": nowhere, "name": "Nowhere", "address": "", "time_zone": "UTC",
                     "created_at": now, "latitude": None, "longitude": None,
                     "location_cell": None},
                ],
            )  # fmt: skip
            await conn.execute(
                cameras.insert(),
                [
                    {"id": uuid.uuid4(), "household_id": home, "name": "Cam", "public_key": "A",
                     "token_hash": f"{n:064x}", "token_prefix": f"{n:016x}", "created_at": now,
                     "revoked_at": now if n == 1 else None}
                    for n, home in enumerate([placed, placed, nowhere])
                ],
            )  # fmt: skip
            await conn.run_sync(_to("head"))
            rows = await conn.execute(
                sa.text(
                    "SELECT household_id, latitude, longitude, location_cell FROM devices"
                ).columns(sa.column("household_id", sa.Uuid()))
            )
            copied = sorted(map(tuple, rows), key=lambda r: r[0] == nowhere)
        assert copied == [
            (placed, 51.45, -2.59, cell_of(51.45, -2.59)),  # the revoked one too
            (placed, 51.45, -2.59, cell_of(51.45, -2.59)),
            (nowhere, None, None, None),
        ]
    finally:
        await engine.dispose()
