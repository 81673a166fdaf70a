"""One leader per job across server instances (doorwarden/scheduler.py, Leadership): on
PostgreSQL only the instance holding a job's session-level advisory lock runs its
periodic turns; a leader that dies or stops is replaced within one interval; the CLI's
run_now still runs beside a leader and is still excluded by a run in progress."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from structlog.testing import capture_logs

from doorwarden.audit.log import _LOCK_ID as LOG_APPENDER_LOCK
from doorwarden.db import create_engine, create_sessionmaker
from doorwarden.scheduler import Job, Scheduler, Waker, leader_key, lock_key, run_now

INTERVAL_S = 0.3
# A tick's own work (a lock query, a run) and a loaded test machine, on top of an interval.
SLACK_S = 0.7


@dataclass
class Runs:
    """Each run of the test job: which instance, and when (monotonic)."""

    spans: list[tuple[str, float]] = field(default_factory=list)

    def job(self, instance: str, interval_s: float = INTERVAL_S) -> Job[None]:
        async def body(db: AsyncSession) -> None:
            await db.execute(text("SELECT 1"))
            self.spans.append((instance, time.monotonic()))

        return Job("test.led", interval_s, body)

    def by(self, instance: str, since: float = 0) -> int:
        return sum(1 for who, at in self.spans if who == instance and at >= since)


async def until(condition: Callable[[], bool], timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the scheduler never got there"
        await asyncio.sleep(0.01)


@pytest.fixture
async def engines(db_url: str) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine, AsyncEngine]]:
    """Two server instances (an engine each) and the test's own connection."""
    if not db_url.startswith("postgresql"):
        pytest.skip("one leader per job is PostgreSQL's (advisory locks); SQLite has one server")
    made = (create_engine(db_url), create_engine(db_url), create_engine(db_url))
    yield made
    for engine in made:
        await engine.dispose()


async def leader_pid(engine: AsyncEngine, name: str) -> int | None:
    """The backend holding the job's leadership lock, as any observer can see it."""
    key = leader_key(name) % (1 << 64)  # pg_locks shows the halves unsigned
    async with engine.connect() as conn:
        return await conn.scalar(
            text(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND objsubid = 1 AND classid::bigint = :high AND objid::bigint = :low"
            ),
            {"high": key >> 32, "low": key & 0xFFFFFFFF},
        )


async def test_one_instance_runs_each_interval_and_a_stopped_leader_is_replaced(
    engines: tuple[AsyncEngine, AsyncEngine, AsyncEngine],
) -> None:
    one, two, observer = engines
    runs = Runs()
    first = Scheduler(create_sessionmaker(one), [runs.job("a")], instance="a")
    second = Scheduler(create_sessionmaker(two), [runs.job("b")], instance="b")
    with capture_logs() as logs:
        async with first:
            await until(lambda: runs.by("a") >= 1)
            async with second:
                began = time.monotonic()
                await asyncio.sleep(INTERVAL_S * 6)
                # Both loops ticked about six times: only the leader ran.
                assert runs.by("b") == 0, runs.spans
                assert runs.by("a", since=began) >= 4
                assert first.leadership.held == {"test.led"}
                assert second.leadership.held == set()
                assert await leader_pid(observer, "test.led") is not None
                # The leader stops (a deploy restarting it): its connection, and the lock,
                # go at once, and the other takes over at its next tick.
                await first.stop()
                stopped = time.monotonic()
                await until(lambda: runs.by("b") >= 1, timeout_s=INTERVAL_S + SLACK_S)
                taken_after = time.monotonic() - stopped
                assert runs.by("a", since=stopped) == 0
                assert second.leadership.held == {"test.led"}
    assert taken_after <= INTERVAL_S + SLACK_S
    # Every periodic run said so, by whom: the three-instance test counts these lines.
    said = [(entry["job"], entry["instance"]) for entry in logs if entry["event"] == "job.run"]
    assert set(said) == {("test.led", "a"), ("test.led", "b")}
    assert len(said) == len(runs.spans)


async def test_a_leader_whose_connection_is_killed_is_replaced_within_an_interval(
    engines: tuple[AsyncEngine, AsyncEngine, AsyncEngine],
) -> None:
    """A leader that dies (SIGKILL, a network cut) is seen by PostgreSQL as its connection
    dropping: pg_terminate_backend does exactly that to the leader's dedicated connection.
    The lock is free at once; whichever instance ticks first leads, and never both."""
    one, two, observer = engines
    runs = Runs()
    first = Scheduler(create_sessionmaker(one), [runs.job("a")], instance="a")
    second = Scheduler(create_sessionmaker(two), [runs.job("b")], instance="b")
    with capture_logs() as logs:
        async with first:
            await until(lambda: runs.by("a") >= 1)
            async with second:
                await asyncio.sleep(INTERVAL_S * 2)
                pid = await leader_pid(observer, "test.led")
                assert pid is not None
                async with observer.connect() as conn:
                    assert await conn.scalar(
                        text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}
                    )
                killed = time.monotonic()
                await until(
                    lambda: runs.by("a", since=killed) + runs.by("b", since=killed) >= 1,
                    timeout_s=INTERVAL_S + SLACK_S,
                )
                await asyncio.sleep(INTERVAL_S * 5)
                new_pid = await leader_pid(observer, "test.led")
                assert new_pid is not None and new_pid != pid
                leaders = [s for s in (first, second) if s.leadership.held]
                assert len(leaders) == 1
                # From the kill on, never two runs in one interval, whoever ran them: the
                # killed instance may win the lock back on reconnecting before the other
                # takes it (CI saw a, a, a, then b), which is one leader at a time still.
                after = [at for _, at in runs.spans if at >= killed]
                gaps = [later - sooner for sooner, later in itertools.pairwise(after)]
                assert len(after) >= 3 and min(gaps) >= 0.8 * INTERVAL_S, runs.spans
    # The dead connection was found and replaced quietly: not a failed job.
    assert not [entry for entry in logs if entry["event"] == "job.failed"]


async def test_run_now_runs_beside_a_leader_and_waits_for_its_run_in_progress(
    engines: tuple[AsyncEngine, AsyncEngine, AsyncEngine],
) -> None:
    one, _two, cli = engines
    started, release = asyncio.Event(), asyncio.Event()
    block = False
    ran: list[str] = []

    async def body(db: AsyncSession) -> None:
        await db.execute(text("SELECT 1"))
        if block:
            started.set()
            await release.wait()

    job = Job("test.cli", INTERVAL_S, body)

    async def cli_body(db: AsyncSession) -> None:
        ran.append("cli")

    cli_job = Job("test.cli", 0, cli_body)
    leader = Scheduler(create_sessionmaker(one), [job], instance="leader")
    async with leader:
        await until(lambda: leader.leadership.held == {"test.cli"})
        # The leader holds its leadership; the CLI needs none, only the run's own lock.
        await asyncio.wait_for(run_now(create_sessionmaker(cli), cli_job), 10)
        assert ran == ["cli"]
        # A run of the leader's in progress still excludes the CLI's: it waits.
        block = True
        await asyncio.wait_for(started.wait(), INTERVAL_S + SLACK_S + 5)
        waiting = asyncio.create_task(run_now(create_sessionmaker(cli), cli_job))
        await asyncio.sleep(0.3)
        assert not waiting.done()
        release.set()
        await asyncio.wait_for(waiting, 10)
        assert ran == ["cli", "cli"]


async def test_a_wake_runs_on_any_instance_and_says_so(
    engines: tuple[AsyncEngine, AsyncEngine, AsyncEngine],
) -> None:
    """Wakes follow a commit on the instance that made it; they are not the leader's."""
    one, two, _observer = engines
    runs = Runs()
    leader = Scheduler(create_sessionmaker(one), [runs.job("a", 60)], instance="a")
    other = Scheduler(create_sessionmaker(two), [runs.job("b", 60)], instance="b")
    waker = Waker(runs.job("b", 60))
    with capture_logs() as logs:
        async with leader:
            await until(lambda: runs.by("a") == 1)
            async with other:
                await asyncio.sleep(0.2)
                assert other.leadership.held == set()
                waker.waker(other)()
                await waker.idle()
                await waker.aclose()
    assert runs.by("b") == 1
    woken = [(e["job"], e["instance"]) for e in logs if e["event"] == "job.woken"]
    assert woken == [("test.led", "b")]
    assert [e["instance"] for e in logs if e["event"] == "job.run"] == ["a"]


async def test_no_two_locks_share_a_key(app: FastAPI) -> None:
    """Each job has two PostgreSQL advisory locks (its leadership, each run's), and the
    audit log's appender one: a shared key would make two of them exclude each other."""
    scheduler: Scheduler = app.state.scheduler
    names = scheduler.names
    assert len(names) >= 9  # every job of the server's, with or without an interval
    keys = [lock_key(n) for n in names] + [leader_key(n) for n in names] + [LOG_APPENDER_LOCK]
    assert len(set(keys)) == len(keys)
    assert all(-(1 << 63) <= key < 1 << 63 for key in keys)  # PostgreSQL's bigint
