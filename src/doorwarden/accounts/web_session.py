"""Sign-in and sign-out as the API and the pages both do them: throttled password
check, optional second factor, a fresh session, and the cookies that carry it.

The throttle (login.py) keeps its counts in transactions of its own, which must survive
a refused attempt. So the caller commits its request's session before `sign_in` and
`complete_second_factor`: that gives its connection back (SQLite keeps one per process,
which the throttle's transactions would otherwise wait for). Nothing here commits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from doorwarden.accounts import login, sessions
from doorwarden.accounts.models import User, UserSession
from doorwarden.accounts.service import actor_of
from doorwarden.audit.service import RequestContext, record
from doorwarden.audit.tags import Tag
from doorwarden.clock import Clock
from doorwarden.config import Settings
from doorwarden.errors import NotAuthenticated

_COMMIT_FIRST = "commit the request's session first: the throttle needs its connection"

DEVICE_COOKIE_DAYS = 365


@dataclass(frozen=True)
class SignedIn:
    user: User
    session: UserSession
    token: str

    @property
    def second_factor_required(self) -> bool:
        return self.session.mfa_pending


async def sign_in(
    request: Request,
    db: AsyncSession,
    settings: Settings,
    clock: Clock,
    ctx: RequestContext,
    *,
    email: str,
    password: str,
) -> SignedIn:
    if db.in_transaction():
        raise RuntimeError(_COMMIT_FIRST)
    now = clock.now()
    attempt = login.Attempt(
        email=email,
        password=password,
        client_address=ctx.client_address or "unknown",
        device_cookie=request.cookies.get(login.DEVICE_COOKIE),
    )
    checked = await login.check_password(
        request.app.state.sessionmaker, settings, attempt, ctx, now
    )
    user = await db.get(User, checked.id)
    assert user is not None  # noqa: S101 - just checked
    pending = user.totp_enabled_at is not None
    session, token = await sessions.start_session(
        db, settings, user=user, mfa_pending=pending, ctx=ctx, now=now
    )
    if not pending:
        record(
            db,
            tag=Tag.account_login,
            actor=actor_of(user),
            ctx=ctx,
            target_type="user",
            target_id=user.id,
            extra={"second_factor": False},
        )
    return SignedIn(user, session, token)


@dataclass(frozen=True)
class Pending:
    """A sign-in that passed the password and waits for its second factor."""

    session: UserSession
    user: User


async def pending_sign_in(
    request: Request, db: AsyncSession, settings: Settings, clock: Clock
) -> Pending:
    """The sign-in the session cookie names, if it still waits for a second factor."""
    token = request.cookies.get(sessions.SESSION_COOKIE)
    loaded = await sessions.load_session(db, settings, token, clock.now()) if token else None
    if loaded is None or not loaded[0].mfa_pending:
        raise NotAuthenticated("Your sign-in has expired; enter your password again.")
    return Pending(*loaded)


async def complete_second_factor(
    request: Request,
    db: AsyncSession,
    settings: Settings,
    clock: Clock,
    ctx: RequestContext,
    *,
    pending: Pending,
    code: str,
) -> SignedIn:
    if db.in_transaction():
        raise RuntimeError(_COMMIT_FIRST)
    now, user = clock.now(), pending.user
    ok = await login.check_second_factor(
        request.app.state.sessionmaker,
        settings,
        user_id=user.id,
        code=code,
        client_address=ctx.client_address or "unknown",
        ctx=ctx,
        now=now,
    )
    if not ok:
        raise NotAuthenticated("That code is not valid. Codes can be used only once.")
    await sessions.end_session(db, pending.session.id)
    fresh_user = await db.get(User, user.id)
    assert fresh_user is not None  # noqa: S101
    # A new session id after the second factor: a pending id seen by someone else is useless.
    session, new_token = await sessions.start_session(
        db, settings, user=fresh_user, mfa_pending=False, ctx=ctx, now=now
    )
    record(
        db,
        tag=Tag.account_login,
        actor=actor_of(fresh_user),
        ctx=ctx,
        target_type="user",
        target_id=fresh_user.id,
        extra={"second_factor": True},
    )
    return SignedIn(fresh_user, session, new_token)


def set_session_cookies(
    response: Response, request: Request, settings: Settings, signed_in: SignedIn
) -> None:
    response.set_cookie(
        sessions.SESSION_COOKIE,
        signed_in.token,
        httponly=True,
        samesite="lax",
        secure=settings.cookies_secure,
        path="/",
        max_age=settings.session_max_days * 86400,
    )
    if signed_in.second_factor_required:
        return
    secret = settings.secret_key.get_secret_value()
    current = request.cookies.get(login.DEVICE_COOKIE)
    if login.trusted_device_key(secret, current, signed_in.user.id) is None:
        response.set_cookie(
            login.DEVICE_COOKIE,
            login.make_device_cookie(secret, signed_in.user.id),
            httponly=True,
            samesite="strict",
            secure=settings.cookies_secure,
            path="/",
            max_age=DEVICE_COOKIE_DAYS * 86400,
        )


async def sign_out(
    db: AsyncSession, user: User, session_id: uuid.UUID | None, ctx: RequestContext
) -> None:
    if session_id is not None:
        await sessions.end_session(db, session_id)
    record(
        db,
        tag=Tag.account_logout,
        actor=actor_of(user),
        ctx=ctx,
        target_type="user",
        target_id=user.id,
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        sessions.SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.cookies_secure,
    )
