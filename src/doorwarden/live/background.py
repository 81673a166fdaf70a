"""Work that outlives the call that started it (an audit write after a talk ends, a bus
publish from a callback): each task is kept referenced, so the loop does not collect it
half-way, and what fails is logged under the owner's event name."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import structlog

log = structlog.get_logger("doorwarden.live")


class Background:
    def __init__(self, failed_event: str) -> None:
        self.failed_event = failed_event
        self._tasks: set[asyncio.Future[None]] = set()

    def spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def cancel(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    def _done(self, task: asyncio.Future[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.warning(self.failed_event, error=repr(exc))
