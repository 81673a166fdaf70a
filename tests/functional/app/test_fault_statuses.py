"""Faults that are nobody's mistake answer as such (issue 23, item 5): a database that
cannot be reached is 503 `database_unavailable` with Retry-After, for the API, pages and
/readyz alike, logged as one warning line without a traceback, and the same requests
succeed once it is back, without restarting the app. A database whose disk is full is
507 `storage_full`, like the clip store's.

PostgreSQL is reached through tests/tcp_proxy.py, which refuses or cuts its connections
on command; SQLite loses the directory of its database file, or fills its disk."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url
from structlog.testing import capture_logs

from doorwarden.clock import ManualClock
from doorwarden.config import Settings
from doorwarden.db import create_engine
from doorwarden.main import create_app
from tests.factories import Factory, assert_error, make_client
from tests.tcp_proxy import TcpProxy
from tests.tmpfs import fill, release, small_tmpfs

PAGE = {"accept": "text/html"}


def _needs_postgres(db_url: str) -> None:
    if not db_url.startswith("postgresql"):
        reason = "needs PostgreSQL (set DOORWARDEN_TEST_DATABASE_URL); CI runs it there"
        print(f"\nSKIP: {reason}")  # noqa: T201 - the reason must be visible
        pytest.skip(reason)


@pytest.fixture
def proxy(db_url: str) -> Iterator[TcpProxy]:
    _needs_postgres(db_url)
    url = make_url(db_url)
    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as running:
        yield running


@pytest.fixture
async def proxied_app(
    settings: Settings, proxy: TcpProxy, clock: ManualClock
) -> AsyncIterator[FastAPI]:
    """The real app whose every database connection goes through the proxy."""
    url = make_url(settings.effective_database_url).set(host="127.0.0.1", port=proxy.port)
    proxied = settings.model_copy(
        update={"database_url": url.render_as_string(hide_password=False)}
    )
    application = create_app(proxied, clock=clock)
    async with application.router.lifespan_context(application):
        yield application


def assert_database_unavailable(response: httpx.Response) -> None:
    assert response.headers["retry-after"] == "5"
    if "application/json" in response.headers["content-type"]:
        error = assert_error(response, 503, "database_unavailable")
        assert error["details"] == {"retry_after": 5}
    else:
        assert response.status_code == 503, response.text
        assert "text/html" in response.headers["content-type"]


def assert_logged_without_traceback(logs: list[MutableMapping[str, Any]], *paths: str) -> None:
    """One warning line per refused request, and nothing logged as an error."""
    warned = [e for e in logs if e["event"] == "request.database_unavailable"]
    assert sorted(e["path"] for e in warned) == sorted(paths), logs
    assert all(e["log_level"] == "warning" and e["error"] for e in warned), warned
    assert not [e for e in logs if e.get("exc_info") or e["log_level"] in ("error", "critical")]


async def _requests(
    app: FastAPI, api: httpx.AsyncClient, browser: httpx.AsyncClient
) -> list[httpx.Response]:
    """An API call with a token, a page with a session cookie, and a probe as a load
    balancer sends it (no credentials)."""
    async with make_client(app) as probe:
        readiness = await probe.get("/readyz")
    return [
        await api.get("/api/v1/households"),
        await browser.get("/households", headers=PAGE),
        readiness,
    ]


async def test_database_refused_answers_503_and_recovers_without_restart(
    proxied_app: FastAPI, proxy: TcpProxy
) -> None:
    factory = Factory(proxied_app)
    owner = await factory.user()
    await factory.household(owner)
    api = await factory.with_token(owner)
    browser = await factory.signed_in(owner)
    assert [r.status_code for r in await _requests(proxied_app, api, browser)] == [200, 200, 200]

    proxy.refuse()
    with capture_logs() as logs:
        down = await _requests(proxied_app, api, browser)
        # A write as well: its session never reaches the database either.
        created = await api.post("/api/v1/households", json={"name": "Cabin"})
        # A form that may carry legal documents: the request middleware asks the policy
        # (so the database) before the app runs, outside the app's error handlers.
        gate = await browser.post(f"/agencies/{uuid.uuid4()}/requests", headers=PAGE)
    for response in [*down, created, gate]:
        assert_database_unavailable(response)
    # /readyz answers from its own handler, without a warning per probe.
    assert_logged_without_traceback(
        logs, "/api/v1/households", "/households", "/api/v1/households", gate.url.path
    )

    proxy.restore()
    up = await _requests(proxied_app, api, browser)
    assert [r.status_code for r in up] == [200, 200, 200], [r.text for r in up]
    assert [h["name"] for h in up[0].json()] == ["Home"]  # the refused write left nothing
    await api.aclose()
    await browser.aclose()


@pytest.mark.parametrize("reset", [False, True], ids=["fin", "rst"])
async def test_connection_cut_mid_session_answers_503(
    proxied_app: FastAPI, proxy: TcpProxy, db_url: str, reset: bool
) -> None:
    """The request's transaction has already read (its caller's token) when the
    connection dies under its next query: 503 and a warning, not a 500."""
    factory = Factory(proxied_app)
    owner = await factory.user()
    api = await factory.with_token(owner)
    assert (await api.get("/api/v1/account")).status_code == 200

    # Hold the request inside its transaction: another connection (not proxied) locks the
    # users table, so the request waits on it after reading the token, until we cut.
    locker = create_engine(db_url)
    try:
        async with locker.connect() as conn:
            await conn.execute(text("BEGIN"))
            await conn.execute(text("LOCK TABLE users IN ACCESS EXCLUSIVE MODE"))
            with capture_logs() as logs:
                request = asyncio.create_task(api.get("/api/v1/account"))
                await _wait_for_lock_waiter(conn)
                proxy.cut(reset=reset)
                response = await request
            await conn.execute(text("ROLLBACK"))
    finally:
        await locker.dispose()
    assert_database_unavailable(response)
    assert_logged_without_traceback(logs, "/api/v1/account")
    assert (await api.get("/api/v1/account")).status_code == 200  # a new connection serves
    await api.aclose()


async def _wait_for_lock_waiter(conn: Any) -> None:
    query = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    for _ in range(500):
        if (await conn.execute(query)).scalar():
            return
        await asyncio.sleep(0.02)
    pytest.fail("the request never waited on the lock")


@pytest.fixture
async def sqlite_app(
    settings: Settings, db_url: str, tmp_path: Path, clock: ManualClock
) -> AsyncIterator[tuple[FastAPI, Path]]:
    """The real app on a SQLite database in a directory of its own."""
    if not db_url.startswith("sqlite"):
        pytest.skip("SQLite's own fault; the PostgreSQL run covers PostgreSQL's above")
    directory = tmp_path / "database"
    directory.mkdir()
    database = directory / "doorwarden.db"
    shutil.copyfile(make_url(db_url).database or "", database)
    own = settings.model_copy(update={"database_url": f"sqlite+aiosqlite:///{database}"})
    application = create_app(own, clock=clock)
    async with application.router.lifespan_context(application):
        yield application, directory


async def test_sqlite_file_that_cannot_be_opened_answers_503(
    sqlite_app: tuple[FastAPI, Path],
) -> None:
    app, directory = sqlite_app
    factory = Factory(app)
    owner = await factory.user()
    api = await factory.with_token(owner)
    browser = await factory.signed_in(owner)
    assert [r.status_code for r in await _requests(app, api, browser)] == [200, 200, 200]

    moved = directory.with_name("moved-away")
    directory.rename(moved)
    # The pool's one connection keeps the file it opened; a new one (after the engine
    # drops its connections, as it does when one breaks) cannot open it any more:
    # SQLite's "unable to open database file".
    await app.state.engine.dispose()
    with capture_logs() as logs:
        down = await _requests(app, api, browser)
        gate = await browser.post(f"/agencies/{uuid.uuid4()}/requests", headers=PAGE)
    for response in [*down, gate]:
        assert_database_unavailable(response)
    assert_logged_without_traceback(logs, "/api/v1/households", "/households", gate.url.path)
    assert {e["error"] for e in logs if e["event"] == "request.database_unavailable"} == {
        "sqlite3.OperationalError"
    }

    moved.rename(directory)
    assert [r.status_code for r in await _requests(app, api, browser)] == [200, 200, 200]
    await api.aclose()
    await browser.aclose()


async def test_a_query_that_is_wrong_is_still_a_500_with_a_traceback(app: FastAPI) -> None:
    """Only the database's absence is a 503: a bug in a query stays a logged 500."""

    async def broken() -> None:
        async with app.state.sessionmaker() as db:
            await db.execute(text("SELECT * FROM no_such_table"))

    app.add_api_route("/api/v1/test-broken-query", broken)
    with capture_logs() as logs:
        async with make_client(app) as c:
            response = await c.get("/api/v1/test-broken-query")
    assert_error(response, 500, "internal_error")
    assert [e["event"] for e in logs if e.get("exc_info")] == ["unhandled error"]


@pytest.fixture
async def sqlite_on_small_disk(
    settings: Settings, db_url: str, tmp_path: Path, clock: ManualClock
) -> AsyncIterator[tuple[FastAPI, Path]]:
    """The real app on a SQLite database on a small filesystem of its own."""
    if not db_url.startswith("sqlite"):
        pytest.skip("SQLite's own fault; PostgreSQL's disk is the database server's")
    with small_tmpfs(tmp_path / "disk", 16 * 1024 * 1024) as disk:
        database = disk / "doorwarden.db"
        shutil.copyfile(make_url(db_url).database or "", database)
        own = settings.model_copy(update={"database_url": f"sqlite+aiosqlite:///{database}"})
        application = create_app(own, clock=clock)
        async with application.router.lifespan_context(application):
            yield application, disk


async def test_sqlite_on_a_full_disk_answers_507_and_recovers(
    sqlite_on_small_disk: tuple[FastAPI, Path],
) -> None:
    app, disk = sqlite_on_small_disk
    factory = Factory(app)
    api = await factory.with_token(await factory.user())
    fill(disk, leave_bytes=0)
    with capture_logs() as logs:
        refused = await api.post("/api/v1/households", json={"name": "Home"})
    error = assert_error(refused, 507, "storage_full")
    assert error["details"] == {"retry_after": 60}
    assert refused.headers["retry-after"] == "60"
    full = [e for e in logs if e["event"] == "request.database_full"]
    assert [(e["path"], e["log_level"]) for e in full] == [("/api/v1/households", "warning")]
    assert not [e for e in logs if e.get("exc_info") or e["log_level"] == "error"]

    release(disk)
    assert (await api.post("/api/v1/households", json={"name": "Home"})).status_code == 201
    assert [h["name"] for h in (await api.get("/api/v1/households")).json()] == ["Home"]
    await api.aclose()
