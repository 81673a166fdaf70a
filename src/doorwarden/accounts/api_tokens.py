"""Bearer API tokens for scripts: shown once, stored as SHA-256, revocable, optional expiry."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.accounts.models import ApiToken, User
from doorwarden.accounts.secrets import new_secret, secret_digest
from doorwarden.accounts.service import actor_of
from doorwarden.audit.service import RequestContext, record
from doorwarden.audit.tags import Tag
from doorwarden.errors import Conflict, InvalidInput, NotFound

TOKEN_PREFIX = "dwt_"
MAX_TOKENS_PER_USER = 50
TOUCH_INTERVAL = timedelta(minutes=1)


async def create_token(
    db: AsyncSession,
    *,
    user: User,
    name: str,
    expires_at: datetime | None,
    ctx: RequestContext,
    now: datetime,
) -> tuple[ApiToken, str]:
    if expires_at is not None and expires_at <= now:
        raise InvalidInput("The expiry must be in the future.")
    if len(await list_tokens(db, user_id=user.id)) >= MAX_TOKENS_PER_USER:
        raise Conflict(f"At most {MAX_TOKENS_PER_USER} active tokens; revoke one first.")
    secret = new_secret(TOKEN_PREFIX)
    token = ApiToken(
        user_id=user.id,
        name=name.strip(),
        token_hash=secret_digest(secret),
        prefix=secret[:12],
        created_at=now,
        expires_at=expires_at,
    )
    db.add(token)
    await db.flush()
    record(
        db,
        tag=Tag.account_token_create,
        actor=actor_of(user),
        ctx=ctx,
        target_type="api_token",
        target_id=token.id,
        extra={"name": token.name},
    )
    return token, secret


async def list_tokens(db: AsyncSession, *, user_id: uuid.UUID) -> Sequence[ApiToken]:
    query = (
        select(ApiToken)
        .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
        .order_by(ApiToken.created_at.desc())
    )
    return (await db.scalars(query)).all()


async def revoke_token(
    db: AsyncSession, *, user: User, token_id: uuid.UUID, ctx: RequestContext, now: datetime
) -> None:
    token = await db.get(ApiToken, token_id)
    # Someone else's token is reported as missing: its existence is not ours to confirm.
    if token is None or token.user_id != user.id or token.revoked_at is not None:
        raise NotFound("No such token.")
    token.revoked_at = now
    record(
        db,
        tag=Tag.account_token_revoke,
        actor=actor_of(user),
        ctx=ctx,
        target_type="api_token",
        target_id=token.id,
    )


async def authenticate(
    db: AsyncSession, secret: str, now: datetime
) -> tuple[ApiToken, User] | None:
    if not secret.startswith(TOKEN_PREFIX):
        return None
    query = (
        select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == secret_digest(secret), ApiToken.revoked_at.is_(None))
    )
    found = (await db.execute(query)).first()
    if found is None:
        return None
    token, user = found
    if not user.is_active or (token.expires_at is not None and token.expires_at <= now):
        return None
    if token.last_used_at is None or now - token.last_used_at >= TOUCH_INTERVAL:
        token.last_used_at = now
    return token, user
