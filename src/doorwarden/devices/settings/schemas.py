"""The camera settings API's bodies (docs/camera-settings.md). The settings themselves
are validated by formats.camera_settings (shared with the agent), not here: a body's
`settings` is any object until parse_settings has named its first wrong field."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# A whole body: the largest valid settings (3 lists of 16 polygons of 64 points, written
# with every digit a float may have) fit well within it.
SETTINGS_MAX_BYTES = 192 * 1024


class SettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    version: int = Field(
        ge=0, le=2**31 - 1,
        description="The version these settings replace, as last read (0 if never set): "
        "a change made meanwhile is refused with 409 version_conflict.",
    )  # fmt: skip
    settings: dict[str, Any] = Field(
        description="Overrides by dotted field name (see `fields`); a field left out comes "
        "from the camera's configuration file."
    )


class FieldOut(BaseModel):
    title: str
    description: str


class AppliedOut(BaseModel):
    """The agent's latest report of what it applied (null until it sent one)."""

    version: int = Field(description="The version it applied (or refused, when ok is false).")
    ok: bool
    error: str | None = Field(description="Why it refused the update (it keeps what it had).")
    at: datetime = Field(description="When the server received the report.")
    effective: dict[str, Any] = Field(description="Every field as the camera now uses it.")
    sources: dict[str, str] = Field(description='Where each field came from: "web" or "file".')


class SettingsOut(BaseModel):
    camera: str
    version: int = Field(description="0: nothing set from the web.")
    settings: dict[str, Any] = Field(description="The overrides set from the web.")
    updated_at: datetime | None
    fields: dict[str, FieldOut] = Field(description="Every field that may be set, by name.")
    applied: AppliedOut | None
    connected: bool = Field(description="The camera's agent is connected to this server now.")


class CameraListOut(BaseModel):
    cameras: list[str] = Field(
        description="The cameras the agent announced (when connected), else those with settings."
    )
    connected: bool
