"""Household modes (home, away, disarmed), their schedule, and snoozes.

One row per household holds the definitions (labels, per-camera settings), the schedule
and the mode set by hand; it is made the first time an owner changes something, and a
household without one has the defaults (definitions.py). The mode in force at a moment
is the later of the mode set by hand and the schedule's last switch (schedule.py).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index
from sqlalchemy.orm import Mapped, mapped_column

from doorwarden.db import Base, SafeString, UUIDPrimaryKey, utcnow


class HouseholdModes(Base):
    __tablename__ = "household_modes"

    household_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("households.id", ondelete="CASCADE"), primary_key=True
    )
    # The mode set by hand (or applied by the schedule job), and since when.
    mode: Mapped[str] = mapped_column(SafeString(16), default="home")
    mode_set_at: Mapped[datetime] = mapped_column(default=utcnow)
    mode_set_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    source: Mapped[str] = mapped_column(SafeString(16), default="default")  # manual|schedule
    # {"home": {"label": "Home", "cameras": {"<device id>": {"record", "detect", "notify"}}}}
    definitions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # [{"days": [0..6 (Monday 0)], "at": "HH:MM", "mode": "away"}]
    schedule: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # Whether `schedule` has entries: the schedule job reads only these rows (a JSON
    # column has no equality on PostgreSQL).
    scheduled: Mapped[bool] = mapped_column(default=False, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Snooze(UUIDPrimaryKey, Base):
    """No notifications (motion, person) until `until`: for the household (user_id None,
    an owner's) or for one member (their own), for one camera or all (device_id None).
    Recording and rings are untouched."""

    __tablename__ = "mode_snoozes"
    __table_args__ = (Index("ix_mode_snoozes_household_until", "household_id", "until"),)

    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("households.id", ondelete="CASCADE"))
    device_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE")
    )
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    until: Mapped[datetime]
