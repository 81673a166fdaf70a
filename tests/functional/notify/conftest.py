"""Real loopback services for the notify tests: fixtures run only where a test asks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.push_service import PushService
from tests.smtp_server import SmtpServer


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A real SMTP server on loopback (aiosmtpd), for the tests that import it."""
    with SmtpServer() as server:
        yield server


@pytest.fixture
def push() -> Iterator[PushService]:
    """A real RFC 8030 push service on loopback, for the tests that import it."""
    with PushService() as service:
        yield service
