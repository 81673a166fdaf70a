"""The modes API's bodies and answers (docs/modes.md)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from doorwarden.modes.schedule import HHMM, MAX_ENTRIES

ModeName = Literal["home", "away", "disarmed"]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
MAX_CAMERAS = 200


class SettingIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    record: bool
    detect: bool
    notify: bool


class ModeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: Label | None = None
    cameras: Annotated[dict[uuid.UUID, SettingIn], Field(max_length=MAX_CAMERAS)] = {}


class ModesIn(BaseModel):
    """Only what changes: a mode left out, a camera left out, keep their settings."""

    model_config = ConfigDict(extra="forbid")

    modes: dict[ModeName, ModeIn]


class ModeOut(BaseModel):
    label: str
    cameras: dict[uuid.UUID, SettingIn]  # every camera in service, defaults filled in


class CameraOut(BaseModel):
    id: uuid.UUID
    name: str


class ModesOut(BaseModel):
    modes: dict[str, ModeOut]
    cameras: list[CameraOut]
    schedule: list[ScheduleEntry]


class ModeSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: ModeName


class ScheduleEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    days: Annotated[
        list[Annotated[int, Field(ge=0, le=6, strict=True)]], Field(min_length=1, max_length=7)
    ]
    at: Annotated[str, Field(max_length=5)]
    mode: ModeName

    @field_validator("days")
    @classmethod
    def _distinct(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError("each weekday once (0 is Monday, 6 Sunday)")
        return sorted(value)

    @field_validator("at")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        if not HHMM.match(value):
            raise ValueError("a time as HH:MM, 00:00 to 23:59")
        return value


class ScheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entries: Annotated[list[ScheduleEntry], Field(max_length=MAX_ENTRIES)]

    @field_validator("entries")
    @classmethod
    def _one_switch_per_moment(cls, value: list[ScheduleEntry]) -> list[ScheduleEntry]:
        seen: set[tuple[int, str]] = set()
        for entry in value:
            for day in entry.days:
                if (day, entry.at) in seen:
                    raise ValueError(f"two switches on weekday {day} at {entry.at}")
                seen.add((day, entry.at))
        return value


class SnoozeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    device_id: uuid.UUID | None = None
    hours: Annotated[int, Field(ge=1, le=24, strict=True)]
    scope: Literal["household", "me"]


class SnoozeOut(BaseModel):
    id: uuid.UUID
    device_id: uuid.UUID | None
    scope: Literal["household", "me"]
    until: datetime
    created_at: datetime


class SwitchOut(BaseModel):
    at: datetime
    mode: str


class CurrentOut(BaseModel):
    mode: str
    label: str
    since: datetime | None
    source: Literal["default", "manual", "schedule"]
    next: SwitchOut | None
    snoozes: list[SnoozeOut]  # the household's and the caller's own, still running


ModesOut.model_rebuild()
