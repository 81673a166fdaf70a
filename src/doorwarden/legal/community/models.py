"""Community requests: an agency asks the residents of a small area to share clips of a
time window. Sharing is each resident's choice, clip by clip; the agency sees only the
clips shared, never who was asked or who ignored it."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from doorwarden.db import Base, utcnow


class CommunityRecipient(Base):
    """A household with a camera in the area when the request was made."""

    __tablename__ = "community_recipients"

    request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("legal_requests.id", ondelete="CASCADE"), primary_key=True
    )
    household_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("households.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    notified_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set when the household first shares; ignoring leaves it empty, and nobody but the
    # household sees that either way.
    responded_at: Mapped[datetime | None]


class CommunityShare(Base):
    """One clip a resident chose to share with the requesting agency."""

    __tablename__ = "community_shares"

    request_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("legal_requests.id", ondelete="CASCADE"), primary_key=True
    )
    clip_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("clips.id", ondelete="RESTRICT"), primary_key=True
    )
    household_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("households.id", ondelete="CASCADE"), index=True
    )
    shared_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    shared_at: Mapped[datetime] = mapped_column(default=utcnow)
