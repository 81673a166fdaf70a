from __future__ import annotations

import uuid
import zoneinfo
from datetime import datetime
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from doorwarden.roles import HouseholdRole

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Address = Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)]
Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]


def _valid_zone(value: str) -> str:
    if value not in zoneinfo.available_timezones():
        raise ValueError("not a known IANA time zone, e.g. Europe/London")
    return value


class HouseholdIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    address: Address = ""
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    time_zone: Annotated[str, Field(max_length=64)] = "UTC"

    _zone = field_validator("time_zone")(_valid_zone)

    @model_validator(mode="after")
    def _both_coordinates_or_neither(self) -> HouseholdIn:
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("give both latitude and longitude, or neither")
        return self


class HouseholdPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    address: Address | None = None
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    time_zone: Annotated[str, Field(max_length=64)] | None = None

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return None if value is None else _valid_zone(value)


class HouseholdOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    address: str
    latitude: float | None
    longitude: float | None
    time_zone: str
    created_at: datetime
    my_role: HouseholdRole | None = None


class MemberIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr = Field(max_length=254)


class MemberOut(BaseModel):
    user_id: uuid.UUID
    email: str
    display_name: str
    role: HouseholdRole
    added_at: datetime
