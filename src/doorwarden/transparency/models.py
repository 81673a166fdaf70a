"""What the coverage map keeps between its scheduled counts (transparency/tasks.py)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from doorwarden.db import Base


class CoveragePlace(Base):
    """Where the coverage job last saw each household, and since when: a household counts
    in a place only once it has stayed there for coverage_move_days (a Sybil household
    moved next to a real camera must wait as long as a new one). Written only by the job;
    a household whose location differs from its row is counted in no place until then."""

    __tablename__ = "coverage_places"

    household_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("households.id", ondelete="CASCADE"), primary_key=True
    )
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    since: Mapped[datetime]


class CoverageSnapshot(Base):
    """The published coverage counts: one row (id 1), replaced by each run of the job, so
    every server instance serves the same numbers and no request recounts."""

    __tablename__ = "coverage_snapshots"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    generated_at: Mapped[datetime]
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
