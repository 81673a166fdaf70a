"""The one runner of periodic jobs (doorwarden/scheduler.py): each run is one transaction
committed at the job's boundary; a failed run is logged and the loop goes on; stopping is
clean; and on PostgreSQL two server instances never run the same job at once."""

from __future__ import annotations

import asyncio
import itertools
import shutil
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from structlog.testing import capture_logs

from doorwarden.db import create_engine, create_sessionmaker
from doorwarden.scheduler import Job, Scheduler, run_now

TICK_S = 0.01


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(db_url)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE job_marks (mark INTEGER NOT NULL)"))
    yield create_sessionmaker(engine)
    await engine.dispose()


async def _mark(db: AsyncSession, mark: int) -> None:
    await db.execute(text("INSERT INTO job_marks (mark) VALUES (:mark)"), {"mark": mark})


async def marks(sessions: async_sessionmaker[AsyncSession]) -> list[int]:
    async with sessions() as db:
        return list((await db.scalars(text("SELECT mark FROM job_marks ORDER BY mark"))).all())


async def until(condition: Callable[[], bool], timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the scheduler never got there"
        await asyncio.sleep(TICK_S)


async def test_a_run_commits_at_the_boundary_then_runs_what_waits_for_the_commit(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    seen_after: list[list[int]] = []

    async def body(db: AsyncSession) -> int:
        await _mark(db, 1)  # the body never commits: the boundary does
        return 1

    async def after(result: int) -> None:
        seen_after.append([result, *await marks(sessions)])

    assert await run_now(sessions, Job("test.commit", 0, body, after_commit=after)) == 1
    assert seen_after == [[1, 1]]  # committed, and visible to another session, before `after`


async def test_a_job_that_raises_is_rolled_back_logged_and_runs_again(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    runs = 0

    async def body(db: AsyncSession) -> None:
        nonlocal runs
        runs += 1
        await _mark(db, runs)
        if runs <= 2:
            raise RuntimeError(f"run {runs} fails")

    with capture_logs() as logs:
        async with Scheduler(sessions, [Job("test.flaky", TICK_S, body)]):
            await until(lambda: runs >= 4)
    assert (await marks(sessions))[:2] == [3, 4]  # the failed runs' writes rolled back
    failures = [entry for entry in logs if entry["event"] == "job.failed"]
    assert [entry["job"] for entry in failures] == ["test.flaky", "test.flaky"]
    assert all(entry["log_level"] == "error" for entry in failures)


async def test_stopping_waits_for_a_run_then_cancels_it_and_rolls_it_back(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    started, finished = asyncio.Event(), asyncio.Event()

    async def stuck(db: AsyncSession) -> None:
        await _mark(db, 1)
        started.set()
        await asyncio.Event().wait()  # never ends by itself

    async def quick(db: AsyncSession) -> None:
        finished.set()

    scheduler = Scheduler(sessions, [Job("test.stuck", 60, stuck), Job("test.quick", 60, quick)])
    scheduler.start()
    await started.wait()
    await finished.wait()
    began = time.monotonic()
    await scheduler.stop(grace_s=0.2)
    assert 0.2 <= time.monotonic() - began < 5  # the grace, then cancelled
    assert await marks(sessions) == []
    await scheduler.stop()  # twice is harmless


async def test_a_batched_job_runs_every_batch_in_one_turn_each_committed(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    left = [3, 2, 1, 0]

    async def batch(db: AsyncSession) -> int:
        found = left.pop(0)
        if found:
            await _mark(db, found)
        return found

    scheduler = Scheduler(sessions, [])
    job = Job("test.batches", 60, batch, more=lambda found: found > 0)
    assert await scheduler.run_turn(job)
    assert left == []
    assert await marks(sessions) == [1, 2, 3]


async def test_jobs_without_an_interval_are_left_to_cron_and_names_are_unique(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async def body(db: AsyncSession) -> None:
        return None

    scheduler = Scheduler(sessions, [Job("test.cron", 0, body), Job("test.on", 1, body)])
    assert [job.name for job in scheduler.jobs] == ["test.on"]
    with pytest.raises(ValueError, match="share a name"):
        Scheduler(sessions, [Job("test.same", 1, body), Job("test.same", 2, body)])


@pytest.fixture
async def second_instance(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Another server instance: its own engine and connections on the same database."""
    if not db_url.startswith("postgresql"):
        pytest.skip("one leader per job is PostgreSQL's (advisory locks); SQLite has one server")
    engine = create_engine(db_url)
    yield create_sessionmaker(engine)
    await engine.dispose()


async def test_two_instances_never_run_a_job_at_the_same_time(
    sessions: async_sessionmaker[AsyncSession],
    second_instance: async_sessionmaker[AsyncSession],
) -> None:
    started, release = asyncio.Event(), asyncio.Event()
    runs = 0

    async def body(db: AsyncSession) -> None:
        nonlocal runs
        runs += 1
        await _mark(db, runs)
        started.set()
        await release.wait()

    job = Job("test.leader", 60, body)
    first, second = Scheduler(sessions, [job]), Scheduler(second_instance, [job])
    running = asyncio.create_task(first.run_turn(job))
    await started.wait()
    # The lock is taken: this turn is skipped (without the lock it would wait on `release`).
    assert not await asyncio.wait_for(second.run_turn(job), 10)
    release.set()
    assert await running
    assert runs == 1
    assert await marks(sessions) == [1]
    # The lock was the transaction's: with the first run over, the second instance leads.
    started.clear()
    assert await second.run_turn(job)
    assert runs == 2


async def test_two_schedulers_on_one_database_run_each_tick_once(
    sessions: async_sessionmaker[AsyncSession],
    second_instance: async_sessionmaker[AsyncSession],
) -> None:
    """Both loops tick every 10 ms with a 50 ms body: runs never overlap (one instance
    leads the job; test_leadership.py has the rest)."""
    spans: list[tuple[str, float, float]] = []

    def job(instance: str) -> Job[Any]:
        async def body(db: AsyncSession) -> None:
            began = time.monotonic()
            await asyncio.sleep(0.05)
            spans.append((instance, began, time.monotonic()))

        return Job("test.shared", TICK_S, body)

    async with Scheduler(sessions, [job("a")]), Scheduler(second_instance, [job("b")]):
        await until(lambda: len(spans) >= 12)
    spans.sort(key=lambda span: span[1])
    for (_a, _start, end), (_b, next_start, _end) in itertools.pairwise(spans):
        assert next_start >= end, f"two runs overlapped: {spans}"


async def test_a_database_that_cannot_be_opened_is_a_warning_not_a_traceback(
    tmp_path: Path,
) -> None:
    """A database down (here: SQLite whose directory is gone) fails every run until it
    is back; that is logged as one warning per run, not as a bug with its traceback."""
    folder = tmp_path / "db"
    folder.mkdir()
    engine = create_engine(f"sqlite+aiosqlite:///{folder / 'gone.db'}")
    runs = 0

    async def body(db: AsyncSession) -> None:
        nonlocal runs
        runs += 1
        await db.execute(text("SELECT 1"))

    shutil.rmtree(folder)
    try:
        with capture_logs() as logs:
            async with Scheduler(create_sessionmaker(engine), [Job("test.down", TICK_S, body)]):
                await until(lambda: runs >= 2)
    finally:
        await engine.dispose()
    events = [e for e in logs if e["event"].startswith("job.") and e["event"] != "job.run"]
    assert events, "the failed runs were not logged"
    assert {entry["event"] for entry in events} == {"job.database_unavailable"}
    assert all(entry["log_level"] == "warning" for entry in events)
    assert all("exc_info" not in entry for entry in events)
