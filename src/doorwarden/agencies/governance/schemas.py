from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from doorwarden.agencies.governance.models import ProgrammeKind

Text200 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Text300 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]


class ApprovalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approving_body: Text200
    approved_on: date
    reference: Text200
    expires_on: date | None = None


class ApprovalOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    agency_id: uuid.UUID
    approving_body: str
    approved_on: date
    reference: str
    expires_on: date | None
    revoked_at: datetime | None
    created_at: datetime
    policy_url: str = ""


class ProgrammeIn(BaseModel):
    """Deliberately no field for any condition on recipients: none may exist."""

    model_config = ConfigDict(extra="forbid")

    name: Text200
    kind: ProgrammeKind
    funding_source: Text300
    approval_id: uuid.UUID
    description: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] = ""


class ProgrammeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    agency_id: uuid.UUID
    name: str
    kind: ProgrammeKind
    funding_source: str
    approval_id: uuid.UUID
    description: str
    created_at: datetime
    ended_at: datetime | None
    cameras_enrolled: int = 0


class EnrolmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    programme_id: uuid.UUID | None


class PolicyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    community_requests_enabled: bool


class PolicyOut(BaseModel):
    community_requests_enabled: bool
    require_municipal_approval: bool
    warrant_max_devices: int
    warrant_max_hours: int
    emergency_max_devices: int
    emergency_max_hours: int
    emergency_proof_hours: int
    preservation_days: int
    community_max_square_miles: float
    community_max_hours: int
    updated_at: datetime | None
