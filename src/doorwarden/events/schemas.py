"""What cameras send (a ring) and what members read (the timeline)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    field_validator,
    model_validator,
)

from doorwarden.events.models import EventKind

MAX_CAMERA = 64
# A ring is about 150 bytes; room for long ids and names, nothing more.
EVENT_MAX_BYTES = 4096
MAX_LIMIT = 500
DeviceSource = Literal["button", "gpio", "onvif", "mqtt", "cli"]


class EventIn(BaseModel):
    """A ring, as the agent sends it (over its control connection, where it also carries
    `"type": "event"`, or POST /api/v1/device/events). Person and motion events are the
    server's, made from verified clips: a camera may only ring."""

    model_config = ConfigDict(extra="forbid", strict=True, title="A doorbell ring")

    id: str = Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$",
        title="The agent's id for this ring",
        description="Unique per camera, kept across retries: the same id is the same event.",
    )
    camera: str = Field(
        min_length=1,
        max_length=MAX_CAMERA,
        title="Camera name",
        description="The agent's name for the camera that rang (as in its hello).",
    )
    kind: Literal["ring"] = Field(title="Event kind", description="Cameras send rings only.")
    at: AwareDatetime = Field(
        title="When it rang (camera's clock, with its zone)",
        description="A ring queued while the agent was offline keeps its real time; it must "
        "lie within the last 7 days and at most 5 minutes ahead of the server's clock.",
    )
    source: DeviceSource = Field(title="What rang", description="button, gpio, onvif, mqtt or cli")

    @field_validator("camera")
    @classmethod
    def _printable(cls, value: str) -> str:
        if not value.isprintable() or value != value.strip():
            raise ValueError("a camera name is printable text without surrounding spaces")
        return value


class EventCreated(BaseModel):
    event_id: uuid.UUID


class EventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    device_id: uuid.UUID
    camera: str
    kind: EventKind
    occurred_at: datetime
    clip_id: uuid.UUID | None
    new: bool


class SeenIn(BaseModel):
    """Which events the caller has seen: some by id, or every event of the household."""

    model_config = ConfigDict(extra="forbid", title="Events seen")

    ids: list[uuid.UUID] | None = Field(None, max_length=MAX_LIMIT, title="Event ids")
    all: StrictBool = Field(False, title="Every event of the household")

    @model_validator(mode="after")
    def _one_of(self) -> SeenIn:
        if (self.ids is None) == (not self.all):
            raise ValueError('give either "ids" or "all": true')
        return self


class RefusalsOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    device_id: uuid.UUID
    refused: int
    first_refused_at: datetime
    last_refused_at: datetime


class EventQuery(BaseModel):
    device_id: uuid.UUID | None = None
    kind: EventKind | None = None
    day: date | None = None
    limit: int = Field(100, ge=1, le=MAX_LIMIT)
