"""A household's webhook endpoints, each delivery (one event to one endpoint: its id is
the `webhook-id` a receiver deduplicates on), every attempt, and the sources already
turned into deliveries.

The endpoint's signing secret is stored sealed (AES-256-GCM under a key derived from
the instance secret, signing.py), shown once when made or rotated, never returned after.
A source (an event, or an audit entry of a mode change or a privacy zone reduced) is
named by kind and id without a foreign key, as notify's outbox does: the marker table
only says "already handled" and is pruned once a source is past the scan's horizon.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from doorwarden.db import Base, SafeString, UUIDPrimaryKey, str_enum, utcnow


class EventKind(StrEnum):
    ring = "ring"
    motion = "motion"
    person = "person"
    mode_changed = "mode.changed"
    privacy_reduced = "camera.privacy_reduced"
    ping = "ping"


# What an owner may subscribe to (a ping goes only to the endpoint it tests).
SUBSCRIBABLE = tuple(k for k in EventKind if k is not EventKind.ping)


class SourceKind(StrEnum):
    event = "event"
    audit = "audit"
    ping = "ping"


class DeliveryStatus(StrEnum):
    pending = "pending"  # to send, or to retry at next_attempt_at
    delivered = "delivered"  # a 2xx answer
    failed = "failed"  # every retry used, refused for good, or its endpoint is gone


class WebhookEndpoint(UUIDPrimaryKey, Base):
    __tablename__ = "webhook_endpoints"

    household_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("households.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(SafeString(2000))
    description: Mapped[str] = mapped_column(SafeString(200), default="")
    event_kinds: Mapped[list[str]] = mapped_column(JSON)
    # nonce (12 bytes) + AES-GCM ciphertext of the raw key; the previous key signs too
    # until previous_until (zero-downtime rotation: the receiver accepts either).
    secret_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    previous_secret_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    previous_until: Mapped[datetime | None]
    enabled: Mapped[bool] = mapped_column(default=True)
    # Since when it is on: it hears of what happens from then (not of what it missed
    # while off, nor of what happened before it was registered).
    enabled_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Why the server turned it off (410 Gone, failing for days); null when an owner did.
    disabled_reason: Mapped[str | None] = mapped_column(SafeString(300))
    # The first failed attempt since the last success: how long it has been failing.
    failing_since: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookDelivery(UUIDPrimaryKey, Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        # One delivery per source and endpoint: a scan that runs twice adds nothing.
        UniqueConstraint("endpoint_id", "source_id"),
        Index("ix_webhook_deliveries_endpoint_id_created_at", "endpoint_id", "created_at"),
    )

    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE")
    )
    event_kind: Mapped[EventKind] = mapped_column(str_enum(EventKind))
    source: Mapped[SourceKind] = mapped_column(str_enum(SourceKind))
    source_id: Mapped[uuid.UUID | None]  # None for a ping
    # {"type", "timestamp", "data"}: ids, times, camera names and labels, never media.
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(default=0)
    status: Mapped[DeliveryStatus] = mapped_column(
        str_enum(DeliveryStatus), default=DeliveryStatus.pending
    )
    # When the job next takes it (a claim pushes it a lease ahead); null when done.
    next_attempt_at: Mapped[datetime | None] = mapped_column(index=True)
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(SafeString(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]

    @property
    def webhook_id(self) -> str:
        """The `webhook-id` header: the same on every retry (no '.' in it, as the spec asks)."""
        return f"msg_{self.id.hex}"


class WebhookAttempt(UUIDPrimaryKey, Base):
    __tablename__ = "webhook_attempts"

    delivery_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime]
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(SafeString(300))
    duration_ms: Mapped[int]


class WebhookSource(Base):
    """A source the scan has turned into deliveries (or found no endpoint wanted)."""

    __tablename__ = "webhook_sources"

    source: Mapped[SourceKind] = mapped_column(str_enum(SourceKind), primary_key=True)
    source_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    noted_at: Mapped[datetime] = mapped_column(index=True)
