"""Audit events: one row per access to footage, share, disclosure, deletion or admin action.

Rows are immutable once written, and carry no foreign keys: deleting a user or household
must not change or remove the record of what was done. `log_index` is left empty by the
request that writes the row and assigned once, in commit order, by the single appender of
the tamper-evident Merkle log, so a transaction that commits late is appended late rather
than skipped.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, SmallInteger
from sqlalchemy.orm import Mapped, mapped_column

from doorwarden.db import Base, SafeString, UUIDPrimaryKey, utcnow


class AuditEvent(UUIDPrimaryKey, Base):
    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_household_id_occurred_at", "household_id", "occurred_at"),
        Index("ix_audit_events_agency_id_occurred_at", "agency_id", "occurred_at"),
        Index("ix_audit_events_actor_user_id_occurred_at", "actor_user_id", "occurred_at"),
    )

    occurred_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    tag: Mapped[str] = mapped_column(SafeString(64), index=True)
    actor_user_id: Mapped[uuid.UUID | None]
    actor_role: Mapped[str | None] = mapped_column(SafeString(32))
    household_id: Mapped[uuid.UUID | None]
    agency_id: Mapped[uuid.UUID | None]
    target_type: Mapped[str | None] = mapped_column(SafeString(32))
    target_id: Mapped[str | None] = mapped_column(SafeString(64))
    client_address: Mapped[str | None] = mapped_column(SafeString(64))
    user_agent: Mapped[str | None] = mapped_column(SafeString(512))
    request_id: Mapped[str | None] = mapped_column(SafeString(64))
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    log_index: Mapped[int | None] = mapped_column(BigInteger, unique=True)


class DeploymentIdentity(Base):
    """One row (id 1): which secret key this database belongs to, as an HMAC fingerprint
    (audit/deployment.py), never the key, and the log's origin. Every server instance must
    share both, or log checkpoints (signed with a key made from the two), sessions and
    push keys would split; `doorwarden serve` checks them."""

    __tablename__ = "deployment_identity"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    secret_fingerprint: Mapped[str] = mapped_column(SafeString(64))
    log_origin: Mapped[str] = mapped_column(SafeString(300))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
