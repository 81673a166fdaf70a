"""The agent's doorbell: what a press does, and the parts that make presses.

`Doorbell.press(camera, source)`: debounce (per camera) -> the camera records a clip
labelled "ring" (`trigger`, with pre-roll, whatever the mode) -> the event is queued on
disk with the press's time -> the sender is woken and sends it at once. The recording is
asked for before the disk write, so a slow card delays neither the clip nor, beyond the
write itself, the message; a disk that refuses the write costs durability only (the
event is kept in memory and still sent).

Built by agent/app.py for a running agent; the sources (GPIO, MQTT, ONVIF) and the
control socket start with it. A source that cannot start (its package missing, a bad
chip) is logged and the rest carry on: the CLI's ring always works.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import structlog

from doorwarden.agent.config.models import CameraConfig
from doorwarden.agent.observe import Observers
from doorwarden.agent.ring.control import ControlError, ControlServer
from doorwarden.agent.ring.debounce import Debouncer
from doorwarden.agent.ring.queue import EventQueue, RingEvent
from doorwarden.agent.ring.sender import EventSender

log = structlog.get_logger("doorwarden.agent.ring.doorbell")

Trigger = Callable[[str, str], None]  # (camera, reason): record a clip now
EXTRA_HINT = "install the agent's doorbell extra: pip install 'doorwarden[agent-ring]'"


class Source(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


@dataclass(frozen=True)
class Pressed:
    status: str  # queued | debounced | unknown_camera
    event: RingEvent | None = None
    durable: bool = False  # on disk (else in memory only: the disk refused it)

    def reply(self) -> dict[str, Any]:
        if self.event is None:
            return {"ok": self.status == "debounced", "status": self.status}
        return {
            "ok": True, "status": self.status, "id": self.event.id,
            "at": self.event.message()["at"], "durable": self.durable,
        }  # fmt: skip


class Doorbell:
    def __init__(
        self,
        cameras: Sequence[CameraConfig],
        state_dir: Path,
        *,
        sender: EventSender | None = None,
        trigger: Trigger | None = None,
        debouncer: Debouncer | None = None,
        observers: Observers | None = None,
    ) -> None:
        self.cameras = {c.name: c for c in cameras}
        self.observers = observers  # told of each accepted press (MQTT's doorbell event)
        self.queue = EventQueue(state_dir)
        self.sender = sender
        self.trigger = trigger
        self.debouncer = debouncer or Debouncer(lambda cam: self.cameras[cam].ring.debounce_s)
        self.control = ControlServer(state_dir, self._control)
        self.control_off: str | None = None  # why `agent ring` cannot reach this agent
        self.sources: list[Source] = []
        self.presses = 0  # accepted presses

    def press(self, camera: str, source: str, at: datetime | None = None) -> Pressed:
        """A press of `camera`'s doorbell (any thread)."""
        if camera not in self.cameras:
            log.warning("ring.unknown_camera", camera=camera, source=source)
            return Pressed("unknown_camera")
        if not self.debouncer.allow(camera):
            log.info("ring.debounced", camera=camera, source=source)
            return Pressed("debounced")
        self.presses += 1
        event = RingEvent.new(camera, source, at)
        if self.trigger is not None:
            try:
                self.trigger(camera, "ring")
            except Exception:  # the event must go even if recording cannot start
                log.exception("ring.trigger_failed", camera=camera)
        durable = True
        try:
            self.queue.put(event)
        except OSError as exc:
            durable = False
            log.error("ring.queue_failed", camera=camera, error=str(exc),
                      effect="sent from memory; lost if the agent stops first")  # fmt: skip
        log.info("ring.pressed", camera=camera, source=source, id=event.id)
        if self.observers is not None:
            self.observers.ring(camera, event.at)
        if self.sender is not None:
            self.sender.wake(None if durable else event)
        return Pressed("queued", event, durable)

    def start(self) -> None:
        self.queue.recover()
        if self.sender is not None:
            self.sender.start()
        try:
            self.control.start()
        except ControlError as exc:
            self.control_off = str(exc)
            log.warning("ring.control_off", error=str(exc))
        for camera in self.cameras.values():
            for source in _sources(camera, self.press):
                try:
                    source.start()
                except ImportError as exc:
                    log.error(
                        "ring.source_unavailable", camera=camera.name,
                        source=type(source).__name__, error=str(exc), hint=EXTRA_HINT,
                    )  # fmt: skip
                    continue
                self.sources.append(source)

    def stop(self) -> None:
        for source in self.sources:
            source.stop()
        self.sources.clear()
        self.control.stop()
        if self.sender is not None:
            self.sender.stop()

    def _control(self, body: dict[str, Any]) -> dict[str, Any]:
        op = body.get("op")
        if op == "ping":
            return {"ok": True}
        if op != "ring":
            return {"ok": False, "error": f"unknown op {op!r}"}
        camera = body.get("camera")
        if not isinstance(camera, str):
            return {"ok": False, "error": "camera must be a string"}
        pressed = self.press(camera, "cli")
        reply = pressed.reply()
        if pressed.status == "unknown_camera":
            reply["error"] = f"no camera {camera!r} in this agent ({', '.join(self.cameras)})"
        return reply


def _sources(camera: CameraConfig, press: Callable[[str, str], object]) -> list[Source]:
    ring, found = camera.ring, list[Source]()
    if ring.gpio is not None:
        from doorwarden.agent.ring.gpio import GpioButton  # noqa: PLC0415 - optional stack

        found.append(GpioButton(camera.name, ring.gpio, press))
    if ring.mqtt is not None:
        from doorwarden.agent.ring.mqtt import MqttButton  # noqa: PLC0415

        found.append(MqttButton(camera.name, ring.mqtt, press))
    if ring.onvif is not None:
        from doorwarden.agent.ring.onvif import OnvifButton  # noqa: PLC0415

        found.append(OnvifButton(camera.name, ring.onvif, press))
    return found
