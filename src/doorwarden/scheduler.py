"""The one runner of periodic jobs (DESIGN.md rule 4), inside the server's process.

A job is a name, an interval and a body. Each run of the body gets a fresh session and
is one transaction, committed here, at the job's boundary (services never commit, rule
3), or rolled back if the body raised. A failed run is logged and the next one comes at
its time. On PostgreSQL a run first takes a transaction-level advisory lock named after
its job, so that one runs each job at a time: a turn that finds the lock taken is skipped.
SQLite serves one server process, and BEGIN IMMEDIATE (db.py) serialises a CLI run beside it.

On PostgreSQL each job also has one *leader* across server instances (DESIGN.md rule 4):
only the instance holding the job's session-level advisory lock runs its periodic turns.
Without it, N instances would each tick: N turns per interval, N-1 of them skipped or
re-doing the same scan. A Scheduler holds its leaderships on one dedicated connection
(`Leadership`); a non-leader tries for the lock at each of its ticks, and a leader checks
that it still holds it before each turn. PostgreSQL frees a session's locks when its
connection drops, so a leader that dies is replaced within one interval.

Wake-ups (`Waker`) are not periodic: they follow a commit on whichever instance made it,
and run there, under the run's transaction lock only (their work is claimed row by row).

`run_now` is the same boundary for one run from the CLI or a test; it waits for the run's
lock instead of skipping the turn, and needs no leadership.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, TypeVar

import structlog
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

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


def leader_key(name: str) -> int:
    """The job's leadership lock, held by one instance for as long as it lives: another
    key than `lock_key`, which each run takes for its transaction (so that `run_now` from
    the CLI still excludes a run of the leader's)."""
    digest = hashlib.sha256(f"doorwarden.job-leader:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


# The session-level advisory locks this connection holds, as the bigint keys they were
# taken with: PostgreSQL splits a key into classid (the high half) and objid, and the
# shift wraps, so the sign comes back as it went in.
_HELD_KEYS = text(
    "SELECT ((classid::bigint << 32) | objid::bigint) FROM pg_locks"
    " WHERE locktype = 'advisory' AND objsubid = 1 AND granted AND pid = pg_backend_pid()"
)


# scheduler_models.JobRun's table, read and written on the leadership connection.
_SINCE_LAST = text(
    "SELECT EXTRACT(EPOCH FROM clock_timestamp() - started_at) "
    "FROM scheduler_job_runs WHERE job = :job"
)
_MARK_RUN = text(
    "INSERT INTO scheduler_job_runs (job, started_at) VALUES (:job, clock_timestamp()) "
    "ON CONFLICT (job) DO UPDATE SET started_at = excluded.started_at"
)


class Leadership:
    """Which jobs this instance leads, held as session-level advisory locks on one
    dedicated connection (not one per job: a server runs about ten jobs, and a connection
    per job per instance would eat the database's connection limit). Its uses are
    serialised by an asyncio.Lock: one connection runs one statement at a time.

    On SQLite there is one server process: it leads every job."""

    def __init__(self, engine: AsyncEngine | None) -> None:
        postgres = engine is not None and engine.dialect.name == "postgresql"
        self._engine = engine if postgres else None
        self._connection: AsyncConnection | None = None
        self._use = asyncio.Lock()
        self.held: set[str] = set()

    async def lead(self, name: str) -> bool:
        """True if this instance leads the job now: it held the lock and still does (its
        connection alive), or it has just taken it. A connection found dead is replaced
        and the lock tried again on the new one; a database that cannot be reached raises,
        as a run would."""
        if self._engine is None:
            return True
        async with self._use:
            try:
                return await self._lead(self._engine, name)
            except (SQLAlchemyError, OSError):
                # The connection dropped (the database restarted, or a proxy cut it): every
                # lock went with it, and another instance may lead by now. Start afresh.
                await self._drop()
            return await self._lead(self._engine, name)

    async def due_in(self, name: str, interval_s: float) -> float:
        """Seconds until the job's interval since its last turn (any instance's) is over;
        0 when it is, or on SQLite."""
        if self._engine is None:
            return 0.0
        async with self._use:
            connection = await self._connect(self._engine)
            since = await connection.scalar(_SINCE_LAST, {"job": name})
        return 0.0 if since is None else max(0.0, interval_s - float(since))

    async def mark_run(self, name: str) -> None:
        """This turn starts now (read by the next leader's `due_in`)."""
        if self._engine is None:
            return
        async with self._use:
            connection = await self._connect(self._engine)
            await connection.execute(_MARK_RUN, {"job": name})

    async def _lead(self, engine: AsyncEngine, name: str) -> bool:
        connection = await self._connect(engine)
        key = leader_key(name)
        if name in self.held:
            if key in (await connection.scalars(_HELD_KEYS)).all():
                return True
            self.held.discard(name)  # released behind our back (pg_advisory_unlock_all)
        if await connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}):
            self.held.add(name)
            return True
        return False

    async def _connect(self, engine: AsyncEngine) -> AsyncConnection:
        if self._connection is None:
            # Autocommit: session locks outlive transactions, and a connection left idle in
            # an open transaction would hold back vacuum (and may be cut by the server).
            connection = await engine.connect()
            self._connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
        return self._connection

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        self.held.clear()
        if connection is not None:
            with contextlib.suppress(Exception):  # already dead: nothing to give back
                await connection.invalidate()
                await connection.close()

    async def close(self) -> None:
        """Give up every leadership: closing the connection releases its session locks
        (the next instance to tick takes them), and invalidating it keeps the pool from
        handing out a connection that still holds them."""
        async with self._use:
            await self._drop()


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
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        jobs: Sequence[Job[Any]],
        *,
        instance: str | None = None,
    ) -> None:
        names = [job.name for job in jobs]
        if len(set(names)) != len(names):
            raise ValueError(f"two jobs share a name (and so a lock): {names}")
        self._sessionmaker = sessionmaker
        # Every job's name, with or without an interval: whose locks exist (tests check
        # that no two keys collide).
        self.names = names
        self.jobs = [job for job in jobs if job.interval_s > 0]
        # Names this process in the log lines, so that runs can be counted per instance.
        self.instance = instance or uuid.uuid4().hex
        bind = sessionmaker.kw.get("bind")
        self.leadership = Leadership(bind if isinstance(bind, AsyncEngine) else None)
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        # Set once every job has had its first turn (or found another instance leading).
        self._first_turns = asyncio.Event()
        self._awaiting_first = len(self.jobs)

    async def settled(self) -> None:
        """Until every job's first turn is over. A test that then blocks its own event loop
        (a synchronous request to a server in a thread) cannot stall a job's transaction
        half-way, holding rows that server needs."""
        await self._first_turns.wait()

    def _first_turn_over(self) -> None:
        self._awaiting_first -= 1
        if self._awaiting_first <= 0:
            self._first_turns.set()

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
        first = True
        while not self._stopping.is_set():
            try:
                if await self.leadership.lead(job.name):
                    wait = await self.leadership.due_in(job.name, job.interval_s)
                    if wait > 0:  # newly leader, the old one ran less than an interval ago
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self._stopping.wait(), wait)
                        continue
                    await self.leadership.mark_run(job.name)
                    log.info("job.run", job=job.name, instance=self.instance)
                    await self.run_turn(job)
            except Exception as exc:  # a failed run must not end the loop: the next one retries
                if database_fault(exc) is None:
                    log.exception("job.failed", job=job.name)
                else:  # the database is down or full: expected now and then, not a bug
                    log.warning("job.database_unavailable", job=job.name, error=type(exc).__name__)
            finally:
                if first:
                    first = False
                    self._first_turn_over()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), job.interval_s)

    def start(self) -> None:
        self._stopping.clear()
        if not self.jobs:
            self._first_turns.set()
        self._tasks = [
            asyncio.create_task(self._loop(job), name=f"doorwarden job {job.name}")
            for job in self.jobs
        ]

    async def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """No new runs; a run in progress may finish within `grace_s`, then is cancelled
        (its transaction rolled back)."""
        self._stopping.set()
        tasks, self._tasks = self._tasks, []
        if tasks:
            _done, running = await asyncio.wait(tasks, timeout=grace_s)
            for task in running:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        await self.leadership.close()  # after the runs: a leader's turn ends before it hands over

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
                log.info("job.woken", job=self.job.name, instance=scheduler.instance)
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
