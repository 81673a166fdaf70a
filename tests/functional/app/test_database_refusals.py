"""What PostgreSQL says while it restarts or is overloaded is an answer to retry, not a
500: a server that refuses the connection with "the database system is starting up"
(57P03, for the seconds a restart takes) or "too many clients" (53300) makes the app
answer 503 `database_unavailable` with Retry-After. A server that speaks just enough of
PostgreSQL's wire protocol to refuse (tests/functional/app/test_fault_statuses.py has
the real PostgreSQL behind a proxy); a wrong database name stays a configuration bug."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from structlog.testing import capture_logs

from doorwarden.accounts.sessions import SESSION_COOKIE
from doorwarden.config import Settings, SignupMode
from doorwarden.main import create_app
from tests.factories import BASE_URL, CHEAP_COST, SECRET, assert_error, make_client

SSL_REQUEST = 80877103


def _read_message(conn: socket.socket) -> bytes:
    (length,) = struct.unpack("!I", conn.recv(4, socket.MSG_WAITALL))
    return conn.recv(length - 4, socket.MSG_WAITALL)


def _refusing_server(sqlstate: str, message: str) -> Iterator[int]:
    """Answers every startup with a FATAL ErrorResponse, as PostgreSQL does."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                startup = _read_message(conn)
                if struct.unpack("!I", startup[:4])[0] == SSL_REQUEST:
                    conn.sendall(b"N")  # no TLS; the client sends its startup message
                    _read_message(conn)
                fields = b"".join(
                    tag + value.encode() + b"\0"
                    for tag, value in ((b"S", "FATAL"), (b"C", sqlstate), (b"M", message))
                )
                conn.sendall(b"E" + struct.pack("!I", len(fields) + 5) + fields + b"\0")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(timeout=5)
    server.close()


@pytest.fixture(
    params=[
        ("57P03", "the database system is starting up"),
        ("53300", "sorry, too many clients already"),
    ],
    ids=["starting_up", "too_many_clients"],
)
def refusing_port(request: pytest.FixtureRequest) -> Iterator[int]:
    yield from _refusing_server(*request.param)


@pytest.fixture
async def refused_app(refusing_port: int, tmp_path: Path) -> AsyncIterator[FastAPI]:
    settings = Settings(
        development=False,
        secret_key=SECRET,
        database_url=f"postgresql+asyncpg://doorwarden@127.0.0.1:{refusing_port}/doorwarden",
        data_dir=tmp_path,
        signup_mode=SignupMode.open,
        public_base_url=BASE_URL,
        log_interval_s=0,
        password_hash_time_cost=CHEAP_COST.time_cost,
        password_hash_memory_kib=CHEAP_COST.memory_kib,
        password_hash_parallelism=CHEAP_COST.parallelism,
    )
    # Its start-up (schema check, sweeps) is not run: this is a server that started on a
    # healthy database, which then restarts under it.
    application = create_app(settings, check_schema=False)
    yield application
    await application.state.engine.dispose()


async def test_a_database_that_refuses_for_now_answers_503(refused_app: FastAPI) -> None:
    async with make_client(refused_app) as c:
        with capture_logs() as logs:
            api = await c.get("/api/v1/households", headers={"authorization": "Bearer dwt_x"})
            c.cookies.set(SESSION_COOKIE, "x")
            page = await c.get("/households", headers={"accept": "text/html"})
        probe = await c.get("/readyz")
    for response in (api, probe):
        assert_error(response, 503, "database_unavailable")
        assert response.headers["retry-after"] == "5"
    assert page.status_code == 503 and "text/html" in page.headers["content-type"]
    warned = [e for e in logs if e["event"] == "request.database_unavailable"]
    assert [e["path"] for e in warned] == ["/api/v1/households", "/households"]
    assert {e["error"] for e in warned} <= {
        "asyncpg.exceptions.CannotConnectNowError",
        "asyncpg.exceptions.TooManyConnectionsError",
    }
    assert not [e for e in logs if e.get("exc_info") or e["log_level"] == "error"]
