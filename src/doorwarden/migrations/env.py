"""Alembic environment: async engines, batch mode (SQLite cannot ALTER most things)."""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection

from doorwarden.db import Base, create_engine
from doorwarden.migrations.models import import_all_models

import_all_models()
target_metadata = Base.metadata
config = context.config


def _configure_and_run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _database_url() -> str:
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("DOORWARDEN_DATABASE_URL")
    if not url:
        from doorwarden.config import get_settings  # noqa: PLC0415 - only when nothing else names a database

        url = get_settings().effective_database_url
    return url


async def _run_online() -> None:
    engine = create_engine(_database_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_configure_and_run)
            await connection.commit()
    finally:
        await engine.dispose()


connection = config.attributes.get("connection")
if connection is not None:
    _configure_and_run(connection)
else:
    asyncio.run(_run_online())
