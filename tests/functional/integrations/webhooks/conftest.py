"""The webhook tests' receiver, settings that trust its CA, and running the job by hand."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from doorwarden.clock import ManualClock
from doorwarden.config import Settings
from tests.functional.integrations.webhooks.receiver import Receiver


@pytest.fixture
def receiver(tmp_path: Path, clock: ManualClock) -> Iterator[Receiver]:
    # The server signs with its own clock's time (the tests move it): check against that.
    directory = tmp_path / "receiver"
    directory.mkdir()
    with Receiver(directory, now=lambda: clock.now().timestamp()) as server:
        yield server


@pytest.fixture
def settings(settings: Settings, receiver: Receiver) -> Settings:
    """Development mode (a loopback receiver), its CA trusted, the job run by the tests."""
    return settings.model_copy(
        update={
            "development": True,
            "webhook_ca_file": receiver.ca_file,
            "webhook_interval_s": 0,
            "webhook_resolve": {"hooks.test": "127.0.0.1"},
        }
    )
