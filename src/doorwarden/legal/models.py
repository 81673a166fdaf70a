"""The legal requests agencies make (agencies and their documents: agencies/models.py).

A request keeps what the agency asked (`ScopeItem`: named households, cameras or
addresses, and a time window) apart from what the server resolved it to (`Target`: one
row per camera) and from what a reviewer approved (`Target.approved`, the approved
window). Nothing reaches an agency except through a `Package` built from approved
targets (legal/disclosure/models.py).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index
from sqlalchemy.orm import Mapped, mapped_column

from doorwarden.db import Base, CreatedAt, SafeString, SafeText, UUIDPrimaryKey, str_enum


class RequestKind(StrEnum):
    warrant = "warrant"  # content, ordered by a court
    subpoena = "subpoena"  # subscriber information only, never content
    preservation = "preservation"  # hold clips pending legal process; discloses nothing
    emergency = "emergency"  # imminent danger; disclosure provisional until proven
    community = "community"  # voluntary: residents choose what to share


class RequestStatus(StrEnum):
    submitted = "submitted"
    in_review = "in_review"
    approved = "approved"
    narrowed = "narrowed"  # approved with a smaller scope than asked
    rejected = "rejected"
    withdrawn = "withdrawn"
    ratified = "ratified"  # emergency: proof filed in time
    unratified = "unratified"  # emergency: no proof by the deadline
    open = "open"  # community: residents may share
    closed = "closed"  # community closed or expired; preservation hold ended


class Outcome(StrEnum):
    """The reviewer's decision, kept through later states (for the transparency report)."""

    approved = "approved"
    narrowed = "narrowed"
    rejected = "rejected"


class LegalRequest(UUIDPrimaryKey, CreatedAt, Base):
    __tablename__ = "legal_requests"
    __table_args__ = (
        Index("ix_legal_requests_status_created_at", "status", "created_at"),
        Index("ix_legal_requests_agency_id_created_at", "agency_id", "created_at"),
        Index("ix_legal_requests_created_at", "created_at"),  # the transparency report
    )

    agency_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agencies.id", ondelete="RESTRICT"))
    submitted_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    kind: Mapped[RequestKind] = mapped_column(str_enum(RequestKind))
    status: Mapped[RequestStatus] = mapped_column(str_enum(RequestStatus))
    outcome: Mapped[Outcome | None] = mapped_column(str_enum(Outcome))
    case_number: Mapped[str] = mapped_column(SafeString(100))
    # What the agency asked for, between these times (UTC, end exclusive).
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    # What was approved (narrowed requests have a shorter window, or fewer targets).
    approved_start: Mapped[datetime | None]
    approved_end: Mapped[datetime | None]
    # Warrants and subpoenas: the court order or subpoena and who issued it.
    issuing_court: Mapped[str | None] = mapped_column(SafeString(200))
    judge: Mapped[str | None] = mapped_column(SafeString(200))
    signed_on: Mapped[date | None]
    expires_at: Mapped[datetime | None]
    document_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("legal_documents.id", ondelete="RESTRICT")
    )
    # A court's non-disclosure order: owners are told when it ends, not before.
    nondisclosure_until: Mapped[datetime | None]
    nondisclosure_document_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("legal_documents.id", ondelete="RESTRICT")
    )
    # Emergencies: what the officer attested, and the proof owed afterwards.
    emergency_description: Mapped[str | None] = mapped_column(SafeText)
    proof_due_at: Mapped[datetime | None]
    proof_document_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("legal_documents.id", ondelete="RESTRICT")
    )
    proof_request_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("legal_requests.id", ondelete="RESTRICT")
    )
    ratified_at: Mapped[datetime | None]
    # Preservation: until when the holds last, and whether the one extension was used.
    hold_until: Mapped[datetime | None]
    extended_at: Mapped[datetime | None]
    # Community requests: the public text and the area (GeoJSON polygon, lng/lat).
    public_text: Mapped[str | None] = mapped_column(SafeText)
    area: Mapped[str | None] = mapped_column(SafeText)
    area_km2: Mapped[float | None]
    # Why the agency needs it (warrants: the offence; preservation: the pending process).
    justification: Mapped[str | None] = mapped_column(SafeText)
    # Review.
    reviewer_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    review_started_at: Mapped[datetime | None]
    decided_at: Mapped[datetime | None]
    decision_reason: Mapped[str | None] = mapped_column(SafeText)
    # {"signed": {"ok", "detail", "attested_by"?}, "unexpired": {...}, ...} at decision.
    checklist: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    closed_at: Mapped[datetime | None]


class ScopeKind(StrEnum):
    household = "household"
    device = "device"
    address = "address"
    area = "area"  # an area sweep: never particular, so never approved as asked


class ScopeItem(UUIDPrimaryKey, Base):
    """One thing the agency named, exactly as it named it."""

    __tablename__ = "legal_scope_items"

    request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("legal_requests.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[ScopeKind] = mapped_column(str_enum(ScopeKind))
    value: Mapped[str] = mapped_column(SafeText)  # an id, an address, or a GeoJSON polygon
    matched: Mapped[int] = mapped_column(default=0)  # cameras it resolved to


class Target(Base):
    """A camera a request's scope resolved to. `approved` is set by the decision: False
    for a camera the reviewer narrowed out (or a rejected request)."""

    __tablename__ = "legal_targets"

    request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("legal_requests.id", ondelete="CASCADE"), primary_key=True
    )
    device_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    household_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("households.id", ondelete="CASCADE"), index=True
    )
    scope_item_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("legal_scope_items.id", ondelete="CASCADE")
    )
    approved: Mapped[bool | None]


class NoticeKind(StrEnum):
    request = "request"  # a request names the household
    decision = "decision"  # how it was decided
    disclosure = "disclosure"  # exactly what was handed over
    hold = "hold"  # clips are preserved
    community = "community"  # an agency asks residents of an area to share


class Notice(UUIDPrimaryKey, CreatedAt, Base):
    """What a household is told about legal process. Delivered at once, unless a court's
    non-disclosure order delays it to `deliver_after` (then a job delivers it)."""

    __tablename__ = "legal_notices"
    __table_args__ = (
        Index("ix_legal_notices_household_id_delivered_at", "household_id", "delivered_at"),
        Index("ix_legal_notices_created_at", "created_at"),  # the transparency report
        Index("ix_legal_notices_delivered_at", "delivered_at"),
    )

    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("households.id", ondelete="CASCADE"))
    request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("legal_requests.id", ondelete="CASCADE"), index=True
    )
    package_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("legal_packages.id", ondelete="CASCADE")
    )
    kind: Mapped[NoticeKind] = mapped_column(str_enum(NoticeKind))
    message: Mapped[str] = mapped_column(SafeText)
    deliver_after: Mapped[datetime | None] = mapped_column(index=True)
    delivered_at: Mapped[datetime | None]
    read_at: Mapped[datetime | None]
