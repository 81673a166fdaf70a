"""Agencies, their officers, and the legal documents filed by them or about them (warrants,
court orders, municipal use policies): the PDFs that legal process and governance refer to.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from doorwarden.db import Base, CreatedAt, SafeString, UUIDPrimaryKey, str_enum, utcnow


class AgencyKind(StrEnum):
    police = "police"
    sheriff = "sheriff"
    state_police = "state_police"
    federal = "federal"
    prosecutor = "prosecutor"
    other = "other"


class Agency(UUIDPrimaryKey, CreatedAt, Base):
    __tablename__ = "agencies"

    name: Mapped[str] = mapped_column(SafeString(200), unique=True)
    # The jurisdiction's name as people say it ("City of Springfield")...
    jurisdiction: Mapped[str] = mapped_column(SafeString(200))
    # ...and as a GeoJSON Polygon or MultiPolygon (lng, lat): legal process is checked
    # against it. Without one an agency's requests cannot pass the jurisdiction check.
    jurisdiction_area: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[AgencyKind] = mapped_column(
        str_enum(AgencyKind), default=AgencyKind.police, server_default="police"
    )
    # [{"name", "role", "email", "phone"}]: who the instance contacts about a request.
    contacts: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # Set by an operator admin after checking the agency is what it says it is.
    verified_at: Mapped[datetime | None]
    verified_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    # Set when the agency let an emergency request go unratified (shown publicly).
    flagged_at: Mapped[datetime | None]
    flag_reason: Mapped[str | None] = mapped_column(SafeString(500))


class AgencyOfficer(Base):
    """An officer belongs to exactly one agency (the user_id is the primary key)."""

    __tablename__ = "agency_officers"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    agency_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("agencies.id", ondelete="CASCADE"), index=True
    )
    added_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The agency's officer-administrator invites its other officers; operators never do
    # (policy rule 8). The first one is made from the server's shell or by two operators.
    is_admin: Mapped[bool] = mapped_column(default=False, server_default=false())


class DocumentKind(StrEnum):
    warrant = "warrant"
    subpoena = "subpoena"
    nondisclosure_order = "nondisclosure_order"
    incident_report = "incident_report"
    use_policy = "use_policy"  # a municipal approval's surveillance use policy


class LegalDocument(UUIDPrimaryKey, Base):
    """A PDF an agency or operator filed. The bytes live in the clip store; the SHA-256
    is what the decision, the package and the public log refer to."""

    __tablename__ = "legal_documents"

    agency_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("agencies.id", ondelete="RESTRICT"), index=True
    )
    kind: Mapped[DocumentKind] = mapped_column(str_enum(DocumentKind))
    sha256: Mapped[str] = mapped_column(SafeString(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    pages: Mapped[int]
    filename: Mapped[str] = mapped_column(SafeString(200))
    object_key: Mapped[str] = mapped_column(SafeString(300))
    uploaded_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)
