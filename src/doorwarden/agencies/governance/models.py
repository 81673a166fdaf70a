"""Municipal approvals, subsidised-camera programmes and the instance policy.

Surveillance-ordinance laws (community control over police surveillance) require an
agency to have a public body's approval, and a published use policy, before it acquires
or uses surveillance technology. Where the instance requires it (the setting
`legal_require_municipal_approval`, on by default), an agency without an approval on
file can make no request at all.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from doorwarden.db import Base, CreatedAt, SafeString, SafeText, UUIDPrimaryKey, str_enum, utcnow


class MunicipalApproval(UUIDPrimaryKey, CreatedAt, Base):
    __tablename__ = "municipal_approvals"

    agency_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("agencies.id", ondelete="RESTRICT"), index=True
    )
    approving_body: Mapped[str] = mapped_column(SafeString(200))  # "Springfield City Council"
    approved_on: Mapped[date]
    reference: Mapped[str] = mapped_column(SafeString(200))  # "Ordinance 2026-14"
    expires_on: Mapped[date | None]
    # The use policy the body approved (a PDF in legal_documents).
    policy_document_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("legal_documents.id", ondelete="RESTRICT")
    )
    recorded_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    revoked_at: Mapped[datetime | None]


class ProgrammeKind(StrEnum):
    giveaway = "giveaway"
    discount = "discount"


class CameraProgramme(UUIDPrimaryKey, CreatedAt, Base):
    """An agency's programme that gives away or discounts cameras. It has no field for
    any condition on the recipients: enrolling grants the agency nothing."""

    __tablename__ = "camera_programmes"

    agency_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("agencies.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(SafeString(200))
    kind: Mapped[ProgrammeKind] = mapped_column(str_enum(ProgrammeKind))
    funding_source: Mapped[str] = mapped_column(SafeString(300))
    approval_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("municipal_approvals.id", ondelete="RESTRICT")
    )
    description: Mapped[str] = mapped_column(SafeText, default="")
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    ended_at: Mapped[datetime | None]


class ProgrammeEnrolment(Base):
    """A camera its owner says came from a programme: marked, and counted publicly."""

    __tablename__ = "programme_enrolments"

    device_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    programme_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("camera_programmes.id", ondelete="RESTRICT"), index=True
    )
    enrolled_at: Mapped[datetime] = mapped_column(default=utcnow)
    enrolled_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )


class InstancePolicy(Base):
    """Instance-wide switches an operator sets (one row, id 1), each change audited."""

    __tablename__ = "instance_policy"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    community_requests_enabled: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
