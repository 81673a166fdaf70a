"""What the tests of a local service (Mosquitto, NATS) share: whether something answers
on a port, and skipping with the reason printed when the service cannot be had, except in
CI (CI=true), where the test fails instead."""

from __future__ import annotations

import socket

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
