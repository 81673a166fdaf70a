"""The bus's contract, shared by the in-process and the NATS implementations."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Protocol

# A handler gets the subject and the payload; what it returns answers a request (None:
# no answer, or the message was not a request).
Handler = Callable[[str, bytes], Awaitable[bytes | None]]


class BusUnavailable(RuntimeError):
    """The bus a setting names cannot be reached at start (the message says which)."""


class Subscription(Protocol):
    async def unsubscribe(self) -> None: ...


class Bus(Protocol):
    instance_id: str  # this process, as the other instances know it
    prefix: str  # the first token of every subject (DOORWARDEN_NATS_SUBJECT_PREFIX)
    max_payload: int  # the largest message the bus carries

    @property
    def connected(self) -> bool: ...

    async def publish(self, subject: str, data: bytes) -> None:
        """Fire and forget. A lost connection or an oversized message is logged and the
        message dropped: it never raises into the caller."""

    async def subscribe(self, subject: str, handler: Handler) -> Subscription:
        """`handler` for each message on `subject` (NATS wildcards `*` and `>`), one at a
        time in arrival order; an exception in it is logged, never raised."""

    async def request(self, subject: str, data: bytes, *, timeout: float) -> bytes | None:  # noqa: ASYNC109 - the deadline is the answer's, not the call's
        """The first answer, or None when nobody answers, in time or at all, or the bus
        is disconnected."""

    def on_change(self, callback: Callable[[bool], None]) -> None:
        """`callback(connected)` each time the connection is lost or comes back."""

    async def close(self) -> None: ...


def new_instance_id() -> str:
    return uuid.uuid4().hex


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: `*` is one token, a final `>` one or more."""
    want, have = pattern.split("."), subject.split(".")
    for i, token in enumerate(want):
        if token == ">":
            return len(have) > i
        if i >= len(have) or (token not in ("*", have[i])):
            return False
    return len(want) == len(have)
