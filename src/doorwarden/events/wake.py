"""Telling notify that an event committed: `app.state.notify_wake`, when notify set one
(a plain or an async callable); a no-op otherwise. A failure to wake is logged, never the
caller's: the event is committed, and notify's own schedule finds it anyway."""

from __future__ import annotations

import inspect
from typing import Any

import structlog

log = structlog.get_logger("doorwarden.events")


async def notify_wake(state: Any) -> None:
    wake = getattr(state, "notify_wake", None)
    if wake is None:
        return
    try:
        result = wake()
        if inspect.isawaitable(result):
            await result
    except Exception:  # the event is safe; notify's schedule picks it up
        log.exception("events.notify_wake_failed")
