"""The notification rules and deliveries as the API reads and writes them."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from doorwarden.notify.models import AttemptStatus, Channel, NotificationStatus, NotifyKind

HHMM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
MAX_COOLDOWN_S = 86_400
MAX_CAMERAS = 100  # far more than a household pairs; bounds the body


class QuietHours(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: Annotated[str, Field(max_length=5, description="HH:MM, the household's time")]
    end: Annotated[str, Field(max_length=5, description="HH:MM; before start: over midnight")]

    @field_validator("start", "end")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        if not HHMM.fullmatch(value):
            raise ValueError("a time of day as HH:MM (00:00 to 23:59)")
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("start and end are the same: give a span, or null for none")
        return self


class RulesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cameras: Annotated[list[uuid.UUID], Field(max_length=MAX_CAMERAS)] | None = Field(
        None, description="The household's cameras to be told about; null: every camera."
    )
    kinds: Annotated[list[NotifyKind], Field(max_length=len(NotifyKind))]
    quiet_hours: QuietHours | None = None
    cooldown_s: Annotated[int, Field(ge=0, le=MAX_COOLDOWN_S)] = 60
    email: bool = False

    @field_validator("cameras", "kinds")
    @classmethod
    def _unique(cls, value: list[uuid.UUID] | list[NotifyKind] | None) -> object:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("each item once")
        return value


class RulesOut(BaseModel):
    cameras: list[uuid.UUID] | None
    kinds: list[NotifyKind]
    quiet_hours: QuietHours | None
    cooldown_s: int
    email: bool
    saved: bool = Field(description="false: no rules saved yet, these are the defaults")


class AttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    channel: Channel
    subscription_id: uuid.UUID | None
    status: AttemptStatus
    http_status: int | None
    error: str | None
    at: datetime


class NotificationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    household_id: uuid.UUID
    kind: NotifyKind
    device_id: uuid.UUID | None
    title: str
    body: str
    url: str
    thumbnail: str | None
    occurred_at: datetime
    created_at: datetime
    status: NotificationStatus
    email: bool
    next_attempt_at: datetime | None
    attempts: list[AttemptOut]
