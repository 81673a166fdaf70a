"""Appending audit events to the Merkle log as a job: the server's scheduler runs it
every `log_interval_s`, `doorwarden log append` once."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from doorwarden.audit.log import LogSigner, append_pending
from doorwarden.scheduler import Job, run_now


def log_job(signer: LogSigner, interval_s: float = 0) -> Job[int]:
    async def append(db: AsyncSession) -> int:
        return await append_pending(db, signer)

    # In batches, each its own transaction, until none is pending.
    return Job("audit.log_append", interval_s, append, more=lambda appended: appended > 0)


async def run_append(sessionmaker: async_sessionmaker[AsyncSession], signer: LogSigner) -> int:
    """Append everything pending, batch by batch; the number appended."""
    job, total = log_job(signer), 0
    while appended := await run_now(sessionmaker, job):
        total += appended
    return total
