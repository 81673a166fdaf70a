"""The bus over NATS (core NATS: fire-and-forget, no JetStream; live video may be lost,
never late). nats-py reconnects by itself, forever, with a jittered wait between tries;
subscriptions come back with the connection. While it is down, a publish is dropped (not
buffered: a burst of stale video on reconnect helps nobody) and a request answers None,
so a lost NATS never raises into live view: the callers degrade and recover through
`on_change`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import nats.errors
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSubscription

from doorwarden.bus.base import Handler, new_instance_id

log = structlog.get_logger("doorwarden.bus")

CONNECT_TIMEOUT_S = 2
RECONNECT_WAIT_S = 1  # plus nats-py's jitter, between two tries of every server


class NatsBusSubscription:
    def __init__(self, sub: NatsSubscription) -> None:
        self.sub = sub

    async def unsubscribe(self) -> None:
        try:
            await self.sub.unsubscribe()
        except nats.errors.Error as exc:  # closed or reconnecting: nothing left to undo
            log.info("bus.unsubscribe_failed", error=repr(exc))


class NatsBus:
    def __init__(self, nc: Client, prefix: str, instance_id: str) -> None:
        self.nc = nc
        self.prefix = prefix
        self.instance_id = instance_id
        self.max_payload = nc.max_payload
        self._callbacks: list[Callable[[bool], None]] = []

    @classmethod
    async def connect(
        cls, servers: list[str], prefix: str, *, connect_timeout: float = CONNECT_TIMEOUT_S
    ) -> NatsBus:
        """Connected, or nats-py's error when no server answers now."""
        instance_id = new_instance_id()
        holder: list[NatsBus] = []

        async def disconnected() -> None:
            if holder:
                holder[0]._changed(False)

        async def reconnected() -> None:
            if holder:
                holder[0]._changed(True)

        async def error(exc: Exception) -> None:
            log.info("bus.nats_error", error=repr(exc))

        # nats-py retries the first connection forever too when told to reconnect
        # forever: the start has its own deadline, so a NATS that is not there says so.
        nc = Client()
        connecting = nc.connect(
            servers=servers,
            name=f"doorwarden-{instance_id[:8]}",
            connect_timeout=int(max(1, connect_timeout)),
            allow_reconnect=True,
            max_reconnect_attempts=-1,  # forever: an instance outlives NATS restarts
            reconnect_time_wait=RECONNECT_WAIT_S,
            disconnected_cb=disconnected,
            reconnected_cb=reconnected,
            error_cb=error,
        )
        try:
            await asyncio.wait_for(connecting, connect_timeout + 1)
        except BaseException:
            await nc.close()
            raise
        bus = cls(nc, prefix, instance_id)
        holder.append(bus)
        return bus

    @property
    def connected(self) -> bool:
        return bool(self.nc.is_connected)

    def _changed(self, connected: bool) -> None:
        log.warning("bus.connected" if connected else "bus.disconnected", instance=self.instance_id)
        for callback in list(self._callbacks):
            try:
                callback(connected)
            except Exception as exc:  # noqa: BLE001 - one listener must not silence the others
                log.warning("bus.callback_failed", error=repr(exc))

    def on_change(self, callback: Callable[[bool], None]) -> None:
        self._callbacks.append(callback)

    async def publish(self, subject: str, data: bytes) -> None:
        if not self.nc.is_connected:
            return  # dropped: see the module's docstring
        try:
            await self.nc.publish(subject, data)
        except (nats.errors.Error, OSError) as exc:
            log.info("bus.publish_dropped", subject=subject, size=len(data), error=repr(exc))

    async def subscribe(self, subject: str, handler: Handler) -> NatsBusSubscription:
        async def deliver(msg: Msg) -> None:
            try:
                answer = await handler(msg.subject, msg.data)
            except Exception as exc:  # noqa: BLE001 - one bad message must not stop the rest
                log.warning("bus.handler_failed", subject=msg.subject, error=repr(exc))
                return
            if answer is not None and msg.reply:
                await self.publish(msg.reply, answer)

        return NatsBusSubscription(await self.nc.subscribe(subject, cb=deliver))

    async def request(self, subject: str, data: bytes, *, timeout: float) -> bytes | None:  # noqa: ASYNC109 - the deadline is the answer's, not the call's
        if not self.nc.is_connected:
            return None
        try:
            msg = await self.nc.request(subject, data, timeout=timeout)
        except nats.errors.NoRespondersError:
            return None
        except (nats.errors.Error, OSError, TimeoutError) as exc:
            log.info("bus.request_failed", subject=subject, error=repr(exc))
            return None
        return bytes(msg.data)

    async def close(self) -> None:
        self._callbacks.clear()
        try:
            await self.nc.drain()
        except (nats.errors.Error, OSError, TimeoutError) as exc:
            log.info("bus.close_failed", error=repr(exc))
            await self.nc.close()
