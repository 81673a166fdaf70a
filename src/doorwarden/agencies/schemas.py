from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from doorwarden.agencies.models import AgencyKind

Text200 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Short = Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)]
MAX_CONTACTS = 10


class Contact(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text200
    role: Short = ""
    email: EmailStr | None = None
    phone: Annotated[str, StringConstraints(strip_whitespace=True, max_length=40)] = ""


class AgencyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text200
    jurisdiction: Text200
    kind: AgencyKind = AgencyKind.police
    jurisdiction_area: dict[str, Any] | None = Field(
        None, description="The jurisdiction as a GeoJSON Polygon or MultiPolygon (lng, lat)."
    )
    contacts: Annotated[list[Contact], Field(max_length=MAX_CONTACTS)] = []


class AgencyUpdate(BaseModel):
    """Only the fields given change."""

    model_config = ConfigDict(extra="forbid")

    jurisdiction: Text200 | None = None
    kind: AgencyKind | None = None
    jurisdiction_area: dict[str, Any] | None = None
    contacts: Annotated[list[Contact], Field(max_length=MAX_CONTACTS)] | None = None


class OfficerOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    display_name: str


class AgencyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    jurisdiction: str
    kind: AgencyKind
    has_jurisdiction_area: bool = False
    contacts: list[dict[str, Any]] = []
    verified_at: datetime | None
    flagged_at: datetime | None = None
    flag_reason: str | None = None
    standing: str | None = None
    created_at: datetime
    officers: list[OfficerOut] = []
