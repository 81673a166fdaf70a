"""Agencies and their officers. Legal process (requests, review, packages) builds on these."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from doorwarden.db import Base, CreatedAt, SafeString, UUIDPrimaryKey, utcnow


class Agency(UUIDPrimaryKey, CreatedAt, Base):
    __tablename__ = "agencies"

    name: Mapped[str] = mapped_column(SafeString(200), unique=True)
    jurisdiction: Mapped[str] = mapped_column(SafeString(200))
    # Set by an operator admin after checking the agency is what it says it is.
    verified_at: Mapped[datetime | None]


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
