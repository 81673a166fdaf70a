"""Clips as the server holds them, and integrity alerts raised while receiving them.

A clip row exists from the moment its signed manifest is accepted (status `receiving`);
it becomes `verified` only after every byte matched the manifest, and only verified clips
are ever listed or served. A deleted or expired clip keeps a tombstone (status
`deleted`: its sequence number and manifest hash, no media, labels or manifest), so the
chain stays checkable across it and an old upload replayed later is recognised.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from doorwarden.db import Base, CreatedAt, SafeString, UUIDPrimaryKey, str_enum


class ClipStatus(StrEnum):
    receiving = "receiving"
    verified = "verified"
    deleted = "deleted"


class Clip(UUIDPrimaryKey, CreatedAt, Base):
    __tablename__ = "clips"
    __table_args__ = (UniqueConstraint("device_id", "sequence"),)

    household_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("households.id", ondelete="CASCADE"), index=True
    )
    device_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    sequence: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[ClipStatus] = mapped_column(str_enum(ClipStatus), default=ClipStatus.receiving)
    manifest: Mapped[str] = mapped_column(Text)  # the signed manifest, canonical JSON
    digest: Mapped[str] = mapped_column(SafeString(64))
    previous: Mapped[str] = mapped_column(SafeString(64))  # the manifest's link, kept in tombstones
    start_at: Mapped[datetime] = mapped_column(index=True)
    end_at: Mapped[datetime]
    duration_ms: Mapped[int]
    labels: Mapped[list[str]] = mapped_column(JSON)
    # The labels again as ",motion,person,": a label filter is a portable LIKE, in SQL.
    label_set: Mapped[str] = mapped_column(SafeString(300), default=",")
    ciphertext_size: Mapped[int] = mapped_column(BigInteger)
    thumbnail_size: Mapped[int]
    object_key: Mapped[str] = mapped_column(SafeString(300))
    thumbnail_key: Mapped[str | None] = mapped_column(SafeString(300))
    verified_at: Mapped[datetime | None]
    deleted_at: Mapped[datetime | None]


class AlertKind(StrEnum):
    gap = "gap"
    fork = "fork"
    broken_link = "broken_link"
    bad_signature = "bad_signature"
    hash_mismatch = "hash_mismatch"
    chunk_tampered = "chunk_tampered"
    truncated = "truncated"
    # From the camera's own health report (devices/health.py): not tampering, but clips
    # the owner may lose unless someone acts.
    camera_disk_full = "camera_disk_full"
    clip_held = "clip_held"
    clips_evicted = "clips_evicted"


class IntegrityAlert(UUIDPrimaryKey, CreatedAt, Base):
    """Something about a camera's clips that the owner must know: a clip missing from the
    chain, two different clips claiming one place in it, or data that did not match."""

    __tablename__ = "integrity_alerts"

    household_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("households.id", ondelete="CASCADE"), index=True
    )
    device_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    sequence: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[AlertKind] = mapped_column(str_enum(AlertKind))
    detail: Mapped[str] = mapped_column(SafeString(500))
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    acknowledged_at: Mapped[datetime | None]


class ClipHold(UUIDPrimaryKey, CreatedAt, Base):
    """A legal hold: while one is active (not released, not past `expires_at`) the clip
    is neither deleted by its owner nor expired by retention. The legal process creates
    and releases holds; this table is where every deletion path looks."""

    __tablename__ = "clip_holds"

    clip_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("clips.id", ondelete="RESTRICT"), index=True
    )
    reason: Mapped[str] = mapped_column(SafeString(500))
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    released_at: Mapped[datetime | None]
    # The preservation request that placed it, and when it lapses on its own.
    request_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("legal_requests.id", ondelete="RESTRICT"), index=True
    )
    expires_at: Mapped[datetime | None]
    # Until then its owner is not told of it (a court's non-disclosure order).
    hidden_until: Mapped[datetime | None]
