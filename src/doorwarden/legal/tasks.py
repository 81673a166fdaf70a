"""The legal deadlines as a job: the server's scheduler runs it every `legal_interval_s`,
`doorwarden legal run` once (from cron). What it does is legal/lifecycle.py's."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from doorwarden.audit.service import RequestContext
from doorwarden.config import Settings
from doorwarden.legal.lifecycle import DeadlineResult, run_deadlines
from doorwarden.scheduler import Job, run_now

log = structlog.get_logger("doorwarden.legal.tasks")
CONTEXT = RequestContext(client_address=None, user_agent="doorwarden legal deadlines")


def legal_job(
    settings: Settings, now: Callable[[], datetime], interval_s: float = 0
) -> Job[DeadlineResult]:
    async def deadlines(db: AsyncSession) -> DeadlineResult:
        return await run_deadlines(db, settings=settings, ctx=CONTEXT, now=now())

    async def report(result: DeadlineResult) -> None:
        if any(vars(result).values()):
            log.info("legal.deadlines", **vars(result))

    return Job("legal.deadlines", interval_s, deadlines, after_commit=report)


async def run_legal_deadlines(
    sessionmaker: async_sessionmaker[AsyncSession], settings: Settings, now: datetime
) -> DeadlineResult:
    return await run_now(sessionmaker, legal_job(settings, lambda: now))
