"""What the bridge publishes: the topics under `<topic_prefix>/<device id>/` and the
current state of each (docs/mqtt.md).

States (motion, person, detection, mode) are retained, so a client that subscribes
later (Home Assistant after a restart) reads them at once, and are published again in
full on every connection; rings and finished clips are events, not retained. Images go
to the broker only when the owner turned snapshots on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from doorwarden.agent.observe import ClipFinished

ON, OFF = "ON", "OFF"
ONLINE, OFFLINE = "online", "offline"


def onoff(value: bool) -> bytes:
    return (ON if value else OFF).encode()


@dataclass(frozen=True)
class Topics:
    base: str  # <topic_prefix>/<node>

    @property
    def availability(self) -> str:
        return f"{self.base}/availability"

    @property
    def mode(self) -> str:
        return f"{self.base}/mode"

    @property
    def mode_set(self) -> str:
        return f"{self.base}/mode/set"

    def of(self, camera: str, what: str) -> str:
        """motion, person, detection, ring, clip, thumbnail of `camera`."""
        return f"{self.base}/{camera}/{what}"

    def detection_set(self, camera: str) -> str:
        return f"{self.base}/{camera}/detection/set"

    @property
    def commands(self) -> list[str]:
        """What the bridge subscribes to when it takes commands."""
        return [self.mode_set, f"{self.base}/+/detection/set"]

    def command_of(self, topic: str) -> tuple[str, str | None] | None:
        """("mode", None) or ("detection", camera) for a command topic; else None."""
        if topic == self.mode_set:
            return ("mode", None)
        head, sep, rest = topic.partition(self.base + "/")
        if head or not sep:
            return None
        camera, _, what = rest.partition("/")
        return ("detection", camera) if what == "detection/set" and camera else None


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    retain: bool
    at: float  # time.monotonic() when it happened: a stale event is dropped, not sent late


class States:
    """The current state of every entity, and the messages that change it. Used from the
    bridge's event loop only (no lock)."""

    def __init__(
        self,
        topics: Topics,
        cameras: Sequence[str],
        *,
        mode: str | None,
        snapshots: bool,
        detection: Mapping[str, bool] | None = None,
    ) -> None:
        self.topics = topics
        self.cameras = list(cameras)
        self.snapshots = snapshots
        self.motion: dict[str, bool] = dict.fromkeys(cameras, False)
        self.person: dict[str, bool] = dict.fromkeys(cameras, False)
        # As the agent starts (its saved web settings); on where nothing says otherwise.
        self.detection = {c: bool((detection or {}).get(c, True)) for c in cameras}
        self.mode = mode

    def retained(self) -> list[Message]:
        """Every state, for a fresh connection (the broker may have lost them)."""
        now = time.monotonic()
        out = []
        for camera in self.cameras:
            for what, value in (
                ("motion", self.motion[camera]),
                ("person", self.person[camera]),
                ("detection", self.detection[camera]),
            ):
                out.append(Message(self.topics.of(camera, what), onoff(value), True, now))
        if self.mode is not None:
            out.append(Message(self.topics.mode, self.mode.encode(), True, now))
        return out

    # -- changes (each returns what to publish; nothing when nothing changed) -----------

    def set_flag(self, what: str, camera: str, value: bool) -> list[Message]:
        table: dict[str, bool] = getattr(self, what)
        if camera not in table or table[camera] == value:
            return []
        table[camera] = value
        return [Message(self.topics.of(camera, what), onoff(value), True, time.monotonic())]

    def settings(self, camera: str, effective: Mapping[str, Any]) -> list[Message]:
        enabled = effective.get("detection.enabled")
        return self.set_flag("detection", camera, enabled) if isinstance(enabled, bool) else []

    def set_mode(self, mode: str | None) -> list[Message]:
        if mode is None or mode == self.mode:
            return []
        self.mode = mode
        return [Message(self.topics.mode, mode.encode(), True, time.monotonic())]

    def ring(self, camera: str, at: datetime) -> list[Message]:
        if camera not in self.motion:
            return []
        # Home Assistant's event entity reads `event_type`; the rest become attributes.
        body = {"event_type": "ring", "camera": camera, "at": at.isoformat()}
        return [Message(self.topics.of(camera, "ring"), _json(body), False, time.monotonic())]

    def clip(self, clip: ClipFinished) -> list[Message]:
        if clip.camera not in self.motion:
            return []
        now = time.monotonic()
        body = {
            "id": clip.clip_id,
            "camera": clip.camera,
            "started_at": clip.started_at.isoformat(),
            "ended_at": clip.ended_at.isoformat(),
            "labels": list(clip.labels),
        }
        out = [Message(self.topics.of(clip.camera, "clip"), _json(body), False, now)]
        # The one image that may leave through MQTT, and only when the owner said so.
        if self.snapshots and clip.thumbnail:
            out.append(
                Message(self.topics.of(clip.camera, "thumbnail"), clip.thumbnail, False, now)
            )
        return out


def _json(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()
