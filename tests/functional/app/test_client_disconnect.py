"""A client that goes away mid-request (a camera losing its network halfway through an
upload) is logged at info as `request.client_disconnected`, not as an unexpected error:
no traceback from us or from uvicorn, no 500 in the access log, and the server goes on
serving. Against a real server (tests/live_server.py) and a real socket closed early."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator, MutableMapping
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from structlog.testing import capture_logs

from doorwarden.config import Settings
from tests.factories import Factory
from tests.live_server import running_server
from tests.polling import wait_for


@pytest.fixture
def server(settings: Settings) -> Iterator[str]:
    with running_server(settings) as base_url:
        yield base_url


def _send_part_then_close(base_url: str, head: str, declared: int, sent: bytes) -> None:
    """Headers announcing `declared` body bytes, `sent` of them, then the socket closed."""
    where = urlsplit(base_url)
    with socket.create_connection((where.hostname or "127.0.0.1", where.port or 80)) as sock:
        request = f"{head}Host: {where.netloc}\r\nContent-Length: {declared}\r\n\r\n"
        sock.sendall(request.encode() + sent)


def _disconnected(logs: list[MutableMapping[str, Any]], path: str) -> bool:
    return any(e["event"] == "request.client_disconnected" and e["path"] == path for e in logs)


async def _camera_token(app: FastAPI) -> str:
    factory = Factory(app)
    owner = await factory.user()
    camera = await factory.camera(owner, await factory.household(owner))
    token = camera.client.headers["authorization"]
    await camera.client.aclose()
    return token


@pytest.mark.parametrize("kind", ["clip_part", "json_body"])
async def test_client_gone_mid_body_is_logged_as_such(
    app: FastAPI, server: str, caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    if kind == "clip_part":  # the route reads the raw body itself
        path = "/api/v1/device/clips/1/data"
        declared = 4 * 1024 * 1024
        head = (
            f"PUT {path} HTTP/1.1\r\nAuthorization: {await _camera_token(app)}\r\n"
            f"Content-Type: application/octet-stream\r\n"
            f"Content-Range: bytes 0-{declared - 1}/{declared}\r\n"
        )
    else:  # FastAPI parses the body (and would make a 400 of the disconnect)
        path = "/api/v1/session"
        declared = 100_000
        head = f"POST {path} HTTP/1.1\r\nContent-Type: application/json\r\n"
    caplog.set_level(logging.INFO)
    with capture_logs() as logs:
        _send_part_then_close(server, head, declared, b'{"email": "' + b"a" * 65536)
        wait_for(lambda: _disconnected(logs, path), 20, "the disconnect to be logged")
        wait_for(
            lambda: any(e["event"] == "request" and e["path"] == path for e in logs),
            20,
            "the access log line",
        )
        # The server goes on serving, on a new connection.
        async with httpx.AsyncClient(base_url=server, timeout=10) as fresh:
            assert (await fresh.get("/healthz")).status_code == 200

    gone = [e for e in logs if e["event"] == "request.client_disconnected"]
    assert [(e["path"], e["log_level"]) for e in gone] == [(path, "info")]
    assert gone[0]["method"] == ("PUT" if kind == "clip_part" else "POST")
    access = [e for e in logs if e["event"] == "request" and e["path"] == path]
    assert [e["status"] for e in access] == [499]  # not a 500, nor a 400 for a body never sent
    assert not [e for e in logs if e.get("exc_info") or e["log_level"] in ("error", "critical")]
    assert not [e for e in logs if e["event"] == "unhandled error"]
    # uvicorn logs what escapes the app ("Exception in ASGI application") with a traceback.
    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert not noisy, [r.getMessage() for r in noisy]
