"""Members' notification rules, the outbox of notifications (one per source x member)
and every attempt to deliver one.

A notification's source is an event, an integrity alert or a legal notice, named by kind
and id without a foreign key: the outbox outlives neither, and the sources' tables belong
to domains that may change without this one. `notify_sources` marks the alerts and notices
the outbox has already turned into notifications (events carry their own `notified_at`).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, ForeignKey, Index, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from doorwarden.db import Base, SafeString, UUIDPrimaryKey, str_enum, utcnow


class NotifyKind(StrEnum):
    ring = "ring"
    person = "person"
    motion = "motion"
    integrity_alert = "integrity_alert"
    legal_notice = "legal_notice"
    # A privacy zone removed or shrunk from the web (devices/settings/): a safeguard for
    # whoever it hid, so every member is told, whatever their rules say.
    privacy_zone = "privacy_zone"


class SourceKind(StrEnum):
    event = "event"
    integrity_alert = "integrity_alert"
    legal_notice = "legal_notice"
    privacy_zone = "privacy_zone"  # its camera:privacy:reduce audit event


class NotificationStatus(StrEnum):
    pending = "pending"  # some channel still to deliver (or to retry)
    delivered = "delivered"  # every channel it had took it
    gave_up = "gave_up"  # still failing a day after it was made
    no_channel = "no_channel"  # the member has no push subscription and no e-mail


class Channel(StrEnum):
    push = "push"
    email = "email"


class AttemptStatus(StrEnum):
    sent = "sent"
    failed = "failed"
    expired = "expired"  # the push service says the subscription is gone (404/410)


class NotificationRule(Base):
    """One member's rules for one household; none saved means the defaults (rules.py)."""

    __tablename__ = "notification_rules"

    household_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("households.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    # Device ids as strings, or null for every camera (those paired later too).
    cameras: Mapped[list[str] | None] = mapped_column(JSON)
    kinds: Mapped[list[str]] = mapped_column(JSON)
    quiet_start: Mapped[str | None] = mapped_column(SafeString(5))  # "HH:MM", household time
    quiet_end: Mapped[str | None] = mapped_column(SafeString(5))
    cooldown_s: Mapped[int]
    email: Mapped[bool]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Notification(UUIDPrimaryKey, Base):
    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("source", "source_id", "user_id"),
        Index("ix_notifications_user_id_created_at", "user_id", "created_at"),
        # The cooldown's question: this member's latest notification for this camera.
        Index(
            "ix_notifications_user_id_device_id_occurred_at", "user_id", "device_id", "occurred_at"
        ),
    )

    household_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("households.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[NotifyKind] = mapped_column(str_enum(NotifyKind))
    source: Mapped[SourceKind] = mapped_column(str_enum(SourceKind))
    source_id: Mapped[uuid.UUID]
    device_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("devices.id", ondelete="SET NULL")
    )
    occurred_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # What the member is shown, fixed when it is made (payload.py): no image, no
    # household name.
    title: Mapped[str] = mapped_column(SafeString(200))
    body: Mapped[str] = mapped_column(SafeString(500))
    url: Mapped[str] = mapped_column(SafeString(300))
    thumbnail: Mapped[str | None] = mapped_column(SafeString(300))
    email: Mapped[bool]  # send by e-mail too (the member's rule said so when it was made)
    status: Mapped[NotificationStatus] = mapped_column(
        str_enum(NotificationStatus), default=NotificationStatus.pending
    )
    tries: Mapped[int] = mapped_column(default=0)
    # When dispatch next takes it (a claim pushes it ahead by a lease); null when done.
    next_attempt_at: Mapped[datetime | None] = mapped_column(index=True)
    done_at: Mapped[datetime | None]


class NotificationAttempt(UUIDPrimaryKey, Base):
    __tablename__ = "notification_attempts"

    notification_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("notifications.id", ondelete="CASCADE"), index=True
    )
    channel: Mapped[Channel] = mapped_column(str_enum(Channel))
    # The push subscription tried (kept after the subscription is removed).
    subscription_id: Mapped[uuid.UUID | None]
    status: Mapped[AttemptStatus] = mapped_column(str_enum(AttemptStatus))
    http_status: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(SafeString(300))
    at: Mapped[datetime]


class NotifySource(Base):
    """An integrity alert or legal notice the outbox has handled (events have notified_at)."""

    __tablename__ = "notify_sources"

    source: Mapped[SourceKind] = mapped_column(str_enum(SourceKind), primary_key=True)
    source_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    noted_at: Mapped[datetime]
