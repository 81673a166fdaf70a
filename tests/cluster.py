"""Several real `doorwarden serve` processes sharing one deployment, for the scale-out
tests and bench: a fresh PostgreSQL database, NATS, moto's S3 server and an ordered
failover balancer in front.

    with Cluster(tmp_path, instances=3, jobs={"legal_interval_s": 2}) as cluster:
        cluster.instances[0].kill()          # SIGKILL, as a machine dying
        cluster.job_runs()                   # job -> [(time, instance)] from every log

Each instance has its own data directory (nothing on disk is shared: statelessness is
what is tested), the same secret key, database, bucket and NATS subject prefix, and
writes JSON log lines to its own file, which the test parses (`job.run` lines).

Needs PostgreSQL (DOORWARDEN_TEST_DATABASE_URL, the database tests' pass): without that
setting it skips, as the pass on SQLite leaves it to the PostgreSQL pass; with it but
unreachable it skips with the reason printed, except in CI (CI=true), where it fails.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Coroutine, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.balancer import FailoverBalancer
from tests.factories import CHEAP_PASSWORDS_ENV, FREQUENT_JOBS_OFF
from tests.live_server import free_port
from tests.nats import shared_nats, unique_prefix

PG_URL_ENV = "DOORWARDEN_TEST_DATABASE_URL"
IN_CI = os.environ.get("CI") == "true"
BIN = Path(sys.executable).parent
STARTUP_S = 40.0
T = TypeVar("T")
S3_KEY_ID = "AKIDDOORWARDENCLUSTER"
S3_SECRET = "cluster-secret-" + uuid.uuid4().hex


def in_thread(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end from sync code, whether or not a loop runs here (the
    tests are async; the harness is sync so the bench and scripts can use it too)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


async def _admin(url: str, *statements: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_dsn(url), timeout=5)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def postgres_url() -> str:
    """The admin URL of the test PostgreSQL server; skips (fails in CI) without one."""
    url = os.environ.get(PG_URL_ENV)
    if not url:
        pytest.skip(f"needs PostgreSQL: runs in the database tests' pass ({PG_URL_ENV})")
    try:
        in_thread(_admin(url, "SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"; we say why
        message = f"PostgreSQL at {make_url(url).render_as_string()} is not reachable ({exc})"
        if IN_CI:
            pytest.fail(message + "; CI requires it")
        print(f"\nSKIP: {message}")  # noqa: T201 - the reason must be visible
        pytest.skip(message)
    return url


@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    """A new empty database (dropped at the end); its SQLAlchemy URL."""
    name = f"dw_cluster_{uuid.uuid4().hex[:12]}"
    in_thread(_admin(admin_url, f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        in_thread(_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _wait_port(port: int, process: subprocess.Popen[bytes], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port} within {timeout} s")


def _stop(process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def moto_s3(root: Path) -> Iterator[str]:
    """moto's S3 server as a process of its own (not a thread of the test: the instances'
    traffic must not queue behind the test's GIL); its URL."""
    port = free_port()
    with (root / "moto.log").open("wb") as log:
        process = subprocess.Popen(
            [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_port(port, process, "moto_server", 30)
            yield f"http://127.0.0.1:{port}"
        finally:
            _stop(process)


def create_bucket(endpoint: str, name: str) -> None:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=S3_KEY_ID,
        aws_secret_access_key=S3_SECRET,
    )
    client.create_bucket(Bucket=name)


@dataclass
class Instance:
    name: str
    port: int
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    killed_at: float | None = None  # time.time() of the SIGKILL

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "doorwarden", "serve", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_healthy(self, timeout: float = STARTUP_S) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"instance {self.name} exited with {self.process.returncode}:\n"
                    + self.log_path.read_text()[-3000:]
                )
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"instance {self.name} not healthy within {timeout} s")

    def kill(self) -> None:
        """SIGKILL: no shutdown, its connections reset, its locks' sessions dropped."""
        assert self.process is not None
        self.killed_at = time.time()
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for raw in self.log_path.read_text(errors="replace").splitlines():
            if raw.startswith("{"):
                try:
                    lines.append(json.loads(raw))
                except json.JSONDecodeError:
                    continue
        return lines


def base_env() -> dict[str, str]:
    # The developer's own DOORWARDEN_* settings must not leak into the instances.
    return {k: v for k, v in os.environ.items() if not k.startswith("DOORWARDEN_")}


@dataclass
class Cluster:
    """N instances of one deployment behind a failover balancer (A first, then B, C)."""

    root: Path
    instances_wanted: int = 3
    jobs: dict[str, float] = field(default_factory=dict)  # e.g. {"legal_interval_s": 2}
    extra_env: dict[str, str] = field(default_factory=dict)
    instances: list[Instance] = field(default_factory=list)
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(36))
    database_url: str = ""
    s3_url: str = ""
    bucket: str = ""
    nats: str = ""
    prefix: str = ""
    balancer: FailoverBalancer | None = None
    _stack: ExitStack = field(default_factory=ExitStack)

    @property
    def url(self) -> str:
        """The balancer's: what agents and browsers are given."""
        assert self.balancer is not None
        return f"http://127.0.0.1:{self.balancer.port}"

    def env(self, data_dir: Path, port: int, **overrides: str) -> dict[str, str]:
        env = base_env()
        env.update(
            {
                "DOORWARDEN_SECRET_KEY": self.secret_key,
                "DOORWARDEN_DATABASE_URL": self.database_url,
                "DOORWARDEN_DATA_DIR": str(data_dir),
                # Plain ws:// for the agent on loopback; JSON logs all the same.
                "DOORWARDEN_DEVELOPMENT": "1",
                "DOORWARDEN_LOG_JSON": "true",
                "DOORWARDEN_SIGNUP_MODE": "open",
                "DOORWARDEN_BIND_HOST": "127.0.0.1",
                "DOORWARDEN_NATS_URL": self.nats,
                "DOORWARDEN_NATS_SUBJECT_PREFIX": self.prefix,
                "DOORWARDEN_STORAGE_URL": f"s3://{self.bucket}",
                "DOORWARDEN_S3_ENDPOINT_URL": self.s3_url,
                "DOORWARDEN_S3_ACCESS_KEY_ID": S3_KEY_ID,
                "DOORWARDEN_S3_SECRET_ACCESS_KEY": S3_SECRET,
                "DOORWARDEN_S3_ALLOW_HTTP": "true",
                "DOORWARDEN_RETENTION_INTERVAL_MINUTES": "0",
                **CHEAP_PASSWORDS_ENV,
                **{f"DOORWARDEN_{k.upper()}": str(v) for k, v in FREQUENT_JOBS_OFF.items()},
                **{f"DOORWARDEN_{k.upper()}": str(v) for k, v in self.jobs.items()},
                **self.extra_env,
            }
        )
        if self.balancer is not None:
            env["DOORWARDEN_PUBLIC_BASE_URL"] = self.url
        env.update(overrides)
        return env

    def __enter__(self) -> Cluster:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def _start(self) -> None:
        admin = postgres_url()
        self.database_url = self._stack.enter_context(fresh_database(admin))
        self.s3_url = self._stack.enter_context(moto_s3(self.root))
        self.bucket = f"dw-cluster-{uuid.uuid4().hex[:12]}"
        create_bucket(self.s3_url, self.bucket)
        self.nats = self._stack.enter_context(shared_nats(self.root / "nats"))
        self.prefix = unique_prefix()
        ports = [free_port() for _ in range(self.instances_wanted)]
        self.balancer = FailoverBalancer([("127.0.0.1", p) for p in ports])
        self.balancer.start()
        self._stack.callback(self.balancer.close)
        self.cli("db", "upgrade")
        for index, port in enumerate(ports):
            name = "ABCDEFGH"[index]
            data = self.root / f"instance-{name}"
            data.mkdir(parents=True, exist_ok=True)
            self.instances.append(
                Instance(name, port, self.env(data, port), self.root / f"instance-{name}.log")
            )
        self._stack.callback(self._stop_all)
        for instance in self.instances:  # one after the other: the first records the key
            instance.start()
            instance.wait_healthy()

    def _stop_all(self) -> None:
        for instance in self.instances:
            instance.stop()

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self._stack.close()

    def cli(self, *args: str, env: dict[str, str] | None = None) -> str:
        data = self.root / "cli"
        data.mkdir(exist_ok=True)
        result = subprocess.run(
            [sys.executable, "-m", "doorwarden", *args],
            env=env or self.env(data, 0),
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if result.returncode != 0:
            raise RuntimeError(f"doorwarden {' '.join(args)} failed:\n{result.stderr}")
        return result.stdout

    def serve_once(self, timeout: float, **overrides: str) -> subprocess.CompletedProcess[str]:
        """One more `doorwarden serve` with these settings changed, expected to refuse to
        start: its exit (killed after `timeout` if it served instead)."""
        port = free_port()
        data = self.root / f"extra-{port}"
        data.mkdir()
        command = [sys.executable, "-m", "doorwarden", "serve", "--port", str(port)]
        try:
            return subprocess.run(
                command,
                env=self.env(data, port, **overrides),
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            out = exc.stderr.decode() if isinstance(exc.stderr, bytes) else exc.stderr or ""
            return subprocess.CompletedProcess(command, -9, "", out)

    def job_runs(self) -> dict[str, list[tuple[float, str]]]:
        """Every `job.run` line of every instance: job -> [(unix time, instance)], sorted."""
        runs: dict[str, list[tuple[float, str]]] = {}
        for instance in self.instances:
            for line in instance.log_lines():
                if line.get("event") != "job.run":
                    continue
                stamp = datetime.fromisoformat(str(line["timestamp"]).replace("Z", "+00:00"))
                runs.setdefault(str(line["job"]), []).append((stamp.timestamp(), instance.name))
        return {job: sorted(times) for job, times in runs.items()}
