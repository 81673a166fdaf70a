"""Households: the tenancy boundary. Every camera, clip and share belongs to exactly one."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index
from sqlalchemy.orm import Mapped, mapped_column

from doorwarden.db import Base, CreatedAt, SafeString, UUIDPrimaryKey, str_enum, utcnow
from doorwarden.roles import HouseholdRole


class Household(UUIDPrimaryKey, CreatedAt, Base):
    __tablename__ = "households"
    # Area queries read the candidates' coordinates and id from this index alone, never
    # the rows (devices/area.py): with a million cameras, the table lookups were most
    # of a dense area's query time.
    __table_args__ = (
        Index("ix_households_location_cell_cover", "location_cell", "latitude", "longitude", "id"),
    )

    name: Mapped[str] = mapped_column(SafeString(100))
    address: Mapped[str] = mapped_column(SafeString(300), default="")
    # The address folded for comparison (households/addresses.py): legal process names
    # addresses, and finds the household by this key.
    address_key: Mapped[str | None] = mapped_column(SafeString(300), index=True)
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    # The H3 cell (resolution geo.CELL_RESOLUTION) of the location, kept with it: area
    # queries select candidate cells by index, then test the exact polygon.
    location_cell: Mapped[str | None] = mapped_column(SafeString(16))
    time_zone: Mapped[str] = mapped_column(SafeString(64), default="UTC")


class HouseholdMember(Base):
    __tablename__ = "household_members"

    household_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("households.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    role: Mapped[HouseholdRole] = mapped_column(str_enum(HouseholdRole))
    added_at: Mapped[datetime] = mapped_column(default=utcnow)
    added_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
