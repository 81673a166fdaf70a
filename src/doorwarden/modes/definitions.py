"""The three modes, their defaults, and what a household's definitions say for a camera.

A household's definitions (HouseholdModes.definitions) only hold what an owner changed:
a label, or one camera's settings in one mode. Everything else is the default below, so
a camera paired later gets its mode's default without anyone writing a row for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

MODES: Final = ("home", "away", "disarmed")
DEFAULT_MODE: Final = "home"
DEFAULT_LABELS: Final = {"home": "Home", "away": "Away", "disarmed": "Disarmed"}


@dataclass(frozen=True)
class Setting:
    """What a camera does in a mode. Rings record and notify whatever this says."""

    record: bool  # motion clips (the agent)
    detect: bool  # person detection (the agent)
    notify: bool  # motion and person notifications (the server)

    def as_dict(self) -> dict[str, bool]:
        return {"record": self.record, "detect": self.detect, "notify": self.notify}


# Home: cameras record and detect, nobody is alerted for motion (rings still notify).
# Away: everything. Disarmed: nothing but rings.
DEFAULT_SETTINGS: Final = {
    "home": Setting(record=True, detect=True, notify=False),
    "away": Setting(record=True, detect=True, notify=True),
    "disarmed": Setting(record=False, detect=False, notify=False),
}


def label(definitions: dict[str, Any], mode: str) -> str:
    own = definitions.get(mode, {}).get("label")
    return own if isinstance(own, str) and own else DEFAULT_LABELS[mode]


def setting(definitions: dict[str, Any], mode: str, device_id: str) -> Setting:
    default = DEFAULT_SETTINGS[mode]
    own = definitions.get(mode, {}).get("cameras", {}).get(device_id)
    if not isinstance(own, dict):
        return default
    return Setting(
        record=bool(own.get("record", default.record)),
        detect=bool(own.get("detect", default.detect)),
        notify=bool(own.get("notify", default.notify)),
    )


def merged(
    definitions: dict[str, Any], changes: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """`definitions` with `changes` ({mode: {"label"?, "cameras"?: {id: Setting dict}}})
    applied: a label replaces the old one, each camera named replaces its old settings."""
    out: dict[str, dict[str, Any]] = {
        mode: {
            "label": definitions.get(mode, {}).get("label"),
            "cameras": dict(definitions.get(mode, {}).get("cameras", {})),
        }
        for mode in MODES
    }
    for mode, change in changes.items():
        if change.get("label") is not None:
            out[mode]["label"] = change["label"]
        out[mode]["cameras"].update(change.get("cameras") or {})
    for mode in MODES:
        if not out[mode]["label"]:
            out[mode].pop("label")
    return out


def forget_cameras(definitions: dict[str, Any], keep: set[str]) -> dict[str, Any]:
    """The definitions without the settings of cameras no longer in the household."""
    return {
        mode: {
            **body,
            "cameras": {k: v for k, v in body.get("cameras", {}).items() if k in keep},
        }
        for mode, body in definitions.items()
    }
