"""Cameras (devices) paired to a household, the one-time codes that pair them, the
household's recording plan, and the household key that standard-mode clips are
encrypted to."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, LargeBinary, text
from sqlalchemy.orm import Mapped, mapped_column

from doorwarden.db import Base, CreatedAt, SafeString, UUIDPrimaryKey, str_enum


class PlanKind(StrEnum):
    """live_only: only doorbell-press clips are stored, briefly (the agent uploads nothing else);
    recording: clips are kept for `retention_days`."""

    live_only = "live_only"
    recording = "recording"


class Device(UUIDPrimaryKey, CreatedAt, Base):
    __tablename__ = "devices"
    __table_args__ = (
        # A household's cameras, and whether each is in service, from the index alone.
        Index("ix_devices_household_in_service", "household_id", "revoked_at", "id"),
        # The cameras in service by the cell of their location, with everything an area
        # query returns (devices/area.py): one range scan per cell, no join, no table
        # row read. Partial: revoked cameras are never in an area.
        Index(
            "ix_devices_location_cell_in_service",
            "location_cell",
            "latitude",
            "longitude",
            "household_id",
            "id",
            sqlite_where=text("revoked_at IS NULL"),
            postgresql_where=text("revoked_at IS NULL"),
        ),
    )

    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("households.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(SafeString(100))
    # Ed25519 public key, base64url of the 32 raw bytes: verifies every manifest.
    public_key: Mapped[str] = mapped_column(SafeString(64))
    token_hash: Mapped[str] = mapped_column(SafeString(64), unique=True)
    token_prefix: Mapped[str] = mapped_column(SafeString(16))
    paired_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    last_seen_at: Mapped[datetime | None]
    # The verified chain head: the last clip accepted and the hash of its manifest.
    last_sequence: Mapped[int | None] = mapped_column(BigInteger)
    last_digest: Mapped[str | None] = mapped_column(SafeString(64))
    # The household's location and its cell, copied here so that area queries read one
    # index instead of joining every candidate home to its cameras (3-4x faster at a
    # million cameras, BENCHMARKS.md). A camera is where its household is: the copy is
    # written at pairing and whenever the household's location changes
    # (devices.area.place_cameras), and nowhere else.
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    location_cell: Mapped[str | None] = mapped_column(SafeString(16))


class DeviceHealth(Base):
    """The latest health report of a camera (PUT /api/v1/device/health): its spool's disk,
    and the clips it holds back, defers or had to evict. One row per camera, replaced by
    each report; what the owner must hear about is raised as integrity alerts when the
    report says it first (devices/health.py), so the row itself keeps no history."""

    __tablename__ = "device_health"

    device_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    # The server's clock, not the camera's: how fresh the report is, whatever its clock says.
    reported_at: Mapped[datetime]
    # When a report first said the disk was full (server clock); None while it is not.
    disk_full_since: Mapped[datetime | None]
    # The report as validated (devices.schemas.HealthIn, JSON mode, times in UTC).
    report: Mapped[dict[str, Any]] = mapped_column(JSON)


class PairingCode(UUIDPrimaryKey, CreatedAt, Base):
    __tablename__ = "pairing_codes"

    household_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("households.id", ondelete="CASCADE"), index=True
    )
    code_hash: Mapped[str] = mapped_column(SafeString(64), unique=True)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    device_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("devices.id", ondelete="SET NULL")
    )


class Encryption(StrEnum):
    """standard: clip keys are wrapped to the household key the server holds (it can show
    clips in the browser); e2e: only to the members' own keys (the server stores
    ciphertext it cannot read; members open clips with their key, e.g. the CLI)."""

    standard = "standard"
    e2e = "e2e"


class HouseholdPlan(Base):
    __tablename__ = "household_plans"

    household_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("households.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[PlanKind] = mapped_column(str_enum(PlanKind), default=PlanKind.recording)
    retention_days: Mapped[int] = mapped_column(default=30)
    encryption: Mapped[Encryption] = mapped_column(
        str_enum(Encryption), default=Encryption.standard, server_default="standard"
    )


class MemberKey(Base):
    """A person's own X25519 public key for end-to-end clips. The private half never
    reaches the server."""

    __tablename__ = "member_keys"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    public_key: Mapped[str] = mapped_column(SafeString(64))
    created_at: Mapped[datetime]


class HouseholdKey(Base):
    """The household's X25519 key for standard mode. The private half is stored sealed
    with a key derived from the instance secret (AES-256-GCM, the household id as
    associated data), so a database dump alone does not open any clip."""

    __tablename__ = "household_keys"

    household_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("households.id", ondelete="CASCADE"), primary_key=True
    )
    public_key: Mapped[str] = mapped_column(SafeString(64))
    sealed_private_key: Mapped[bytes] = mapped_column(LargeBinary(128))
    created_at: Mapped[datetime]
