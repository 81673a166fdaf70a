"""Accounts: users, sign-in sessions, API tokens, second factor, invites, throttling."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, LargeBinary, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from doorwarden.db import Base, CreatedAt, SafeString, UUIDPrimaryKey, str_enum, utcnow
from doorwarden.roles import Role


class User(UUIDPrimaryKey, CreatedAt, Base):
    __tablename__ = "users"

    email: Mapped[str] = mapped_column(SafeString(254), unique=True)
    display_name: Mapped[str] = mapped_column(SafeString(100))
    password_hash: Mapped[str] = mapped_column(SafeString(255))
    role: Mapped[Role] = mapped_column(str_enum(Role))
    is_active: Mapped[bool] = mapped_column(default=True)
    password_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The TOTP secret is encrypted with a key derived from the instance secret.
    totp_secret_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    totp_enabled_at: Mapped[datetime | None]
    # Highest TOTP time step accepted so far: a code is never accepted twice.
    totp_last_step: Mapped[int | None]


class UserSession(UUIDPrimaryKey, CreatedAt, Base):
    """A browser sign-in. The cookie holds a random token; only its SHA-256 is stored."""

    __tablename__ = "user_sessions"

    token_hash: Mapped[str] = mapped_column(SafeString(64), unique=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    # Password accepted, second factor still owed: the session grants nothing else.
    mfa_pending: Mapped[bool] = mapped_column(default=False)
    client_address: Mapped[str | None] = mapped_column(SafeString(64))
    user_agent: Mapped[str | None] = mapped_column(SafeString(512))


class ApiToken(UUIDPrimaryKey, CreatedAt, Base):
    """Bearer token for scripts. Shown once at creation; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(SafeString(100))
    token_hash: Mapped[str] = mapped_column(SafeString(64), unique=True)
    prefix: Mapped[str] = mapped_column(SafeString(16))
    last_used_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class RecoveryCode(UUIDPrimaryKey, CreatedAt, Base):
    __tablename__ = "recovery_codes"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    code_hash: Mapped[str] = mapped_column(SafeString(64), unique=True)
    used_at: Mapped[datetime | None]


class Invite(UUIDPrimaryKey, CreatedAt, Base):
    """A single-use sign-up code made by an operator admin (invite-only instances)."""

    __tablename__ = "invites"

    code_hash: Mapped[str] = mapped_column(SafeString(64), unique=True)
    role: Mapped[Role] = mapped_column(str_enum(Role))
    agency_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("agencies.id", ondelete="CASCADE")
    )
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    used_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Policy rule 8: an operator's invite for a legal reviewer or an agency officer is
    # inert until a second operator confirms it (whoever confirmed is kept, for the
    # conflict-of-interest check at review).
    confirmed_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    confirmed_at: Mapped[datetime | None]
    # An officer's invite that makes its agency's officer-administrator (who invites the
    # agency's other officers).
    officer_admin: Mapped[bool] = mapped_column(default=False, server_default=false())


class SecurityNotice(UUIDPrimaryKey, CreatedAt, Base):
    """Something the account owner must be told: shown on the account page and at sign-in."""

    __tablename__ = "security_notices"
    __table_args__ = (Index("ix_security_notices_user_id_read_at", "user_id", "read_at"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(SafeString(64))
    message: Mapped[str] = mapped_column(Text)
    read_at: Mapped[datetime | None]


class ThrottleScope(StrEnum):
    account = "account"
    address = "address"
    device = "device"


class LoginThrottle(Base):
    """Failed sign-in counters, per account (by e-mail, known or not), per client address,
    and per trusted device (a browser that signed in to that account before)."""

    __tablename__ = "login_throttle"

    scope: Mapped[ThrottleScope] = mapped_column(str_enum(ThrottleScope), primary_key=True)
    key: Mapped[str] = mapped_column(SafeString(320), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    window_started_at: Mapped[datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[datetime | None]
    lock_count: Mapped[int] = mapped_column(default=0)
    # Attempts refused unevaluated during the current lock, for the owner's notice.
    blocked_attempts: Mapped[int] = mapped_column(default=0)
