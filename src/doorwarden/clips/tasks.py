"""Retention as a job: the server's scheduler runs it every retention_interval_minutes,
`doorwarden retention` once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from doorwarden.audit.service import RequestContext
from doorwarden.clips.service import RetentionResult, expire_clips, remove_objects
from doorwarden.scheduler import Job, run_now
from doorwarden.storage.base import ClipStore

CONTEXT = RequestContext(client_address=None, user_agent="doorwarden retention")


def retention_job(
    store: ClipStore,
    now: Callable[[], datetime],
    interval_s: float = 0,
    *,
    live_only_ring_days: int = 1,
) -> Job[RetentionResult]:
    async def expire(db: AsyncSession) -> RetentionResult:
        return await expire_clips(
            db, now=now(), ctx=CONTEXT, live_only_ring_days=live_only_ring_days
        )

    async def remove(result: RetentionResult) -> None:
        # Only now: the tombstones and their audit events are committed before the
        # objects go, so a crash in between leaves unreachable ciphertext, never a listed
        # clip without its video.
        await remove_objects(store, result.object_keys)

    return Job("clips.retention", interval_s, expire, after_commit=remove)


async def run_retention(
    sessionmaker: async_sessionmaker[AsyncSession],
    store: ClipStore,
    now: datetime,
    *,
    live_only_ring_days: int = 1,
) -> RetentionResult:
    job = retention_job(store, lambda: now, live_only_ring_days=live_only_ring_days)
    return await run_now(sessionmaker, job)
