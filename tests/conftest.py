"""Test harness: a fresh database per test on the configured backend, the real app
behind an async HTTP client, and factories per domain.

Backend: DOORWARDEN_TEST_DATABASE_URL (a PostgreSQL URL whose database we may create
databases from) or SQLite by default. Each test gets its own database cloned from a
migrated template (a file copy on SQLite, CREATE DATABASE ... TEMPLATE on PostgreSQL),
so tests exercise real commits and real concurrency and still cannot see each other.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from doorwarden.db import create_engine, upgrade_database

PG_URL_ENV = "DOORWARDEN_TEST_DATABASE_URL"
IN_CI = os.environ.get("CI") == "true"

pytest_plugins = ["tests.factories", "tests.watchdog"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "db_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.db)
    # Files with a slow test first (each file keeps its order and stays together): in
    # parallel workers, a two-minute test that starts last is a run two minutes longer.
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)


def pytest_report_header() -> str:
    return f"doorwarden database backend: {_backend_label()}"


def _backend_label() -> str:
    url = os.environ.get(PG_URL_ENV)
    return "sqlite" if not url else make_url(url).render_as_string(hide_password=True)


class _SqliteDatabases:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.template = root / "template.db"

    async def prepare(self) -> None:
        await upgrade_database(f"sqlite+aiosqlite:///{self.template}")

    async def create(self) -> str:
        path = self.root / f"t_{uuid.uuid4().hex}.db"
        shutil.copyfile(self.template, path)
        return f"sqlite+aiosqlite:///{path}"

    async def drop(self, url: str) -> None:
        Path(make_url(url).database or "").unlink(missing_ok=True)  # noqa: ASYNC240 - tiny, local

    async def close(self) -> None:
        return None


class _PostgresDatabases:
    def __init__(self, url: str) -> None:
        self.admin_url = make_url(url)
        self.template = f"dw_template_{os.getpid()}"

    def _url(self, name: str) -> str:
        return self.admin_url.set(database=name).render_as_string(hide_password=False)

    async def _admin(self, *statements: str) -> None:
        engine = create_engine(self.admin_url.render_as_string(hide_password=False))
        try:
            async with engine.connect() as conn:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                for statement in statements:
                    await conn.execute(text(statement))
        finally:
            await engine.dispose()

    async def prepare(self) -> None:
        await self._admin(
            f'DROP DATABASE IF EXISTS "{self.template}"', f'CREATE DATABASE "{self.template}"'
        )
        await upgrade_database(self._url(self.template))

    async def create(self) -> str:
        name = f"dw_t_{uuid.uuid4().hex[:16]}"
        await self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        return self._url(name)

    async def drop(self, url: str) -> None:
        await self._admin(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')

    async def close(self) -> None:
        await self._admin(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)')


async def _postgres_reachable(url: str) -> str | None:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"; we say why
        return f"{type(exc).__name__}: {exc}"
    finally:
        await engine.dispose()


def _start_local_postgres() -> bool:
    """Start Debian's local cluster if it is installed but stopped (needs root)."""
    ctl = shutil.which("pg_ctlcluster")
    versions = (
        sorted(Path("/etc/postgresql").glob("*/main")) if Path("/etc/postgresql").is_dir() else []
    )
    if ctl is None or not versions or os.geteuid() != 0:
        return False
    version = versions[-1].parent.name
    started = subprocess.run(
        [ctl, "--skip-systemctl-redirect", version, "main", "start"],
        capture_output=True,
        check=False,
        timeout=60,
    )
    return started.returncode == 0


@pytest.fixture(scope="session")
async def databases(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[_SqliteDatabases | _PostgresDatabases]:
    pg_url = os.environ.get(PG_URL_ENV)
    manager: _SqliteDatabases | _PostgresDatabases
    if pg_url:
        problem = await _postgres_reachable(pg_url)
        if problem is not None and _start_local_postgres():
            problem = await _postgres_reachable(pg_url)
        if problem is not None:
            message = f"PostgreSQL at {_backend_label()} is not reachable ({problem})"
            if IN_CI:
                pytest.fail(message + "; CI requires it")
            print(f"\nSKIP: {message}")  # noqa: T201 - the reason must be visible
            pytest.skip(message)
        manager = _PostgresDatabases(pg_url)
    else:
        manager = _SqliteDatabases(tmp_path_factory.mktemp("databases"))
    await manager.prepare()
    yield manager
    await manager.close()


@pytest.fixture
async def db_url(databases: _SqliteDatabases | _PostgresDatabases) -> AsyncIterator[str]:
    url = await databases.create()
    yield url
    await databases.drop(url)
