"""Who was a member of which household, from when to when (end-to-end rotation,
docs/e2e.md). `household_members` says who is a member now; this says who was, so that
a clip recorded before a member left, and uploaded after, is still known to have been
wrapped to a member (clips/ingest.py), and one wrapped to a stranger is not."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index
from sqlalchemy.orm import Mapped, mapped_column

from doorwarden.db import Base, UUIDPrimaryKey


class MembershipPeriod(UUIDPrimaryKey, Base):
    """One stay of a user in a household: opened when they join (or the household is
    made), closed when they are removed. Rejoining opens a new period."""

    __tablename__ = "household_member_periods"
    __table_args__ = (Index("ix_household_member_periods_member", "household_id", "user_id"),)

    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("households.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    joined_at: Mapped[datetime]
    left_at: Mapped[datetime | None]
