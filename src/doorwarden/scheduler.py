"""The one runner of periodic jobs (DESIGN.md rule 4), inside the server's process.

A job is a name, an interval and a body. Each run of the body gets a fresh session and
is one transaction, committed here, at the job's boundary (services never commit, rule
3), or rolled back if the body raised. A failed run is logged and the next one comes at
its time. On PostgreSQL a run first takes a transaction-level advisory lock named after
its job, so that across server instances one runs each job at a time: an instance that
finds the lock taken skips its turn. SQLite serves one server process, and BEGIN
IMMEDIATE (db.py) serialises a CLI run beside it.

`run_now` is the same boundary for one run from the CLI or a test; it waits for the lock
instead of skipping the turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, TypeVar

import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from doorwarden.db import forget_cleanups, run_rollback_cleanups
from doorwarden.http_errors import database_fault

log = structlog.get_logger("doorwarden.scheduler")
R = TypeVar("R")
# How long stopping waits for runs in progress before cancelling them: a run cut short
# is rolled back, but what it does after its commit (removing objects) would be left undone.
STOP_GRACE_S = 5.0


@dataclass(frozen=True)
class Job(Generic[R]):
    # Stable: it names the job's lock across instances and releases, and its log lines.
    name: str
    # From the end of one run to the start of the next; 0 leaves the job to cron.
    interval_s: float
    body: Callable[[AsyncSession], Awaitable[R]]
    # Once the run has committed, outside its transaction and its lock: what may only
    # happen when the rows are safe (removing the objects of the clips it tombstoned).
    after_commit: Callable[[R], Awaitable[None]] | None = None
    # Work in batches: while this says the last batch found work, the scheduler runs the
    # next one at once, in a transaction (and under a lock) of its own.
    more: Callable[[R], bool] | None = None


def lock_key(name: str) -> int:
    """The job's PostgreSQL advisory lock: a signed 64-bit number from its name, the same
    in every process and every release (Python's own hash() is salted per process)."""
    digest = hashlib.sha256(f"doorwarden.job:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class _Taken(Exception):
    """Another instance is running this job now."""


async def _lead(db: AsyncSession, name: str, *, wait: bool) -> bool:
    if db.get_bind().dialect.name != "postgresql":
        return True
    key = {"key": lock_key(name)}
    if wait:
        await db.execute(text("SELECT pg_advisory_xact_lock(:key)"), key)
        return True
    return bool(await db.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), key))


async def _run(sessionmaker: async_sessionmaker[AsyncSession], job: Job[R], *, wait: bool) -> R:
    """One transaction of the job; raises _Taken if another instance holds its lock and
    `wait` is false. The lock is the transaction's, released by its commit or rollback."""
    async with sessionmaker() as db:
        try:
            if not await _lead(db, job.name, wait=wait):
                raise _Taken(job.name)
            result = await job.body(db)
            await db.commit()
        except BaseException:
            await db.rollback()
            await run_rollback_cleanups(db)  # objects stored for rows that never were
            raise
        forget_cleanups(db)
    if job.after_commit is not None:
        await job.after_commit(result)
    return result


async def run_now(sessionmaker: async_sessionmaker[AsyncSession], job: Job[R]) -> R:
    """One run of the job (one batch of a batched job), from the CLI or a test: waits
    while another instance runs it, rather than skipping."""
    return await _run(sessionmaker, job, wait=True)


class Scheduler:
    """Runs every job with an interval, each in a task of its own, from `start` until
    `stop`; used as `async with Scheduler(...)` by the server's lifespan."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], jobs: Sequence[Job[Any]]
    ) -> None:
        names = [job.name for job in jobs]
        if len(set(names)) != len(names):
            raise ValueError(f"two jobs share a name (and so a lock): {names}")
        self._sessionmaker = sessionmaker
        self.jobs = [job for job in jobs if job.interval_s > 0]
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def run_turn(self, job: Job[Any]) -> bool:
        """The job's turn: every batch it has, unless another instance holds its lock
        (False if it ran nothing). A failure propagates; the loop logs it."""
        ran = False
        try:
            while True:
                result = await _run(self._sessionmaker, job, wait=False)
                ran = True
                if job.more is None or not job.more(result) or self._stopping.is_set():
                    return True
        except _Taken:
            return ran

    async def _loop(self, job: Job[Any]) -> None:
        while not self._stopping.is_set():
            try:
                await self.run_turn(job)
            except Exception as exc:  # a failed run must not end the loop: the next one retries
                if database_fault(exc) is None:
                    log.exception("job.failed", job=job.name)
                else:  # the database is down or full: expected now and then, not a bug
                    log.warning("job.database_unavailable", job=job.name, error=type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), job.interval_s)

    def start(self) -> None:
        self._stopping.clear()
        self._tasks = [
            asyncio.create_task(self._loop(job), name=f"doorwarden job {job.name}")
            for job in self.jobs
        ]

    async def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """No new runs; a run in progress may finish within `grace_s`, then is cancelled
        (its transaction rolled back)."""
        self._stopping.set()
        tasks, self._tasks = self._tasks, []
        if not tasks:
            return
        _done, running = await asyncio.wait(tasks, timeout=grace_s)
        for task in running:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def __aenter__(self) -> Scheduler:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()


# A wake that finds the job's lock taken tries again this often, for about a tick.
WAKE_RETRY_S = 0.02
WAKE_RETRIES = 50


class Waker:
    """Runs a job's turn now rather than at its next tick (a ring should not wait up to a
    second for its notification or webhook): one wake at a time, and a wake during a
    turn runs one more after it, so work committed meanwhile is not left to the tick."""

    def __init__(self, job: Job[Any]) -> None:
        self.job = job
        self._waking: asyncio.Task[None] | None = None
        self._again = False

    def waker(self, scheduler: Scheduler) -> Callable[[], None]:
        """The function an app keeps (`app.state.notify_wake`) and calls after a commit."""

        def wake() -> None:
            if self._waking is not None and not self._waking.done():
                self._again = True
                return
            self._waking = asyncio.get_running_loop().create_task(self._turns(scheduler))

        return wake

    async def _turns(self, scheduler: Scheduler) -> None:
        taken = 0
        while True:
            self._again = False
            try:
                ran = await scheduler.run_turn(self.job)
            except Exception:  # the job's schedule retries; a wake is best effort
                log.exception("scheduler.wake_failed", job=self.job.name)
                ran = True
            if not ran and taken < WAKE_RETRIES:
                # Another turn holds the job's lock (PostgreSQL: the tick, or another
                # instance) and may have claimed before this work committed: try again
                # shortly, rather than leave it to the next tick.
                taken += 1
                await asyncio.sleep(WAKE_RETRY_S)
                continue
            if not self._again:
                return

    async def idle(self) -> None:
        """Until a wake's turns are over (tests, the demo)."""
        while self._waking is not None and not self._waking.done():
            await asyncio.gather(self._waking, return_exceptions=True)

    async def aclose(self) -> None:
        if self._waking is not None:
            self._waking.cancel()
            await asyncio.gather(self._waking, return_exceptions=True)
