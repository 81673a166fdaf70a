"""Appending audit events to the Merkle log, run in-process by the server."""

from __future__ import annotations

import asyncio

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from doorwarden.audit.log import LogSigner, append_pending

log = structlog.get_logger("doorwarden.audit.tasks")


async def run_append(sessionmaker: async_sessionmaker[AsyncSession], signer: LogSigner) -> int:
    """Append everything pending (in batches), each batch its own transaction."""
    total = 0
    while True:
        async with sessionmaker() as db:
            appended = await append_pending(db, signer)
            await db.commit()
        total += appended
        if not appended:
            return total


async def log_loop(
    sessionmaker: async_sessionmaker[AsyncSession], signer: LogSigner, interval_s: float
) -> None:
    """Every `interval_s`, until cancelled; a failed run is logged and retried next time."""
    while True:
        try:
            await run_append(sessionmaker, signer)
        except Exception:  # a bad run must not end the loop; the next one retries
            log.exception("log.append_failed")
        await asyncio.sleep(interval_s)
