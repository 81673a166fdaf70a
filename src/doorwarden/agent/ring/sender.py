"""Sending queued rings to the server: over the live link at once, by HTTP when the
link has been down for long, until the server acknowledges each one.

* Link up: each queued event goes as `{"type": "event", ...}` (docs/live-view.md); the
  file is removed when `{"type": "event_ack", "id": ...}` comes back. An event not
  acknowledged within `resend_s`, or sent on a connection that has since dropped, is sent
  again: the server deduplicates by id, so a replay costs nothing and a lost one is
  never lost. A refused event (`"refused": code`: rate limited, unknown camera,
  malformed) is dropped and logged: sending it again would be refused again.
* Link down (or no link: live view off) for `fallback_after_s`: `POST
  /api/v1/device/events` with the same body, 201/200 removing the file; 429 waits for
  `Retry-After`; network errors and 5xx back off; 400/422 drop the event (logged); 401
  means the camera was removed (kept, not retried until the next start); 404/405 an
  older server without the endpoint (kept, retried slowly).

One thread, woken when a ring is queued or acknowledged, and every `poll_s` to notice
the link coming back.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import httpx
import structlog

from doorwarden.agent.capture.rtsp import Backoff
from doorwarden.agent.delivery.identity import DeviceIdentity
from doorwarden.agent.delivery.uploader import error_of, http_client
from doorwarden.agent.ring.queue import EventQueue, RingEvent

log = structlog.get_logger("doorwarden.agent.ring.sender")

EVENTS_PATH = "/api/v1/device/events"
GONE_STATUSES = frozenset({404, 405})  # a server older than the endpoint


class Link(Protocol):
    """What the sender needs of the live link (agent/live/link.py)."""

    @property
    def connected(self) -> bool: ...

    connections: int

    def send_text(self, text: str) -> bool: ...


class EventSender:
    def __init__(
        self,
        queue: EventQueue,
        *,
        link: Link | None = None,
        identity: DeviceIdentity | None = None,
        fallback_after_s: float = 10.0,
        resend_s: float = 30.0,
        poll_s: float = 0.2,
        backoff: Backoff | None = None,
        client: httpx.Client | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.queue = queue
        self.link = link
        self.identity = identity
        self.fallback_after_s = fallback_after_s
        self.resend_s = resend_s
        self.poll_s = poll_s
        self.backoff = backoff or Backoff(1.0, 300.0)
        self.delivered = 0  # acknowledged (or accepted over HTTP) by the server
        self.refused = 0  # refused for good, dropped
        self.blocked: str | None = None  # why HTTP delivery stopped (a removed camera)
        self._client = client
        self._clock = clock
        self._memory: dict[str, RingEvent] = {}  # presses the disk refused: kept while we live
        self._sent: dict[str, tuple[float, int]] = {}  # id -> (when, connection number)
        self._down_since: float | None = None
        self._http_next = 0.0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # -- other threads -------------------------------------------------------------------

    def start(self) -> None:
        self._down_since = self._clock()
        self._thread = threading.Thread(target=self._run, name="doorwarden-ring", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        if self._client is not None:
            self._client.close()
            self._client = None

    def wake(self, unsaved: RingEvent | None = None) -> None:
        """A ring was queued (`unsaved`: one the disk refused, kept in memory)."""
        if unsaved is not None:
            with self._lock:
                self._memory[unsaved.id] = unsaved
        self._wake.set()

    def acked(self, body: dict[str, Any]) -> None:
        """The server's `event_ack` (called on the link's thread)."""
        ident = body.get("id")
        if not isinstance(ident, str):
            log.warning("ring.bad_ack", message=str(body)[:200])
            return
        refused = body.get("refused")
        if refused is not None:
            self.refused += 1
            log.warning(
                "ring.refused", id=ident, code=str(refused), message=str(body.get("message")),
                effect="dropped: sending it again would be refused again",
            )  # fmt: skip
        else:
            self.delivered += 1
            log.info("ring.acked", id=ident, event_id=body.get("event_id"))
        self._forget(ident)
        self._wake.set()

    def pending(self) -> list[RingEvent]:
        """What waits for the server's acknowledgement, oldest first."""
        events = {e.id: e for e in self.queue.pending()}
        with self._lock:
            events.update(self._memory)
        return sorted(events.values(), key=lambda e: (e.at, e.id))

    # -- the sender thread ---------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._pass()
            except Exception:  # a bug must not end delivery of rings for good
                log.exception("ring.sender_failed")
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def _pass(self) -> None:
        link, now = self.link, self._clock()
        if link is not None and link.connected:
            self._down_since = None
            connection = link.connections
            for event in self.pending():
                sent = self._sent.get(event.id)
                if sent is not None and sent[1] == connection and now - sent[0] < self.resend_s:
                    continue
                text = json.dumps({"type": "event", **event.message()})
                if not link.send_text(text):
                    return  # the connection just dropped: the next pass sees it
                self._sent[event.id] = (now, connection)
                log.info("ring.sent", id=event.id, camera=event.camera, via="link")
            return
        if self._down_since is None:
            self._down_since = now
        if link is not None and now - self._down_since < self.fallback_after_s:
            return
        if self.identity is None or self.blocked is not None or now < self._http_next:
            return
        for event in self.pending():
            if self._stop.is_set() or not self._post(event):
                return

    def _post(self, event: RingEvent) -> bool:
        """One event over HTTP; False to stop this pass (wait, or give up)."""
        assert self.identity is not None  # noqa: S101 - checked by the caller
        if self._client is None:
            self._client = http_client(10.0)
        try:
            response = self._client.post(
                self.identity.server.rstrip("/") + EVENTS_PATH,
                json=event.message(),
                headers={"Authorization": f"Bearer {self.identity.token}"},
            )
        except httpx.HTTPError as exc:
            return self._later(f"{type(exc).__name__}: {exc}")
        status = response.status_code
        if status in (200, 201):
            self.delivered += 1
            self.backoff.reset()
            log.info("ring.sent", id=event.id, camera=event.camera, via="http", status=status)
            self._forget(event.id)
            return True
        code, message, _ = error_of(response)
        if status == 429:
            return self._later(code, retry_after=_retry_after(response))
        if status == 401:
            self.blocked = message or code
            log.error("ring.unauthorized", code=code, message=message, effect="kept, not sent")
            return False
        if status in GONE_STATUSES or status >= 500:
            return self._later(f"{status} {code}")
        self.refused += 1
        log.warning("ring.refused", id=event.id, code=code, message=message, effect="dropped")
        self._forget(event.id)
        return True

    def _later(self, error: str, *, retry_after: float | None = None) -> bool:
        delay = max(self.backoff.next_delay(), retry_after or 0.0)
        self._http_next = self._clock() + delay
        log.warning("ring.http_failed", error=error, retry_in=delay)
        return False

    def _forget(self, ident: str) -> None:
        with self._lock:
            self._memory.pop(ident, None)
        self._sent.pop(ident, None)
        with contextlib.suppress(ValueError, OSError):
            self.queue.remove(ident)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    with contextlib.suppress(TypeError, ValueError):
        moment = parsedate_to_datetime(value)
        return max(0.0, (moment - datetime.now(UTC)).total_seconds())
    return None
