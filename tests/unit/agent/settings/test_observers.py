"""What the box's listeners hear besides the cameras: the doorbell and the mode."""

from __future__ import annotations

from pathlib import Path

from doorwarden.agent.live.mode import ModeState
from doorwarden.agent.observe import Observers
from doorwarden.agent.ring.doorbell import Doorbell
from tests.unit.agent.settings.rig import Heard, camera


def test_an_accepted_press_and_a_new_mode_are_told_to_the_listeners(tmp_path: Path) -> None:
    heard, observers = Heard(), Observers()
    observers.add(heard)
    pressed: list[str] = []
    bell = Doorbell(
        [camera("front")], tmp_path, trigger=lambda cam, _: pressed.append(cam),
        observers=observers,
    )  # fmt: skip
    assert bell.press("front", "cli").status == "queued"
    assert bell.press("front", "cli").status == "debounced"  # not a second ring
    assert bell.press("garage", "cli").status == "unknown_camera"
    assert heard.of("ring") == ["front"] and pressed == ["front"]
    mode = ModeState(tmp_path, ["front"], observers=observers)
    assert mode.apply({"mode": "away", "cameras": {"front": {"record": True, "detect": True}}})
    assert not mode.apply({"mode": 5})
    assert heard.of("mode") == ["away"]
