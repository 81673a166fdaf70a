"""What agencies submit, and what they and reviewers read back. Shapes only: the limits
that are instance settings (cameras, hours, area) are checked by the services, each with
its own error code."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from doorwarden.legal.models import Outcome, RequestKind, RequestStatus, ScopeKind

Text100 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Text200 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Address = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=300)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=5000)]
MAX_SCOPE_ITEMS = 50


# The longest a household's notice may be delayed, from the day of filing (checked at
# filing: kinds.check_nondisclosure_length, 400 nondisclosure_too_long). 180 days is the
# usual ceiling for delayed notice of a warrant or order; a court that wants longer must
# issue a new order. docs/legal-process.md, "Separation of duties and the order maximum".
NONDISCLOSURE_MAX = timedelta(days=180)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScopeItemIn(Strict):
    """One household or camera by id, one address, or an area (which is never particular
    enough for content: a reviewer must narrow it away or reject the request)."""

    kind: ScopeKind
    id: uuid.UUID | None = Field(None, description="household or device: its id")
    address: Address | None = Field(None, description="address: as written on the order")
    area: dict[str, Any] | None = Field(None, description="area: a GeoJSON Polygon")

    @model_validator(mode="after")
    def _one_value(self) -> Self:
        wanted = {
            ScopeKind.household: "id",
            ScopeKind.device: "id",
            ScopeKind.address: "address",
            ScopeKind.area: "area",
        }[self.kind]
        given = {name for name in ("id", "address", "area") if getattr(self, name) is not None}
        if given != {wanted}:
            raise ValueError(f"a {self.kind} scope item has exactly the field '{wanted}'")
        return self

    @property
    def value(self) -> str:
        if self.kind is ScopeKind.address:
            return self.address or ""
        return str(self.id)


Scope = Annotated[list[ScopeItemIn], Field(min_length=1, max_length=MAX_SCOPE_ITEMS)]


class Window(Strict):
    window_start: AwareDatetime
    window_end: AwareDatetime


class WarrantIn(Window):
    case_number: Text100
    issuing_court: Text200
    judge: Text200
    signed_on: date
    expires_at: AwareDatetime
    scope: Scope
    justification: LongText = ""
    nondisclosure_until: AwareDatetime | None = Field(
        None, description="End of a court's non-disclosure order (send the order too)."
    )


class SubpoenaIn(Window):
    case_number: Text100
    issuing_court: Text200 = Field(description="The court or authority that issued it.")
    signed_on: date
    expires_at: AwareDatetime | None = None
    scope: Scope
    justification: LongText = ""
    nondisclosure_until: AwareDatetime | None = None


class PreservationIn(Window):
    case_number: Text100
    scope: Scope
    justification: Annotated[LongText, StringConstraints(min_length=10)] = Field(
        description="The legal process being sought, for which the clips are preserved."
    )
    nondisclosure_until: AwareDatetime | None = None


class EmergencyIn(Window):
    case_number: Text100
    description: Annotated[LongText, StringConstraints(min_length=50)] = Field(
        description="The imminent danger of death or serious physical injury, in detail."
    )
    attest_imminent_danger: bool = Field(
        description="The officer attests that the danger is imminent and that the footage "
        "is needed without delay to prevent it; must be true."
    )
    scope: Scope


class CommunityIn(Window):
    case_number: Text100
    area: dict[str, Any] = Field(description="A GeoJSON Polygon (longitude, latitude).")
    public_text: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=20, max_length=2000)
    ] = Field(description="What residents read: what happened and what is asked.")


class ProofIn(Strict):
    """Proof for an emergency: a warrant request filed since (its id). An incident
    report is sent as a PDF file instead."""

    warrant_request_id: uuid.UUID


class ScopeItemOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    kind: ScopeKind
    value: str


class PackageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: str
    provisional: bool
    created_at: datetime
    expires_at: datetime
    size: int
    sha256: str
    clips: int
    clips_without_content: int
    download_url: str = ""


class RequestOut(BaseModel):
    """A request as its agency sees it: what it asked, and how it was decided. Never
    which households a scope resolved to, nor whether an address has a camera."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    agency_id: uuid.UUID
    kind: RequestKind
    status: RequestStatus
    outcome: Outcome | None
    case_number: str
    created_at: datetime
    window_start: datetime
    window_end: datetime
    approved_start: datetime | None
    approved_end: datetime | None
    issuing_court: str | None
    judge: str | None
    signed_on: date | None
    expires_at: datetime | None
    nondisclosure_until: datetime | None
    decided_at: datetime | None
    decision_reason: str | None
    proof_due_at: datetime | None
    ratified_at: datetime | None
    hold_until: datetime | None
    extended_at: datetime | None
    public_text: str | None
    area_km2: float | None
    closed_at: datetime | None
    scope: list[ScopeItemOut] = []
    packages: list[PackageOut] = []


class SharedClipOut(BaseModel):
    """A clip a resident shared: when, how long, what was seen. Not which camera: a camera
    id would tie the clip to its household's other clips and, through the log's
    `device:pair` and `clip:receive` entries, to the household itself."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    start_at: datetime
    end_at: datetime
    duration_ms: int
    labels: list[str]
