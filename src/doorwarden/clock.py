"""The current time, replaceable per app so tests can move it (lock expiry, sessions)."""

from __future__ import annotations

from datetime import datetime, timedelta

from doorwarden.db import utcnow


class Clock:
    def now(self) -> datetime:
        return utcnow()


class ManualClock(Clock):
    """A clock that moves only when told (tests, benchmarks)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or utcnow()

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta
