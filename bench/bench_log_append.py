"""Appending audit events to the tamper-evident log, on SQLite: appends per second.

A fresh migrated SQLite database gets N audit events (bulk-inserted, as requests would
have written them); then the appender (`audit.tasks.run_append`, in batches of
`APPEND_BATCH`, each one transaction with its leaves, nodes, the events' log index and a
signed checkpoint) puts them all in the log. Baseline in the same run: writing the same
N events in the first place (bulk insert, same database). Target: at least 10,000
appends per second on SQLite.

Run: .venv/bin/python bench/bench_log_append.py [--events 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, insert, select

from doorwarden.audit.log_models import LogLeaf
from doorwarden.audit.models import AuditEvent
from doorwarden.audit.tasks import run_append
from doorwarden.config import Settings
from doorwarden.db import create_engine, create_sessionmaker
from doorwarden.main import log_signer

TAGS = ["clip:view", "clip:download", "live:start", "live:end", "account:login"]


def rows(n: int) -> list[dict[str, object]]:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    home = uuid.uuid4()
    return [
        {
            "id": uuid.uuid4(), "occurred_at": start + timedelta(milliseconds=i),
            "tag": TAGS[i % len(TAGS)], "actor_user_id": uuid.uuid4(), "actor_role": "resident",
            "household_id": home, "target_type": "clip", "target_id": str(uuid.uuid4()),
            "client_address": "198.51.100.7", "user_agent": "Mozilla/5.0 (bench)",
            "request_id": uuid.uuid4().hex, "extra": {"n": i},
        }
        for i in range(n)
    ]  # fmt: skip


def migrate(url: str) -> None:
    env = {**os.environ, "DOORWARDEN_DATABASE_URL": url, "DOORWARDEN_DEVELOPMENT": "1"}
    subprocess.run(
        [sys.executable, "-m", "doorwarden", "db", "upgrade"], env=env, check=True,
        capture_output=True,
    )  # fmt: skip


async def run(events: int, work: Path) -> None:
    url = f"sqlite+aiosqlite:///{work / 'bench.db'}"
    settings = Settings(development=True, database_url=url, data_dir=work, log_interval_s=0)
    engine = create_engine(url)
    sessions = create_sessionmaker(engine)
    data = rows(events)
    started = time.perf_counter()
    async with sessions.begin() as db:
        for first in range(0, events, 10_000):
            await db.execute(insert(AuditEvent), data[first : first + 10_000])
    written = time.perf_counter() - started
    started = time.perf_counter()
    appended = await run_append(sessions, log_signer(settings))
    logged = time.perf_counter() - started
    async with sessions() as db:
        assert await db.scalar(select(func.count()).select_from(LogLeaf)) == events
    await engine.dispose()
    assert appended == events
    print(f"{events:,} audit events on SQLite (WAL), one process")
    print(f"  baseline: writing the events    {events / written:10,.0f} events/s ({written:.2f} s)")
    print(f"  appending them to the log       {events / logged:10,.0f} appends/s ({logged:.2f} s)")
    print(f"  appending / writing              {written / logged:10.2f}x the speed")
    verdict = "met" if events / logged >= 10_000 else "NOT met"
    print(f"target >= 10,000 appends/s: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="log-bench-") as tmp:
        migrate(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}")
        asyncio.run(run(args.events, Path(tmp)))


if __name__ == "__main__":
    main()
