"""Web Push subscriptions: one per member device (a browser's PushSubscription)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from doorwarden.db import Base, CreatedAt, SafeString, SafeText, UUIDPrimaryKey


class PushSubscription(UUIDPrimaryKey, CreatedAt, Base):
    """The endpoint is a capability URL (whoever holds it may push to that browser): it
    is never shown back, logged or audited; only its host is. p256dh and auth are the
    browser's keys the payload is encrypted to (RFC 8291)."""

    __tablename__ = "push_subscriptions"
    # One row per browser per user: the same endpoint subscribed again is the same row.
    __table_args__ = (UniqueConstraint("user_id", "endpoint_sha256"),)

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    endpoint: Mapped[str] = mapped_column(SafeText())
    endpoint_sha256: Mapped[str] = mapped_column(SafeString(64))
    endpoint_host: Mapped[str] = mapped_column(SafeString(255))
    p256dh: Mapped[bytes] = mapped_column(LargeBinary)
    auth: Mapped[bytes] = mapped_column(LargeBinary)
    label: Mapped[str | None] = mapped_column(SafeString(64))
    last_success_at: Mapped[datetime | None]
