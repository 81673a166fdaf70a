"""Faults, one at a time, while cameras upload: does every recorded clip arrive exactly once?

Real processes only: one `doorwarden serve` (SQLite by default, `--database-url` for
PostgreSQL), N paired `doorwarden agent run` processes on real-time looped synthetic
footage (a ~4 s clip every ~4 s each), every agent reaching the server through a TcpProxy.
Faults are injected in turn, one per phase:

* none -- a control phase;
* server kill -9 -- SIGKILL, a few seconds down, started again on the same data;
* agent kill -9 -- agents killed with SIGKILL at random moments and started again;
* database restart -- PostgreSQL only: the server's database connection goes through a
  TcpProxy that refuses for `--db-down-s`, then forwards again (on SQLite the row is
  skipped: the database is a file in the server's process);
* disk full -- the server's data directory (clip store and staging) is a small tmpfs
  (tests/tmpfs.py; needs root), filled to a few KiB free and topped up every 0.1 s while
  uploads run for `--disk-full-s`, then released; the free space varies by up to
  `--jitter-bytes` (about a clip) from tick to tick, so that writes are cut short at
  every stage of an upload, not only the first;
* connections cut -- the agents' proxy cuts every connection (FIN, then RST), then stalls
  (a black hole longer than the agents' request timeout), then refuses, then forwards.

After each phase the benchmark waits for a quiet moment (every camera's backlog sent) and
counts (bench/fault_counts.py): clips recorded (commits to the agents' plain spools, seen
by inotify), verified on the server (distinct recordings with a verified row), kept on the
camera on purpose (held or deferred, listed by the agent), evicted and reported, lost
(recorded, not verified, not kept, not reported evicted), duplicated (one recording
verified under two sequence numbers), false integrity alerts (all but the ones that tell
what the camera itself did and reported: a gap of clips it evicted or keeps, its health
report's held clips, evictions and full disk; those are counted apart as explained).
Clips are attributed to the phase in which they were recorded. Exit status 1 when
anything was lost or duplicated, a false alert was raised, a camera held a clip back
(no fault here is the camera's), or the cameras could not send their backlog.

    .venv/bin/python bench/bench_faults.py [--agents 4] [--rounds 1] [--faults disk,network]
    .venv/bin/python bench/bench_faults.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres

The default run takes about 3.5 minutes on a 2-core machine (4 on PostgreSQL); `--rounds
N` repeats the fault sequence, `--agents` up to 20, and the phase flags lengthen each
fault. Logs (server.log, each agent's agent.log) stay in the work directory with
`--keep`, or when the run fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import create_async_engine

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # `python bench/x.py` puts only bench/ on the path

from bench.fault_counts import Ledger, Tally  # noqa: E402
from bench.fault_rig import Agent, Owner, Server, kept_full, make_scene  # noqa: E402
from tests.tcp_proxy import TcpProxy  # noqa: E402
from tests.tmpfs import small_tmpfs  # noqa: E402

# What the server's log says about each phase (counted in its lines).
LOG_MARKERS = (
    "Traceback",
    "unhandled error",
    "job.failed",
    "storage_full",
    "storage_unavailable",
    "database_unavailable",
    "client_disconnected",
    "hash_mismatch",
)
FAULTS = ("server", "agent", "database", "disk", "network")
COLUMNS = ("fault", "recorded", "verified", "lost", "duplicated", "false alerts", "seconds")


@dataclass
class Row:
    fault: str
    tally: Tally | None  # None: skipped
    seconds: float
    note: str = ""


def _table(rows: list[Row]) -> str:
    out = [
        "| " + " | ".join(COLUMNS) + " | kept / evicted (reported) | explained alerts | notes |",
        "|---" + "|---:" * (len(COLUMNS) - 1) + "|---:|---:|---|",
    ]
    for row in rows:
        t = row.tally
        if t is None:
            out.append(f"| {row.fault} | - | - | - | - | - | - | - | - | skipped: {row.note} |")
            continue
        out.append(
            f"| {row.fault} | {t.recorded} | {t.verified} | {t.lost} | {t.duplicated} | "
            f"{t.false_alerts} | {row.seconds:.0f} | {t.kept} / {t.evicted} "
            f"({t.evicted_reported}) | {t.explained_alerts} | {row.note} |"
        )
    return "\n".join(out)


class Campaign:
    """The server, the database, the agents and the proxies of one run, and the faults."""

    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.rng = random.Random(args.seed)  # noqa: S311 - when to kill, not a secret
        self.stack = contextlib.ExitStack()
        self.agents: list[Agent] = []
        self.data_dir = work / "data"
        self.disk_skip: str | None = None
        self.data_fs = "the work directory's disk"
        self.db_proxy: TcpProxy | None = None
        self.backend = "SQLite"
        self.direct_database_url = f"sqlite+aiosqlite:///{work / 'doorwarden.db'}"
        self.restarted: list[str] = []  # agents that exited by themselves

    def __enter__(self) -> Campaign:
        try:
            self._setup()
        except BaseException:
            self.stack.close()
            raise
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.stack.close()

    def _setup(self) -> None:
        args = self.args
        scene = make_scene(self.work / "scene.mp4")
        try:
            # Room for a long run's clips (a few KiB each); filled only in its phase.
            self.stack.enter_context(small_tmpfs(self.data_dir, 512 << 20))
            self.data_fs = "a 512 MiB tmpfs"
        except pytest.skip.Exception as exc:
            self.disk_skip = str(exc)
            self.data_dir.mkdir(parents=True, exist_ok=True)
        server_database_url = self.direct_database_url
        if args.database_url:
            server_database_url = self._postgres(make_url(args.database_url))
        self.server = Server(self.work, self.data_dir, server_database_url)
        self.server.migrate()
        self.server.start()
        self.stack.callback(self.server.stop)
        owner = Owner(self.server.url)
        self.stack.callback(owner.close)
        # The cameras' network: every agent reaches the server through this proxy.
        self.net = TcpProxy("127.0.0.1", self.server.port)
        self.net.start()
        self.stack.callback(self.net.close)
        for index in range(args.agents):
            root = self.work / f"agent-{index:02d}"
            agent = Agent(root, f"cam-{index:02d}", scene, root / "spool")
            agent.prepare(f"http://127.0.0.1:{self.net.port}", owner.pairing_code())
            self.agents.append(agent)
            self.stack.callback(agent.close)
        for agent in self.agents:
            agent.start()

    def _postgres(self, admin: URL) -> str:
        """A fresh database for this run (dropped at the end); the server reaches it
        through a TcpProxy, the counting directly."""
        name = f"dw_bench_faults_{uuid.uuid4().hex[:12]}"
        asyncio.run(_admin(admin, f'CREATE DATABASE "{name}"'))
        self.stack.callback(
            lambda: asyncio.run(_admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        )
        direct = admin.set(database=name)
        self.direct_database_url = direct.render_as_string(hide_password=False)
        self.db_proxy = TcpProxy(direct.host or "127.0.0.1", direct.port or 5432)
        port = self.db_proxy.start()
        self.stack.callback(self.db_proxy.close)
        self.backend = "PostgreSQL (through a TcpProxy)"
        return direct.set(host="127.0.0.1", port=port).render_as_string(hide_password=False)

    # -- the faults: each returns None, or why it was skipped ------------------------------

    def idle(self) -> str | None:
        time.sleep(self.args.control_s)
        self._revive()
        return None

    def server_kills(self) -> str | None:
        for _ in range(self.args.server_kills):
            time.sleep(6)
            self.server.kill9()
            time.sleep(3)
            self.server.start()
        time.sleep(4)
        self._revive()
        return None

    def agent_kills(self) -> str | None:
        for index in range(self.args.agent_kills):
            agent = self.agents[index % len(self.agents)]
            time.sleep(self.rng.uniform(1.0, 4.0))
            agent.kill9()
            time.sleep(0.3)
            agent.start()
        time.sleep(3)
        self._revive()
        return None

    def database_restart(self) -> str | None:
        if self.db_proxy is None:
            return "SQLite: the database is a file in the server's process, nothing to restart"
        time.sleep(3)
        self.db_proxy.refuse()
        time.sleep(self.args.db_down_s)
        self.db_proxy.restore()
        time.sleep(5)
        self._revive()
        return None

    def disk_full(self) -> str | None:
        if self.disk_skip is not None:
            return self.disk_skip
        time.sleep(3)
        with kept_full(self.data_dir, self.args.leave_bytes, jitter_bytes=self.args.jitter_bytes):
            time.sleep(self.args.disk_full_s)
        time.sleep(5)
        self._revive()
        return None

    def connections_cut(self) -> str | None:
        time.sleep(2)
        for reset in (False, True, False):
            self.net.cut(reset=reset)
            time.sleep(3)
        self.net.stall()  # longer than the agents' request timeout (5 s)
        time.sleep(self.args.stall_s)
        self.net.restore()
        time.sleep(2)
        self.net.refuse()
        time.sleep(self.args.stall_s)
        self.net.restore()
        time.sleep(3)
        self._revive()
        return None

    def _revive(self) -> None:
        """An agent that exited by itself is a finding: noted, and started again."""
        for agent in self.agents:
            if agent.process is not None and agent.process.poll() is not None:
                self.restarted.append(f"{agent.name} exited {agent.process.returncode}")
                agent.start()

    # -- evidence ---------------------------------------------------------------------

    def server_log_size(self) -> int:
        return self.server.log.stat().st_size if self.server.log.exists() else 0

    def server_log_note(self, offset: int) -> str:
        with self.server.log.open("rb") as log:
            log.seek(offset)
            text_ = log.read().decode(errors="replace")
        counts = [f"{m} x{text_.count(m)}" for m in LOG_MARKERS if m in text_]
        if self.restarted:
            counts.append("agents exited by themselves: " + ", ".join(self.restarted))
            self.restarted = []
        return "server log: " + (", ".join(counts) if counts else "quiet")


async def _admin(url: URL, statement: str) -> None:
    engine = create_async_engine(url.render_as_string(hide_password=False))
    try:
        async with engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


def _machine(args: argparse.Namespace, campaign: Campaign) -> str:
    commit = subprocess.run(
        ["git", "-C", str(REPO), "describe", "--always", "--dirty"],  # noqa: S607 - PATH's git
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return (
        f"{platform.node()}: {platform.machine()}, {_cpus()} CPUs, Python "
        f"{platform.python_version()}, {campaign.backend}, server data dir on "
        f"{campaign.data_fs}, {args.agents} agents, commit {commit or '?'}"
    )


def _cpus() -> int:
    return len(os.sched_getaffinity(0))


def run(args: argparse.Namespace, work: Path) -> int:
    rows: list[Row] = []
    with Campaign(args, work) as campaign:
        ledger = Ledger(campaign.agents, campaign.direct_database_url)
        faults = {
            "server": ("server kill -9", campaign.server_kills),
            "agent": ("agent kill -9", campaign.agent_kills),
            "database": ("database restart", campaign.database_restart),
            "disk": ("disk full (server)", campaign.disk_full),
            "network": ("connections cut", campaign.connections_cut),
        }
        phases: list[tuple[str, Callable[[], str | None]]] = [("none (control)", campaign.idle)]
        for _ in range(args.rounds):
            phases += [faults[name] for name in args.faults.split(",")]
        before = ledger.tally(timeout_s=args.drain_s)
        for name, action in phases:
            started = time.monotonic()
            log_from = campaign.server_log_size()
            print(f"-- {name} ...", flush=True)
            skipped = action()
            if skipped is not None:
                rows.append(Row(name, None, 0, skipped))
                continue
            after = ledger.tally(timeout_s=args.drain_s)
            note = campaign.server_log_note(log_from)
            if not ledger.quiet:
                note = f"NOT DRAINED ({after.waiting} waiting); {note}"
            rows.append(Row(name, after - before, time.monotonic() - started, note))
            print(_table(rows[-1:]).splitlines()[-1], flush=True)
            before = after
        drained = ledger.quiet
        machine = _machine(args, campaign)
    totals = [r.tally for r in rows if r.tally is not None]
    print()
    print(machine)
    print(_table(rows))
    bad = sum(t.lost + t.duplicated + t.false_alerts for t in totals)
    # No fault here is the camera's: a clip it holds back was refused for the server's.
    kept = sum(t.kept for t in totals)
    if bad or kept or not drained:
        print(
            f"\nFAILED: lost/duplicated/false alerts: {bad}; held back on the cameras: {kept}; "
            f"drained: {drained}"
        )
        return 1
    print("\nOK: nothing lost, nothing duplicated, no false alert")
    return 0


def _faults(value: str) -> str:
    unknown = set(value.split(",")) - set(FAULTS)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown fault(s) {sorted(unknown)}; known: {FAULTS}")
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=4, choices=range(1, 21), metavar="1..20")
    parser.add_argument("--database-url", default=None, help="PostgreSQL (asyncpg) server URL")
    parser.add_argument("--rounds", type=int, default=1, help="repeat the fault sequence")
    parser.add_argument(
        "--faults",
        default=",".join(FAULTS),
        type=_faults,
        help=f"which faults, in this order (default: {','.join(FAULTS)})",
    )
    parser.add_argument("--control-s", type=float, default=15.0)
    parser.add_argument("--server-kills", type=int, default=3)
    parser.add_argument("--agent-kills", type=int, default=12)
    parser.add_argument("--db-down-s", type=float, default=20.0)
    parser.add_argument("--disk-full-s", type=float, default=20.0)
    parser.add_argument("--leave-bytes", type=int, default=4096, help="free bytes when full")
    parser.add_argument(
        "--jitter-bytes", type=int, default=48 * 1024, help="free space varies up to this more"
    )
    parser.add_argument("--stall-s", type=float, default=8.0)
    parser.add_argument("--drain-s", type=float, default=90.0, help="longest wait for quiet")
    parser.add_argument("--seed", type=int, default=20261206)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    random.seed(args.seed)
    work = Path(tempfile.mkdtemp(prefix="bench-faults-"))
    print(f"work directory: {work}", flush=True)
    code = 1
    try:
        code = run(args, work)
    finally:
        if args.keep or code != 0:
            print(f"logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
