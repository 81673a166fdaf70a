"""Database foundations: declarative base, portable column types, engine and sessions.

The same models and migrations run on SQLite (the default) and PostgreSQL. Portability
rules: UUIDs are made in Python, enums are stored by value as strings, every timestamp is
timezone-aware UTC, and constraint names follow one convention so Alembic can alter them
on both databases.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from enum import Enum as PyEnum
from pathlib import Path
from typing import Any

from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import DateTime, Enum, MetaData, String, Text, TypeDecorator, event
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC, returns aware datetimes on every backend (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class NulInText(ValueError):
    """Text with a NUL character: PostgreSQL cannot store it, so no backend may."""


class SafeString(TypeDecorator[str]):
    """VARCHAR that refuses NUL on every write and comparison, on every backend, so a
    stray "\u0000" from a client is a clear 400 rather than a PostgreSQL error."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is not None and "\x00" in value:
            raise NulInText("text may not contain NUL characters")
        return value


class SafeText(SafeString):
    """TEXT that refuses NUL, as SafeString does for VARCHAR."""

    impl = Text
    cache_ok = True


def str_enum(enum_cls: type[PyEnum]) -> Enum:
    """Store an enum by its value, as a plain string (no native type to migrate)."""
    return Enum(
        enum_cls,
        values_callable=lambda members: [m.value for m in members],
        native_enum=False,
        validate_strings=True,
        length=32,
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


class UUIDPrimaryKey:
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)


class CreatedAt:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    if not is_sqlite(url):
        return create_async_engine(url, echo=echo, pool_pre_ping=True)
    # SQLite allows one writer. One pooled connection per process serialises our own
    # transactions without busy-waiting; BEGIN IMMEDIATE and a busy timeout make other
    # processes (the CLI beside the server) wait for the lock instead of failing.
    # Consequence: code serving a request must use the request's session, never open a
    # second connection of its own (it would wait for the one the request holds).
    engine = create_async_engine(
        url,
        echo=echo,
        pool_size=1,
        max_overflow=0,
        pool_timeout=60,
        connect_args={"timeout": 30},
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        # The pool holds one connection, for the life of the process: a page cache of its
        # own (64 MiB, up from 2 MiB) and reads through a memory map (up to 256 MiB of the
        # file) keep hot indexes in memory instead of a system call per page. Area queries
        # at a million cameras ran 1.5-2x faster with both (BENCHMARKS.md).
        cursor.execute("PRAGMA cache_size=-65536")
        cursor.execute("PRAGMA mmap_size=268435456")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config() -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


class SchemaNotCurrentError(RuntimeError):
    """The database is not at the migrations' head; the server must not start on it."""


def _current_revisions(conn: Connection) -> set[str]:
    return set(MigrationContext.configure(conn).get_current_heads())


async def check_schema_current(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await check_schema_on(conn)


async def check_schema_on(conn: AsyncConnection) -> None:
    """Raises SchemaNotCurrentError unless the database is at the migrations' head."""
    heads = set(ScriptDirectory.from_config(alembic_config()).get_heads())
    current = await conn.run_sync(_current_revisions)
    if current != heads:
        found = ", ".join(sorted(current)) or "empty (never migrated)"
        raise SchemaNotCurrentError(
            f"The database is not migrated: it is at {found}, the code needs "
            f"{', '.join(sorted(heads))}. Run: doorwarden db upgrade"
        )


async def upgrade_database(url: str, revision: str = "head") -> None:
    """Apply migrations (used by `doorwarden db upgrade`, the demo and the tests)."""
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_run_upgrade, revision)
    finally:
        await engine.dispose()


def _run_upgrade(conn: Connection, revision: str) -> None:
    from alembic import command  # noqa: PLC0415 - only the CLI, demo and tests migrate

    cfg = alembic_config()
    cfg.attributes["connection"] = conn
    command.upgrade(cfg, revision)


Cleanup = Callable[[], Awaitable[None]]
_CLEANUPS = "doorwarden.cleanups"


def on_rollback(db: AsyncSession, cleanup: Cleanup) -> None:
    """Run `cleanup` if this session's transaction is rolled back instead of committed:
    for what was written outside the database (an object in the store) that only its
    rows give a meaning to. The transaction's owner calls `run_rollback_cleanups`."""
    db.info.setdefault(_CLEANUPS, []).append(cleanup)


def forget_cleanups(db: AsyncSession) -> None:
    """The transaction committed: what it stored stays."""
    db.info.pop(_CLEANUPS, None)


async def run_rollback_cleanups(db: AsyncSession) -> None:
    for cleanup in reversed(db.info.pop(_CLEANUPS, [])):
        await cleanup()


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    # A route that commits part-way (before streaming a download, say) keeps what it
    # stored up to there, whatever happens after.
    session.info.pop(_CLEANUPS, None)
