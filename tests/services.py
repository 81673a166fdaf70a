"""What the tests of a local service (Mosquitto, NATS) share: whether something answers
on a port, and skipping with the reason printed when the service cannot be had, except in
CI (CI=true), where the test fails instead."""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.tmpfs import IN_CI


def need(service: str, reason: str) -> None:
    if IN_CI:
        pytest.fail(f"CI must run the {service} tests: {reason}")
    print(f"skipping: {reason}")  # noqa: T201 - said in the output, not only in -rs
    pytest.skip(reason)


def reachable(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


class ServiceProcess:
    """One server process of the test's own on 127.0.0.1:`port`, its output in
    `directory/<name>.log`: started (and waited for until it answers), killed as a crash
    (no goodbye to its clients), stopped, started again on the same port. A subclass
    gives its `name` and its `command()`."""

    name = "service"

    def __init__(self, directory: Path, port: int) -> None:
        self.directory = directory
        self.host = "127.0.0.1"
        self.port = port
        directory.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    @property
    def log_path(self) -> Path:
        return self.directory / f"{self.name}.log"

    def start(self, timeout_s: float = 10.0) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=log)
        deadline = time.monotonic() + timeout_s
        while not reachable(self.host, self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start: {self.log()[-2000:]}")
            time.sleep(0.02)

    def kill(self) -> None:
        """Gone at once, as a crashed server (no goodbye to the clients)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def restart(self, timeout_s: float = 10.0) -> None:
        """Killed, then started again on the same port (clients reconnect by themselves)."""
        self.kill()
        self.start(timeout_s)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")
        return ""
