"""Browser sessions: a random token in an HttpOnly, SameSite cookie; the database keeps
only its SHA-256, so a database leak does not hand out sign-ins."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.accounts.models import User, UserSession
from doorwarden.accounts.secrets import new_secret, secret_digest
from doorwarden.audit.service import RequestContext
from doorwarden.config import Settings

SESSION_COOKIE = "dw_session"
# Writing last_seen_at on every request would make every read a write.
TOUCH_INTERVAL = timedelta(minutes=1)


def _expiry(settings: Settings, created_at: datetime, last_seen_at: datetime) -> datetime:
    return min(
        created_at + timedelta(days=settings.session_max_days),
        last_seen_at + timedelta(minutes=settings.session_idle_minutes),
    )


async def start_session(
    db: AsyncSession,
    settings: Settings,
    *,
    user: User,
    mfa_pending: bool,
    ctx: RequestContext,
    now: datetime,
) -> tuple[UserSession, str]:
    token = new_secret()
    row = UserSession(
        token_hash=secret_digest(token),
        user_id=user.id,
        created_at=now,
        last_seen_at=now,
        expires_at=_expiry(settings, now, now),
        mfa_pending=mfa_pending,
        client_address=ctx.client_address,
        user_agent=(ctx.user_agent or "")[:512] or None,
    )
    db.add(row)
    await db.flush()
    return row, token


async def load_session(
    db: AsyncSession, settings: Settings, token: str, now: datetime
) -> tuple[UserSession, User] | None:
    """The live session for a cookie value, or None (unknown, expired, or user disabled)."""
    query = (
        select(UserSession, User)
        .join(User, User.id == UserSession.user_id)
        .where(UserSession.token_hash == secret_digest(token))
    )
    found = (await db.execute(query)).first()
    if found is None:
        return None
    session, user = found
    if session.expires_at <= now or not user.is_active:
        await db.delete(session)
        return None
    if now - session.last_seen_at >= TOUCH_INTERVAL:
        session.last_seen_at = now
        session.expires_at = _expiry(settings, session.created_at, now)
    return session, user


async def end_session(db: AsyncSession, session_id: uuid.UUID) -> None:
    await db.execute(delete(UserSession).where(UserSession.id == session_id))


async def end_other_sessions(db: AsyncSession, user_id: uuid.UUID, keep: uuid.UUID | None) -> int:
    query = delete(UserSession).where(UserSession.user_id == user_id)
    if keep is not None:
        query = query.where(UserSession.id != keep)
    result = await db.execute(query)
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def list_sessions(db: AsyncSession, user_id: uuid.UUID, now: datetime) -> list[UserSession]:
    query = (
        select(UserSession)
        .where(UserSession.user_id == user_id, UserSession.expires_at > now)
        .order_by(UserSession.last_seen_at.desc())
    )
    return list((await db.scalars(query)).all())
