"""A settings handler over real cameras' jobs, as agent/app.py builds it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from doorwarden.agent.config.models import AgentConfig, CameraConfig
from doorwarden.agent.observe import ClipFinished, Observers
from doorwarden.agent.pipeline import CameraJob
from doorwarden.agent.recording.spool import Spool
from doorwarden.agent.settings.handler import SettingsHandler
from doorwarden.agent.settings.state import CameraSettingsState
from doorwarden.agent.settings.store import SettingsStore
from tests.unit.agent.settings.signing import DEVICE

QUICK_RECORD = {"pre_roll_s": 0, "post_roll_s": 30, "min_clip_s": 1, "cooldown_s": 0}


def camera(name: str, path: Path | None = None, **overrides: Any) -> CameraConfig:
    source = (
        {"kind": "file", "path": str(path), "pace": False}
        if path is not None
        else {"kind": "synthetic"}
    )
    body: dict[str, Any] = {
        "name": name, "source": source, "record": QUICK_RECORD, "detect": {"kind": "none"},
    }  # fmt: skip
    return CameraConfig.model_validate(body | overrides)


class Heard:
    """A listener on the box (what the MQTT bridge is): records what it is told."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    def motion(self, camera: str, active: bool) -> None:
        self.events.append(("motion", (camera, active)))

    def person(self, camera: str, active: bool) -> None:
        self.events.append(("person", (camera, active)))

    def ring(self, camera: str, at: Any) -> None:
        self.events.append(("ring", camera))

    def clip(self, clip: ClipFinished) -> None:
        self.events.append(("clip", clip))

    def settings(self, camera: str, effective: Any) -> None:
        self.events.append(("settings", (camera, dict(effective))))

    def mode(self, mode: str | None) -> None:
        self.events.append(("mode", mode))

    def of(self, kind: str) -> list[Any]:
        return [value for k, value in self.events if k == kind]


class Rig:
    def __init__(self, tmp: Path, key: bytes | None, cameras: list[CameraConfig]) -> None:
        self.config = AgentConfig(spool_dir=tmp / "spool", state_dir=tmp / "state", cameras=cameras)
        self.heard = Heard()
        self.observers = Observers()
        self.observers.add(self.heard)
        self.state = self.load()
        self.jobs = {
            c.name: CameraJob(c, Spool(self.config.spool_dir), observers=self.observers)
            for c in cameras
        }
        self.key = key
        self.handler = SettingsHandler(
            self.state, lambda: self.key, self.jobs, observers=self.observers
        )

    def load(self) -> CameraSettingsState:
        """The state as a (re)starting agent loads it."""
        state = CameraSettingsState(
            self.config.cameras, SettingsStore(self.config.state_dir), DEVICE
        )
        state.load(getattr(self, "key", None))
        return state
