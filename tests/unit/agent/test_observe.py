"""The agent's observers: a listener that raises costs nobody else anything."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from doorwarden.agent.observe import ClipFinished, Observers


class Recording:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def motion(self, camera: str, active: bool) -> None:
        self.calls.append(("motion", (camera, active)))

    def person(self, camera: str, active: bool) -> None:
        self.calls.append(("person", (camera, active)))

    def ring(self, camera: str, at: datetime) -> None:
        self.calls.append(("ring", (camera, at)))

    def clip(self, clip: ClipFinished) -> None:
        self.calls.append(("clip", (clip.clip_id,)))

    def settings(self, camera: str, effective: Mapping[str, Any]) -> None:
        self.calls.append(("settings", (camera, dict(effective))))

    def mode(self, mode: str | None) -> None:
        self.calls.append(("mode", (mode,)))


class Broken(Recording):
    def mode(self, mode: str | None) -> None:
        raise RuntimeError("a listener's bug")

    def motion(self, camera: str, active: bool) -> None:
        raise RuntimeError("a listener's bug")


def test_every_listener_hears_each_event_even_after_one_raises() -> None:
    observers, heard = Observers(), Recording()
    assert not observers
    observers.add(Broken())
    observers.add(heard)
    assert observers
    at = datetime(2026, 1, 1, tzinfo=UTC)
    observers.mode("away")  # the broken listener raises first; the call still returns
    observers.motion("front", True)
    observers.person("front", False)
    observers.ring("front", at)
    observers.settings("front", {"motion.sensitivity": 0.5})
    observers.clip(ClipFinished("front", "c1", at, at, ("motion",)))
    assert [name for name, _ in heard.calls] == [
        "mode", "motion", "person", "ring", "settings", "clip",
    ]  # fmt: skip
    assert heard.calls[0] == ("mode", ("away",))
