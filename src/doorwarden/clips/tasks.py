"""Periodic work on clips, run in-process by the server (DESIGN.md: periodic jobs)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from doorwarden.audit.service import RequestContext
from doorwarden.clips.service import RetentionResult, expire_clips
from doorwarden.storage.base import ClipStore

log = structlog.get_logger("doorwarden.clips.tasks")
CONTEXT = RequestContext(client_address=None, user_agent="doorwarden retention")


async def run_retention(
    sessionmaker: async_sessionmaker[AsyncSession], store: ClipStore, now: datetime
) -> RetentionResult:
    async with sessionmaker() as db:
        result = await expire_clips(db, store=store, now=now, ctx=CONTEXT)
        await db.commit()
        return result


async def retention_loop(
    sessionmaker: async_sessionmaker[AsyncSession],
    store: ClipStore,
    now: Callable[[], datetime],
    interval_s: float,
) -> None:
    """Every `interval_s`, until cancelled; a failed run is logged and retried next time."""
    while True:
        try:
            await run_retention(sessionmaker, store, now())
        except Exception:  # a bad run must not end the loop; the next one retries
            log.exception("retention.failed")
        await asyncio.sleep(interval_s)
