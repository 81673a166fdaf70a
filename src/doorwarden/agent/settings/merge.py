"""The web's overrides laid over a camera's YAML configuration.

Each dotted name of formats/camera_settings.FIELDS is a field of `CameraConfig`
(`motion.sensitivity` is `camera.motion.sensitivity`), except three that the YAML has no
field for:

* `detection.enabled` (default on): off, motion starts no clip on this camera; a doorbell
  press still records (the pipeline's switch, like the household mode's `record`);
* `detect.person` (default: whether the file names a detector): off, the detector is not
  run (`detect.kind: none`); on for a camera whose file has none, the bundled NanoDet;
* `notify.labels`: applied by the server; the agent only reports it.

The result is validated as a whole `CameraConfig`, so a combination that the file alone
would refuse is refused here too (`detect.person: false` with the file's `alert:
person_only`), named by the web field that caused it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from doorwarden.agent.config.models import CameraConfig
from doorwarden.formats.camera_settings import FIELDS, CameraSettings, SettingsError, parse_settings

WEB, FILE = "web", "file"
DETECTION_ENABLED, DETECT_PERSON, NOTIFY_LABELS = (
    "detection.enabled",
    "detect.person",
    "notify.labels",
)
# The web fields that are a plain CameraConfig field, by their path in it.
PATHS: dict[str, tuple[str, ...]] = {
    name: tuple(name.split(".")) for name in FIELDS
    if name not in (DETECTION_ENABLED, DETECT_PERSON, NOTIFY_LABELS)
}  # fmt: skip


@dataclass(frozen=True)
class Effective:
    """A camera as it runs: its merged configuration, the switches the YAML has no field
    for, and for every web field its value and where it came from."""

    config: CameraConfig
    detection_enabled: bool = True
    notify_labels: list[str] | None = None
    version: int = 0  # of the settings document applied; 0: the file alone
    values: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    def field_lines(self) -> list[tuple[str, Any, str]]:
        """(field, value, "web (vN)" | "file") for every web field: `agent status`."""
        return [
            (name, self.values.get(name),
             f"web (v{self.version})" if self.sources.get(name) == WEB else FILE)
            for name in FIELDS
        ]  # fmt: skip


def file_values(camera: CameraConfig) -> dict[str, Any]:
    """Every web field's value in the YAML alone (JSON-ready)."""
    dumped = camera.model_dump(mode="json")
    values: dict[str, Any] = {name: _get(dumped, path) for name, path in PATHS.items()}
    values[DETECTION_ENABLED] = True
    values[DETECT_PERSON] = camera.detect.kind.value != "none"
    values[NOTIFY_LABELS] = None  # every kind (the server's default)
    return values


def merge(
    base: CameraConfig, overrides: CameraSettings | Mapping[str, Any], *, version: int = 0
) -> Effective:
    """`base` with `overrides` (by dotted name) applied; SettingsError naming the first
    field that cannot be used, alone or with the rest of the configuration."""
    settings = (
        overrides if isinstance(overrides, CameraSettings) else parse_settings(dict(overrides))
    )
    web = settings.overrides()
    data = base.model_dump(round_trip=True)
    for name, value in web.items():
        if name in PATHS:
            _set(data, PATHS[name], value)
    person = web.get(DETECT_PERSON)
    if person is False:
        data["detect"] = {**data["detect"], "kind": "none", "model_path": None}
    elif person is True and base.detect.kind.value == "none":
        data["detect"] = {**data["detect"], "kind": "nanodet"}
    try:
        config = CameraConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise SettingsError(_field_of(first["loc"], web), first["msg"]) from None
    values = file_values(config)
    values[DETECTION_ENABLED] = web.get(DETECTION_ENABLED, True)
    values[NOTIFY_LABELS] = web.get(NOTIFY_LABELS)
    return Effective(
        config=config,
        detection_enabled=bool(values[DETECTION_ENABLED]),
        notify_labels=values[NOTIFY_LABELS],
        version=version,
        values=values,
        sources={name: WEB if name in web else FILE for name in FIELDS},
    )


def _field_of(loc: tuple[int | str, ...], web: Mapping[str, Any]) -> str:
    """The web field a validation error of the merged config is about: the override at
    or above the error's place, else the override below it (a section's own check such
    as `record`'s min <= max), else the config's own path."""
    path = tuple(str(p) for p in loc)
    for name in web:
        target = PATHS.get(name, ("detect",) if name == DETECT_PERSON else None)
        if target is not None and path[: len(target)] == target:
            return ".".join((name, *path[len(target) :]))
    for name in web:
        target = PATHS.get(name, ("detect",) if name == DETECT_PERSON else None)
        if target is not None and target[: len(path)] == path:
            return name
    return ".".join(path)


def _get(data: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


def _set(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    *parents, last = path
    for part in parents:
        data[part] = dict(data[part])  # the dump's nested dicts are copied, not shared
        data = data[part]
    data[last] = value
