"""The legal deadlines, run in-process by the server every `legal_interval_s` (DESIGN.md:
periodic jobs), or by `doorwarden legal run` from cron."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from doorwarden.audit.service import RequestContext
from doorwarden.config import Settings
from doorwarden.legal.lifecycle import DeadlineResult, run_deadlines

log = structlog.get_logger("doorwarden.legal.tasks")
CONTEXT = RequestContext(client_address=None, user_agent="doorwarden legal deadlines")


async def run_legal_deadlines(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, now: datetime
) -> DeadlineResult:
    async with sessionmaker() as db:
        result = await run_deadlines(db, settings=settings, ctx=CONTEXT, now=now)
        await db.commit()
    if any(vars(result).values()):
        log.info("legal.deadlines", **vars(result))
    return result


async def legal_loop(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    now: Callable[[], datetime],
    interval_s: float,
) -> None:
    """Every `interval_s`, until cancelled; a failed run is logged and retried next time."""
    while True:
        try:
            await run_legal_deadlines(sessionmaker, settings, now())
        except Exception:  # a bad run must not end the loop; the next one retries
            log.exception("legal.deadlines_failed")
        await asyncio.sleep(interval_s)
