"""What the server keeps for a member's keyring. Every secret in here is ciphertext that
only the member's own devices open: the server never holds a private key in clear, a
passphrase, or a passkey's PRF output."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from doorwarden.db import Base, CreatedAt, SafeString, UUIDPrimaryKey


class KeyBackup(UUIDPrimaryKey, CreatedAt, Base):
    """A backup record of crypto/member_backup.py, stored as the page sent it. One per
    slot: "passphrase", or "passkey:<credential id>" for each passkey."""

    __tablename__ = "keyring_backups"
    __table_args__ = (UniqueConstraint("user_id", "slot"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    slot: Mapped[str] = mapped_column(SafeString(300))
    key_id: Mapped[str] = mapped_column(SafeString(32))
    record: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The passphrase backup's fetches in the current window: each fetch is a guess the
    # page may try offline, so fetches are what is rate-limited (keyring/service.py).
    fetch_window_started_at: Mapped[datetime | None]
    fetches: Mapped[int] = mapped_column(default=0)


class Passkey(UUIDPrimaryKey, CreatedAt, Base):
    """A WebAuthn credential registered to unlock the member key (its PRF output wraps
    the key; the server keeps the salt it is evaluated at, and verifies assertions)."""

    __tablename__ = "keyring_passkeys"
    __table_args__ = (UniqueConstraint("credential_id"),)

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    credential_id: Mapped[str] = mapped_column(SafeString(300))  # base64url
    public_key: Mapped[str] = mapped_column(SafeString(1500))  # COSE key, base64url
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0)
    prf_salt: Mapped[str] = mapped_column(SafeString(43))  # base64url of 32 bytes
    last_used_at: Mapped[datetime | None]


class Ceremony(UUIDPrimaryKey, CreatedAt, Base):
    """A WebAuthn challenge handed out, single use and short-lived."""

    __tablename__ = "keyring_ceremonies"
    __table_args__ = (Index("ix_keyring_ceremonies_user_expires", "user_id", "expires_at"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(SafeString(16))  # register | authenticate
    challenge: Mapped[str] = mapped_column(SafeString(100))  # base64url
    prf_salt: Mapped[str | None] = mapped_column(SafeString(43))  # registration only
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class DeviceRequest(UUIDPrimaryKey, CreatedAt, Base):
    """A new device asking for the member key: its ephemeral X25519 public key. An
    existing device of the same member approves it by wrapping the key to that public key
    (crypto/wrap.py's scheme) after checking the code the new device shows."""

    __tablename__ = "keyring_device_requests"
    __table_args__ = (Index("ix_keyring_device_requests_user_expires", "user_id", "expires_at"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    public_key: Mapped[str] = mapped_column(SafeString(64))
    expires_at: Mapped[datetime]
    approved_at: Mapped[datetime | None]
    approved_key_id: Mapped[str | None] = mapped_column(SafeString(32))
    wrapped: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    collected_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]


class RetiredKeys(Base):
    """A member's earlier private keys, each wrapped to the current key (crypto/wrap.py),
    so a device that gets the current key also opens clips recorded before a rotation."""

    __tablename__ = "keyring_retired_keys"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    sealed_under: Mapped[str] = mapped_column(SafeString(32))  # the current key's id
    keys: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    updated_at: Mapped[datetime]
