"""A camera's settings as its household sets them from the web (docs/camera-settings.md).

The agent's YAML file stays the base; these are the overrides an owner made on the
camera's page, one field at a time, each winning over the file until it is reset. Shared
by the server (which validates what the page sends and keeps it per camera with a
version) and the agent (which applies it): both read the same model, so a value the
server accepted is one the agent can apply.

Field names are the dotted paths of the agent's configuration (`motion.sensitivity` is
`cameras[].motion.sensitivity` in the YAML), so the two can be shown side by side and
`doorwarden agent status` can say where each value came from. Polygons are in normalised
image coordinates (0..1 from the top-left), as in the YAML.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Point = tuple[Annotated[float, Field(ge=0, le=1)], Annotated[float, Field(ge=0, le=1)]]
Polygon = Annotated[list[Point], Field(min_length=3, max_length=64)]
Polygons = Annotated[list[Polygon], Field(max_length=16)]
NotifyLabel = Literal["motion", "person", "ring"]


class CameraSettings(BaseModel):
    """The fields a household may set from the web; a field left out comes from the
    agent's file. Unknown fields are refused (a typo must not be silently ignored)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    motion_zones: Polygons | None = Field(
        None, alias="motion.zones", title="Motion zones",
        description="Only motion inside these polygons counts; empty: the whole image.",
    )  # fmt: skip
    motion_ignore: Polygons | None = Field(
        None, alias="motion.ignore", title="Ignore areas",
        description="Motion inside these polygons never counts (a tree, a road).",
    )  # fmt: skip
    privacy_zones: Polygons | None = Field(
        None, alias="privacy_zones", title="Privacy zones",
        description="Blacked out in every clip, thumbnail, snapshot and live frame; the "
        "pixels never leave the camera box.",
    )  # fmt: skip
    motion_sensitivity: float | None = Field(
        None, alias="motion.sensitivity", ge=0, le=1, title="Sensitivity",
        description="0: only large, sustained motion; 1: the smallest change.",
    )  # fmt: skip
    motion_min_area: float | None = Field(
        None, alias="motion.min_area", gt=0, le=1, title="Minimum area",
        description="Smallest changed region, as a fraction of the image.",
    )  # fmt: skip
    motion_analysis_fps: float | None = Field(
        None, alias="motion.analysis_fps", gt=0, le=30, title="Analysis rate (frames/s)",
        description="How many frames a second are analysed.",
    )  # fmt: skip
    record_pre_roll_s: float | None = Field(
        None, alias="record.pre_roll_s", ge=0, le=30, title="Pre-roll (s)",
        description="Video kept from before the trigger.",
    )  # fmt: skip
    record_post_roll_s: float | None = Field(
        None, alias="record.post_roll_s", ge=0, le=120, title="Post-roll (s)",
        description="Recording continues this long after motion ends.",
    )  # fmt: skip
    record_min_clip_s: float | None = Field(
        None, alias="record.min_clip_s", ge=0, le=600, title="Minimum clip (s)",
        description="Shorter events are extended.",
    )  # fmt: skip
    record_max_clip_s: float | None = Field(
        None, alias="record.max_clip_s", gt=0, le=3600, title="Maximum clip (s)",
        description="A longer event is split into several clips.",
    )  # fmt: skip
    detection_enabled: bool | None = Field(
        None, alias="detection.enabled", title="Motion detection",
        description="Off: motion starts no clip on this camera (a doorbell press still "
        "records). The switch Home Assistant shows per camera.",
    )  # fmt: skip
    detect_person: bool | None = Field(
        None, alias="detect.person", title="Person labelling",
        description="Look for people in motion (the camera's configured detector); off: "
        "clips are labelled motion only.",
    )  # fmt: skip
    notify_labels: list[NotifyLabel] | None = Field(
        None, alias="notify.labels", max_length=3, title="Notify on",
        description="Which of this camera's events notify the household (the server "
        "applies it); left out: every kind.",
    )  # fmt: skip

    @model_validator(mode="after")
    def _lengths(self) -> CameraSettings:
        low, high = self.record_min_clip_s, self.record_max_clip_s
        if low is not None and high is not None and low > high:
            raise ValueError("record.min_clip_s must not exceed record.max_clip_s")
        return self

    def overrides(self) -> dict[str, Any]:
        """The fields set, by dotted name (JSON-ready)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


FIELDS: tuple[str, ...] = tuple(
    str(f.alias) for f in CameraSettings.model_fields.values() if f.alias is not None
)


class SettingsError(ValueError):
    """Settings that cannot be used; `field` names the first wrong field (dotted, with an
    index path for polygons: `privacy_zones.0.2`), for the page to point at."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field, self.message = field, message


def parse_settings(value: object) -> CameraSettings:
    """Validate overrides from the page, the database or the server; SettingsError naming
    the first wrong field."""
    if not isinstance(value, dict):
        raise SettingsError("", "settings must be a JSON object of field: value")
    try:
        return CameraSettings.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        # The alias comes first ("privacy_zones", 0, 2, 1): one dotted name for the page.
        raise SettingsError(".".join(str(p) for p in first["loc"]), first["msg"]) from None
