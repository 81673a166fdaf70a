"""One ONVIF camera's PullPoint subscription, kept up on a thread of its own: subscribe
(onvif-zeep-async's PullPointManager, which also renews it), pull messages, hand them
to `handle`; on any failure (network, SOAP fault, wrong credentials, the camera
rebooting and forgetting the subscription) tear down and subscribe again after a
backoff that doubles up to its cap and resets once a subscription works.

Shared by the doorbell's ONVIF source (agent/ring/onvif.py) and the event triggers
(agent/onvif/events.py). `stop` cancels a pull in flight, so stopping does not wait
for the camera's long-poll timeout, and unsubscribes when the camera still answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any

import structlog

from doorwarden.agent.capture.rtsp import Backoff
from doorwarden.agent.onvif.device import translate

log = structlog.get_logger("doorwarden.agent.onvif.pullpoint")

Handle = Callable[[Iterable[Any]], object]
PULL_TIMEOUT_S = 10.0  # the camera holds a PullMessages this long when it has nothing
SUBSCRIPTION_S = 60
MESSAGE_LIMIT = 100


class PullPoint:
    """`name` names the thread and the log lines (`event` prefix: "ring.onvif" keeps the
    doorbell's log names)."""

    def __init__(
        self,
        camera: str,
        *,
        host: str,
        port: int,
        username: str | None,
        password: Callable[[], str | None],
        handle: Handle,
        event: str = "onvif",
        backoff: Backoff | None = None,
        pull_timeout_s: float = PULL_TIMEOUT_S,
    ) -> None:
        self.camera = camera
        self.host, self.port, self.username = host, port, username
        self.password = password  # read at each subscription: a rotated file is picked up
        self.handle = handle
        self.event = event
        self.backoff = backoff or Backoff(2.0, 120.0)
        self.pull_timeout_s = pull_timeout_s
        self.subscribed = threading.Event()
        self.subscriptions = 0  # successful subscriptions (a resubscription counts again)
        self.delays: list[float] = []  # each retry's wait, for status and tests
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        import onvif  # type: ignore[import-untyped]  # noqa: F401, PLC0415 - optional extra

        self._thread = threading.Thread(
            target=self._run, name=f"doorwarden-onvif-{self.camera}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        loop, task = self._loop, self._task
        if loop is not None and task is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(task.cancel)
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        if self._stop.is_set():
            return
        try:
            while not self._stop.is_set():
                try:
                    await self._session()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - network, SOAP, auth: all retried
                    self.subscribed.clear()
                    delay = self.backoff.next_delay()
                    self.delays.append(delay)
                    self.last_error = str(
                        translate(exc, f"camera {self.camera!r} at {self.host}:{self.port}")
                    )
                    log.warning(
                        f"{self.event}_failed", camera=self.camera, host=self.host,
                        error=self.last_error, retry_in=delay,
                    )  # fmt: skip
                    await asyncio.sleep(delay)
        except asyncio.CancelledError:
            pass  # stop(): the loop ends here

    async def _session(self) -> None:
        from onvif import ONVIFCamera  # noqa: PLC0415 - optional extra

        device = ONVIFCamera(
            self.host, self.port, self.username, self.password(), adjust_time=True, no_cache=True
        )
        lost = asyncio.Event()
        try:
            await device.update_xaddrs()
            manager = await device.create_pullpoint_manager(
                timedelta(seconds=SUBSCRIPTION_S), lost.set
            )
            try:
                service = manager.get_service()
                self.subscribed.set()
                self.subscriptions += 1
                log.info(f"{self.event}_subscribed", camera=self.camera, host=self.host)
                self.backoff.reset()
                timeout = timedelta(seconds=self.pull_timeout_s)
                while not self._stop.is_set():
                    if lost.is_set():
                        raise ConnectionError("the subscription could not be renewed")
                    result = await service.PullMessages(
                        {"MessageLimit": MESSAGE_LIMIT, "Timeout": timeout}
                    )
                    self.handle(getattr(result, "NotificationMessage", None) or [])
            finally:
                self.subscribed.clear()
                with contextlib.suppress(Exception):  # best effort: it expires anyway
                    await asyncio.wait_for(manager.shutdown(), 2.0)
        finally:
            self.subscribed.clear()
            await device.close()
