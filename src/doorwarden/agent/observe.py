"""What happens on the camera box, for whoever listens on the box itself (the MQTT
bridge, agent/mqtt/): motion and person state per camera, rings, finished clips, the
settings applied. Nothing here leaves the home by itself; a listener decides.

Calls come from camera threads and the link thread and must return at once: a listener
queues what it needs and does its I/O on its own thread. A listener that raises is
logged and the camera carries on (home automation must never cost a recording).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import structlog

log = structlog.get_logger("doorwarden.agent.observe")


@dataclass(frozen=True)
class ClipFinished:
    camera: str
    clip_id: str  # the spool entry's id (the clip's id once uploaded)
    started_at: datetime
    ended_at: datetime
    labels: Sequence[str] = ()
    thumbnail: bytes | None = field(default=None, repr=False)  # JPEG, privacy zones black


class Listener(Protocol):
    def motion(self, camera: str, active: bool) -> None: ...
    def person(self, camera: str, active: bool) -> None: ...
    def ring(self, camera: str, at: datetime) -> None: ...
    def clip(self, clip: ClipFinished) -> None: ...
    def settings(self, camera: str, effective: Mapping[str, Any]) -> None: ...
    def mode(self, mode: str | None) -> None: ...


class Observers:
    """Fan-out to listeners; the agent holds one and passes it to each part."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()

    def add(self, listener: Listener) -> None:
        with self._lock:
            self._listeners = [*self._listeners, listener]

    def __bool__(self) -> bool:
        return bool(self._listeners)

    def motion(self, camera: str, active: bool) -> None:
        self._each("motion", camera, active)

    def person(self, camera: str, active: bool) -> None:
        self._each("person", camera, active)

    def ring(self, camera: str, at: datetime) -> None:
        self._each("ring", camera, at)

    def clip(self, clip: ClipFinished) -> None:
        self._each("clip", clip)

    def settings(self, camera: str, effective: Mapping[str, Any]) -> None:
        self._each("settings", camera, effective)

    def mode(self, mode: str | None) -> None:
        self._each("mode", mode)

    def _each(self, name: str, *args: Any) -> None:
        for listener in self._listeners:  # replaced whole on add: no lock to read
            try:
                getattr(listener, name)(*args)
            except Exception:  # a listener's bug must not cost the camera its recording
                log.exception("observe.listener_failed", kind=name)
