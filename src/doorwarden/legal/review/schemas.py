"""What the legal review API reads back (the queue, a request with its scope and
checklist) and the decisions it takes (approve, narrow, reject)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from doorwarden.legal.models import RequestKind, RequestStatus
from doorwarden.legal.requests.schemas import RequestOut
from doorwarden.legal.review.checks import ATTESTABLE

Attest = Annotated[
    list[str], Field(max_length=len(ATTESTABLE), description=f"Any of {', '.join(ATTESTABLE)}.")
]
Reason = Annotated[str | None, Field(max_length=5000)]


class QueueItem(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    agency_id: uuid.UUID
    agency_name: str = ""
    kind: RequestKind
    status: RequestStatus
    case_number: str
    created_at: datetime


class CheckOut(BaseModel):
    name: str
    ok: bool
    detail: str


class TargetOut(BaseModel):
    device_id: uuid.UUID
    household_id: uuid.UUID
    approved: bool | None


class ReviewOut(BaseModel):
    request: RequestOut
    agency_name: str
    emergency_description: str | None
    justification: str | None
    targets: list[TargetOut]
    checks: list[CheckOut]
    attestations_needed: list[str]
    documents: list[uuid.UUID]


class ApproveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    attest: Attest = []
    note: Reason = None


class NarrowIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keep_devices: Annotated[list[uuid.UUID], Field(max_length=1000)]
    window_start: AwareDatetime | None = None
    window_end: AwareDatetime | None = None
    attest: Attest = []
    reason: Reason = None


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason = None
