"""Which end-to-end public key was whose, from when to when (docs/e2e.md, rotation).
`member_keys` holds each person's current key; a replaced key (a lost device, a
rotation) keeps its period here, closed, so that the clips wrapped to it while it was
current are still accepted and a key nobody in the household ever had is refused."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from doorwarden.db import Base, SafeString, UUIDPrimaryKey


class MemberKeyPeriod(UUIDPrimaryKey, Base):
    __tablename__ = "member_key_periods"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    # crypto.keys.key_id of the public key: what a manifest's recipients name.
    key_id: Mapped[str] = mapped_column(SafeString(32), index=True)
    public_key: Mapped[str] = mapped_column(SafeString(64))
    valid_from: Mapped[datetime]
    valid_to: Mapped[datetime | None]


class DeliveredMemberSet(UUIDPrimaryKey, Base):
    """An end-to-end member set as a camera was given it (GET /api/v1/device), recorded
    when it differs from the one given to that camera before: what the camera may seal to
    until it hears of the next. A camera offline across a member's removal seals to the
    set it holds; its clip is then told from one wrapped to a stranger (clips/ingest.py),
    so it is not refused for ever."""

    __tablename__ = "delivered_member_sets"

    device_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), index=True
    )
    # The key ids (crypto.keys.key_id), sorted, comma-separated: at most 64 of 32 chars.
    key_ids: Mapped[str] = mapped_column(SafeString(64 * 33))
    served_at: Mapped[datetime]
