"""A real NATS server for the tests that join server instances.

`shared_nats(directory)` is the URL of the server on 127.0.0.1:4222 when one answers there
(the test machines run one as a service); else a private one is started for the block.
`NatsServer` starts a `nats-server` process of the test's own on a free port (core NATS,
no JetStream, nothing kept on disk), which the test may kill and start again on the same
port (`restart()`), as a broker that crashed and came back. Without the binary the test is
skipped with the reason printed, except in CI (CI=true), where it fails.

Parallel tests share the machine's server: each test takes its own subject prefix
(`unique_prefix()`) so that they never hear each other.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

from tests.live_server import free_port
from tests.services import ServiceProcess, need, reachable

HOST, PORT = "127.0.0.1", 4222
BINARY = shutil.which("nats-server") or (
    "/usr/sbin/nats-server" if os.path.exists("/usr/sbin/nats-server") else None
)


def _need(reason: str) -> None:
    need("NATS", reason)


def unique_prefix() -> str:
    """A subject prefix of the test's own (`DOORWARDEN_NATS_SUBJECT_PREFIX`)."""
    return "t" + uuid.uuid4().hex[:12]


def unused_url() -> str:
    """A nats:// URL where nothing listens (for "NATS unreachable" tests)."""
    return f"nats://{HOST}:{free_port()}"


class NatsServer(ServiceProcess):
    """One nats-server process on 127.0.0.1:`port`, its log in `directory`."""

    name = "nats-server"

    def __init__(self, directory: Path, port: int | None = None) -> None:
        if BINARY is None:
            _need("nats-server is not installed (Debian: apt install nats-server)")
        self.binary = str(BINARY)
        super().__init__(directory, port or free_port())

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def command(self) -> list[str]:
        return [self.binary, "-a", self.host, "-p", str(self.port)]


@contextlib.contextmanager
def private_nats(directory: Path) -> Iterator[NatsServer]:
    server = NatsServer(directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def shared_nats(directory: Path) -> Iterator[str]:
    """The URL of the machine's server on 127.0.0.1:4222, else of a private one for the block."""
    if reachable(HOST, PORT):
        yield f"nats://{HOST}:{PORT}"
        return
    with private_nats(directory) as server:
        yield server.url
