"""The household's mode on the camera: what the server's `mode` message says each camera
may do, kept in `<state_dir>/mode.json` so a restart starts in the same mode before the
link is up (docs/modes.md).

    {"type": "mode", "mode": "away", "cameras": {"front": {"record": true, "detect": true}}}

Each camera has a `CameraSwitches` that its pipeline reads on every sample:
`recording_enabled` false means motion starts no clip, `detection_enabled` false means no
person detection. A doorbell press records whatever they say (the recorder's trigger).
Until the server has said anything, everything is on (the camera's own configuration
decides). A camera the message leaves out keeps its switches; a malformed message is
logged and changes nothing.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import structlog

from doorwarden.agent.delivery.identity import write_atomic
from doorwarden.agent.observe import Observers

log = structlog.get_logger("doorwarden.agent.live.mode")

MODE_FILE = "mode.json"
MAX_MODE_NAME = 32


class CameraSwitches:
    """One camera's switches. Written by the link thread, read by the camera's thread:
    each is one bool, replaced whole (no lock needed to read it)."""

    def __init__(self) -> None:
        self.recording_enabled = True
        self.detection_enabled = True

    def __repr__(self) -> str:
        return f"CameraSwitches(record={self.recording_enabled}, detect={self.detection_enabled})"


class ModeState:
    """The agent's mode: loaded from `state_dir` at start, replaced by `apply`."""

    def __init__(
        self, state_dir: Path | None, cameras: Sequence[str], *, observers: Observers | None = None
    ) -> None:
        self.path = state_dir / MODE_FILE if state_dir is not None else None
        self.observers = observers  # told each mode the server sends (MQTT's select)
        self.switches = {name: CameraSwitches() for name in cameras}
        self.mode: str | None = None
        self._lock = threading.Lock()  # one apply at a time (file and switches agree)
        self._load()

    def for_camera(self, camera: str) -> CameraSwitches:
        return self.switches.setdefault(camera, CameraSwitches())

    def on_message(self, message: dict[str, object]) -> None:
        """The link's handler for `mode` (LiveLink.handlers), on the link thread."""
        self.apply(message)

    def apply(self, message: Mapping[str, Any]) -> bool:
        """A `mode` message from the server: saved, then applied; False (logged) when it
        is malformed, or when it cannot be saved (then it is still applied: the server
        sends it again on the next connection)."""
        parsed = _parse(message)
        if parsed is None:
            log.warning("mode.bad_message", message=str(message)[:200])
            return False
        mode, cameras = parsed
        saved = True
        with self._lock:
            if self.path is not None:
                try:
                    self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                    body = {"mode": mode, "cameras": cameras}
                    write_atomic(self.path, json.dumps(body, sort_keys=True).encode())
                except OSError as exc:
                    log.warning("mode.save_failed", path=str(self.path), error=str(exc))
                    saved = False
            self._set(mode, cameras)
        log.info("mode.applied", mode=mode, cameras=cameras)
        if self.observers is not None:
            self.observers.mode(mode)
        return saved

    def _set(self, mode: str, cameras: Mapping[str, Mapping[str, bool]]) -> None:
        for name, setting in cameras.items():
            switches = self.switches.get(name)
            if switches is None:
                continue  # a camera this agent does not run (the config changed)
            switches.recording_enabled = setting["record"]
            switches.detection_enabled = setting["detect"]
        self.mode = mode  # last: once it reads the new mode, every switch has it

    def _load(self) -> None:
        if self.path is None:
            return
        try:
            body = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            log.warning("mode.unreadable", path=str(self.path), error=str(exc))
            return
        parsed = _parse(body) if isinstance(body, dict) else None
        if parsed is None:
            log.warning("mode.unreadable", path=str(self.path), error="not a mode")
            return
        self._set(*parsed)
        log.info("mode.loaded", mode=parsed[0])


def _parse(message: Mapping[str, Any]) -> tuple[str, dict[str, dict[str, bool]]] | None:
    mode, cameras = message.get("mode"), message.get("cameras")
    if not isinstance(mode, str) or not 0 < len(mode) <= MAX_MODE_NAME:
        return None
    if not isinstance(cameras, dict):
        return None
    out: dict[str, dict[str, bool]] = {}
    for name, setting in cameras.items():
        if not isinstance(name, str) or not isinstance(setting, dict):
            return None
        record, detect = setting.get("record"), setting.get("detect")
        if not isinstance(record, bool) or not isinstance(detect, bool):
            return None
        out[name] = {"record": record, "detect": detect}
    return mode, out
