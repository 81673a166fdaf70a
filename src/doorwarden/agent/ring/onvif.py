"""Doorbell presses from an ONVIF camera's event stream: a PullPoint subscription with
`onvif-zeep-async` (imported only when a camera's `ring.onvif` is configured).

Most IP doorbells publish a press as a digital input or a "visitor" rule event: Hikvision
and Dahua `tns1:Device/Trigger/DigitalInput` (LogicalState true), Reolink
`tns1:RuleEngine/MyRuleDetector/Visitor` (State true), others a `.../Doorbell` topic.
Which topics count is configurable (`ring.onvif.topics`). The filter is applied here,
not as a subscription TopicExpression: many cameras reject or mis-apply filters, and a
subscription that silently delivers nothing is worse than a few messages dropped here.

A message counts when its topic matches, it is not the `Initialized` state a camera
reports at subscription time, its input token (if configured) matches, and its state
is true. `notification_of` reads both zeep's objects and raw `wsnt:NotificationMessage`
XML, and `is_press` decides: the tests drive them with real NotificationMessage XML.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import structlog

from doorwarden.agent.capture.rtsp import Backoff
from doorwarden.agent.config.ring import OnvifRing

log = structlog.get_logger("doorwarden.agent.ring.onvif")

Press = Callable[[str, str], object]
WSNT = "http://docs.oasis-open.org/wsn/b-2"
TT = "http://www.onvif.org/ver10/schema"
STATE_NAMES = ("logicalstate", "state", "isactive", "value", "active", "ring", "pressed")
TRUE = frozenset({"true", "1", "on", "active", "pressed", "ring"})
PULL_TIMEOUT = timedelta(seconds=10)
SUBSCRIPTION_S = 60


@dataclass(frozen=True)
class Notification:
    topic: str
    operation: str | None = None  # Initialized | Changed | Deleted
    utc_time: str | None = None
    source: dict[str, str] = field(default_factory=dict)
    data: dict[str, str] = field(default_factory=dict)


def _local(tag: object) -> str:
    return str(tag).rsplit("}", 1)[-1]


def _items(parent: Any) -> dict[str, str]:
    if parent is None:
        return {}
    if hasattr(parent, "iterchildren"):  # lxml: <tt:SimpleItem Name= Value=/>
        return {
            str(e.get("Name")): str(e.get("Value"))
            for e in parent.iter()
            if _local(e.tag) == "SimpleItem" and e.get("Name") is not None
        }
    items = getattr(parent, "SimpleItem", None) or []  # zeep
    return {str(i.Name): str(i.Value) for i in items if getattr(i, "Name", None) is not None}


def notification_of(message: Any) -> Notification | None:
    """A `wsnt:NotificationMessage` (an lxml element or zeep's object) read into a
    Notification; None when it has no topic."""
    if hasattr(message, "iterchildren"):
        topic_el = message.find(f"{{{WSNT}}}Topic")
        body = message.find(f"{{{WSNT}}}Message")
        inner = body.find(f"{{{TT}}}Message") if body is not None else None
        if topic_el is None or not (topic_el.text or "").strip():
            return None
        if inner is None:
            return Notification(topic_el.text.strip())
        return notification_of_parts(topic_el.text.strip(), inner)
    topic = getattr(getattr(message, "Topic", None), "_value_1", None)
    if not isinstance(topic, str) or not topic.strip():
        return None
    inner = getattr(getattr(message, "Message", None), "_value_1", None)
    if inner is None:
        return Notification(topic.strip())
    if hasattr(inner, "iterchildren"):  # zeep left it as XML
        return notification_of_parts(topic.strip(), inner)
    utc = getattr(inner, "UtcTime", None)
    return Notification(
        topic.strip(),
        getattr(inner, "PropertyOperation", None),
        utc.isoformat() if utc is not None and hasattr(utc, "isoformat") else _text(utc),
        _items(getattr(inner, "Source", None)),
        _items(getattr(inner, "Data", None)),
    )


def _text(value: object) -> str | None:
    return str(value) if value else None


def notification_of_parts(topic: str, inner: Any) -> Notification:
    """A topic and an lxml `tt:Message` element."""
    return Notification(
        topic,
        inner.get("PropertyOperation"),
        inner.get("UtcTime"),
        _items(inner.find(f"{{{TT}}}Source")),
        _items(inner.find(f"{{{TT}}}Data")),
    )


def _bare_topic(topic: str) -> str:
    """`tns1:RuleEngine/tnsaxis:X` -> `ruleengine/x`: prefixes differ between vendors."""
    return "/".join(part.rsplit(":", 1)[-1] for part in topic.split("/")).lower()


def is_press(note: Notification, config: OnvifRing) -> bool:
    topic = _bare_topic(note.topic)
    if not any(_bare_topic(want) in topic for want in config.topics):
        return False
    if note.operation == "Initialized":
        return False  # the state at subscription time, not an event
    if config.input_token is not None:
        tokens = {v for k, v in note.source.items() if "token" in k.lower() or k == "Source"}
        if config.input_token not in tokens:
            return False
    states = {k.lower(): v for k, v in note.data.items()}
    for name in STATE_NAMES:
        if name in states:
            return states[name].strip().lower() in TRUE
    return not note.data  # a topic that is the press itself, with no state


class OnvifButton:
    def __init__(self, camera: str, config: OnvifRing, press: Press) -> None:
        self.camera = camera
        self.config = config
        self.press = press
        self.presses = 0
        self.subscribed = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        import onvif  # type: ignore[import-untyped]  # noqa: F401, PLC0415 - optional

        self._thread = threading.Thread(target=self._run, name="doorwarden-onvif", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def handle(self, messages: Iterable[Any]) -> int:
        """Presses among PullMessages' NotificationMessages, each passed on; how many."""
        count = 0
        for message in messages:
            note = notification_of(message)
            if note is None or not is_press(note, self.config):
                continue
            count += 1
            self.presses += 1
            log.info("ring.onvif_press", camera=self.camera, topic=note.topic)
            self.press(self.camera, "onvif")
        return count

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        backoff = Backoff(2.0, 120.0)
        while not self._stop.is_set():
            try:
                await self._session(backoff)
            except Exception as exc:  # noqa: BLE001 - network, SOAP faults, auth: retried
                delay = backoff.next_delay()
                log.warning("ring.onvif_failed", camera=self.camera, host=self.config.host,
                            error=f"{type(exc).__name__}: {exc}", retry_in=delay)  # fmt: skip
                self.subscribed.clear()
                await asyncio.to_thread(self._stop.wait, delay)

    async def _session(self, backoff: Backoff) -> None:
        from onvif import ONVIFCamera  # noqa: PLC0415

        cfg = self.config
        device = ONVIFCamera(cfg.host, cfg.port, cfg.username, cfg.password, adjust_time=True)
        lost = asyncio.Event()
        try:
            await device.update_xaddrs()
            manager = await device.create_pullpoint_manager(
                timedelta(seconds=SUBSCRIPTION_S), lost.set
            )
            try:
                service = manager.get_service()
                self.subscribed.set()
                log.info("ring.onvif_subscribed", camera=self.camera, host=cfg.host)
                backoff.reset()
                while not self._stop.is_set() and not lost.is_set():
                    result = await service.PullMessages(
                        {"MessageLimit": 100, "Timeout": PULL_TIMEOUT}
                    )
                    self.handle(getattr(result, "NotificationMessage", None) or [])
            finally:
                await manager.shutdown()
        finally:
            self.subscribed.clear()
            await device.close()
