"""The bus of one process: what several instances would say to each other, said within
it. The default without DOORWARDEN_NATS_URL; two hubs sharing one LocalBus behave as two
instances (tests). Each subscription has its own queue and task, as a NATS subscription
has: a handler sees its messages one at a time, in order, never inside `publish`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import structlog

from doorwarden.bus.base import Handler, new_instance_id, subject_matches

log = structlog.get_logger("doorwarden.bus")

QUEUE_LIMIT = 10_000  # a stuck handler loses messages rather than memory (as NATS's slow consumers)


class LocalSubscription:
    def __init__(self, bus: LocalBus, pattern: str, handler: Handler) -> None:
        self.bus, self.pattern, self.handler = bus, pattern, handler
        self.queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(QUEUE_LIMIT)
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            subject, data = await self.queue.get()
            await _call(self.handler, subject, data)

    def deliver(self, subject: str, data: bytes) -> None:
        try:
            self.queue.put_nowait((subject, data))
        except asyncio.QueueFull:
            log.warning("bus.slow_consumer", subject=subject)

    async def unsubscribe(self) -> None:
        self.bus.exchange.discard(self)
        self.bus.own.discard(self)
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


class LocalBus:
    def __init__(self, prefix: str = "doorwarden", *, instance_id: str | None = None) -> None:
        self.prefix = prefix
        self.instance_id = instance_id or new_instance_id()
        self.max_payload = 64 * 1024 * 1024
        self.exchange: set[LocalSubscription] = set()  # every view's subscriptions
        self.own: set[LocalSubscription] = set()  # this view's, closed with it

    @property
    def connected(self) -> bool:
        return True

    def view(self) -> LocalBus:
        """Another instance on the same process-wide bus: its own id, the same subjects
        (tests join two hubs this way)."""
        other = LocalBus(self.prefix)
        other.exchange = self.exchange
        return other

    async def publish(self, subject: str, data: bytes) -> None:
        for sub in list(self.exchange):
            if subject_matches(sub.pattern, subject):
                sub.deliver(subject, data)

    async def subscribe(self, subject: str, handler: Handler) -> LocalSubscription:
        sub = LocalSubscription(self, subject, handler)
        self.exchange.add(sub)
        self.own.add(sub)
        return sub

    async def request(self, subject: str, data: bytes, *, timeout: float) -> bytes | None:  # noqa: ASYNC109 - the deadline is the answer's, not the call's
        handlers = [s.handler for s in self.exchange if subject_matches(s.pattern, subject)]
        try:
            async with asyncio.timeout(timeout):
                for handler in handlers:
                    if (answer := await _call(handler, subject, data)) is not None:
                        return answer
        except TimeoutError:
            pass
        return None

    def on_change(self, callback: Callable[[bool], None]) -> None:
        """Never called: an in-process bus is never lost."""

    async def close(self) -> None:
        for sub in list(self.own):
            await sub.unsubscribe()


async def _call(handler: Handler, subject: str, data: bytes) -> bytes | None:
    try:
        return await handler(subject, data)
    except Exception as exc:  # noqa: BLE001 - one bad message must not stop the subscription
        log.warning("bus.handler_failed", subject=subject, error=repr(exc))
        return None
