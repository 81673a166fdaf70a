"""The account page: profile, security notices, password, two-factor, API tokens, sessions.

Secrets that exist only once (recovery codes, a new API token) are shown in the answer to
the POST that made them rather than after a redirect: there is nowhere to keep them for a
later GET without storing them, which is what "shown once" rules out.
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from markupsafe import Markup
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from doorwarden.accounts import api_tokens, service, sessions, totp
from doorwarden.accounts.models import User
from doorwarden.accounts.schemas import TokenCreateIn
from doorwarden.accounts.secrets import PASSWORD_RULES
from doorwarden.clock import Clock
from doorwarden.deps import ClockDep, ContextDep, SessionDep, SettingsDep, UserDep, authorize
from doorwarden.errors import DomainError, InvalidInput
from doorwarden.policy import Action, Principal
from doorwarden.web.forms import (
    discard,
    error_response,
    failure,
    is_htmx,
    see_other,
)
from doorwarden.web.render import render

router = APIRouter(include_in_schema=False)

AccountRead = Annotated[Principal, authorize(Action.account_read)]
AccountSecurity = Annotated[Principal, authorize(Action.account_security)]

DONE_MESSAGES = {
    "notices": "Notices marked as read.",
    "totp-off": "Two-factor sign-in is off. Your recovery codes no longer work.",
    "token-revoked": "The token was revoked; scripts using it can no longer sign in.",
}
TOKEN_LIFETIMES = {"30": 30, "90": 90, "365": 365, "never": None}
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>\s*")


async def _account_context(
    db: AsyncSession, user: User, principal: Principal, clock: Clock
) -> dict[str, Any]:
    notices = await service.list_notices(db, user.id)
    session_rows = await sessions.list_sessions(db, user.id, clock.now())
    return {
        "unread_notices": [n for n in notices if n.read_at is None],
        "read_notices": [n for n in notices if n.read_at is not None],
        "tokens": await api_tokens.list_tokens(db, user_id=user.id),
        "sessions": session_rows,
        "current_session_id": principal.session_id,
        "totp_on": user.totp_enabled_at is not None,
        "recovery_left": await totp.remaining_recovery_codes(db, user),
        "token_lifetimes": list(TOKEN_LIFETIMES),
        **PASSWORD_RULES,
    }


async def _account_page(
    request: Request,
    db: AsyncSession,
    user: User,
    principal: Principal,
    clock: Clock,
    *,
    status_code: int = 200,
    **extra: Any,
) -> Response:
    context = await _account_context(db, user, principal, clock)
    return render(request, "accounts/account.html", {**context, **extra}, status_code=status_code)


@router.get("/account")
async def account(
    request: Request,
    principal: AccountRead,
    user: UserDep,
    db: SessionDep,
    clock: ClockDep,
    done: str | None = None,
    ended: int | None = None,
) -> Response:
    message = DONE_MESSAGES.get(done or "")
    if done == "password":
        message = f"Password changed. {ended or 0} other session(s) were signed out."
    return await _account_page(request, db, user, principal, clock, done=message)


@router.post("/account/notices/read")
async def mark_notices_read(
    _p: AccountSecurity, user: UserDep, db: SessionDep, clock: ClockDep
) -> Response:
    await service.mark_notices_read(db, user.id, clock.now())
    return see_other("/account?done=notices")


@router.post("/account/password")
async def change_password(
    request: Request,
    principal: AccountSecurity,
    user: UserDep,
    db: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    ctx: ContextDep,
    current_password: Annotated[str, Form(max_length=1024)] = "",
    new_password: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    try:
        ended = await service.change_password(
            db,
            user=user,
            current_password=current_password,
            new_password=new_password,
            password_cost=settings.password_cost,
            keep_session_id=principal.session_id,
            ctx=ctx,
            now=clock.now(),
        )
    except DomainError as exc:
        await discard(db, user)
        return await _account_page(
            request,
            db,
            user,
            principal,
            clock,
            status_code=exc.status_code,
            password_error=exc.message,
        )
    return see_other(f"/account?done=password&ended={ended}")


def _inline_svg(svg: str) -> Markup:
    """The QR code as an inline element (allowed by the CSP, unlike a data: script)."""
    svg = _XML_DECLARATION.sub("", svg)
    label = 'role="img" aria-label="QR code for your authenticator app"'
    labelled = svg.replace("<svg ", f"<svg {label} ", 1)
    return Markup(labelled)  # noqa: S704 - generated by qrcode from our own URI, no user markup


async def _enrolment_page(
    request: Request,
    user: User,
    settings: SettingsDep,
    *,
    status_code: int = 200,
    error: str | None = None,
) -> Response:
    seed = totp.pending_seed(settings.secret_key.get_secret_value(), user)
    if seed is None:
        return see_other("/account#two-factor")
    uri = totp.provisioning_uri(seed, user.email)
    context = {"qr": _inline_svg(totp.qr_svg(uri)), "secret": seed, "error": error}
    return render(request, "accounts/totp_enrol.html", context, status_code=status_code)


@router.post("/account/totp")
async def begin_totp(
    request: Request,
    principal: AccountSecurity,
    user: UserDep,
    db: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> Response:
    try:
        totp.begin_enrolment(settings.secret_key.get_secret_value(), user)
    except DomainError as exc:
        await discard(db, user)
        return await _account_page(
            request, db, user, principal, clock, status_code=exc.status_code, totp_error=exc.message
        )
    return see_other("/account/totp")


@router.get("/account/totp")
async def totp_enrolment(
    request: Request, _p: AccountSecurity, user: UserDep, settings: SettingsDep
) -> Response:
    return await _enrolment_page(request, user, settings)


def _recovery_codes_page(request: Request, codes: list[str], *, first_time: bool) -> Response:
    return render(
        request, "accounts/recovery_codes.html", {"codes": codes, "first_time": first_time}
    )


@router.post("/account/totp/confirm")
async def confirm_totp(
    request: Request,
    _p: AccountSecurity,
    user: UserDep,
    db: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    ctx: ContextDep,
    code: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    try:
        codes = await totp.confirm_enrolment(
            db, settings.secret_key.get_secret_value(), user, code, clock.now(), ctx
        )
    except DomainError as exc:
        await discard(db, user)
        return await _enrolment_page(
            request, user, settings, status_code=exc.status_code, error=exc.message
        )
    return _recovery_codes_page(request, codes, first_time=True)


@router.post("/account/totp/disable")
async def disable_totp(
    request: Request,
    principal: AccountSecurity,
    user: UserDep,
    db: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
    password: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    try:
        await totp.disable(db, user, password=password, ctx=ctx)
    except DomainError as exc:
        return await _account_page(
            request, db, user, principal, clock, status_code=exc.status_code, totp_error=exc.message
        )
    return see_other("/account?done=totp-off")


@router.post("/account/recovery-codes")
async def new_recovery_codes(
    request: Request, principal: AccountSecurity, user: UserDep, db: SessionDep, clock: ClockDep
) -> Response:
    if user.totp_enabled_at is None:
        return await _account_page(
            request,
            db,
            user,
            principal,
            clock,
            status_code=400,
            totp_error="Turn on two-factor sign-in first.",
        )
    codes = await totp.replace_recovery_codes(db, user, clock.now())
    return _recovery_codes_page(request, codes, first_time=False)


@router.post("/account/tokens")
async def create_token(
    request: Request,
    principal: AccountSecurity,
    user: UserDep,
    db: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
    name: Annotated[str, Form(max_length=100)] = "",
    lifetime: Annotated[str, Form(max_length=10)] = "90",
) -> Response:
    now = clock.now()
    try:
        if lifetime not in TOKEN_LIFETIMES:
            raise InvalidInput("Choose one of the offered lifetimes.")
        days = TOKEN_LIFETIMES[lifetime]
        body = TokenCreateIn(name=name, expires_at=now + timedelta(days=days) if days else None)
        token, secret = await api_tokens.create_token(
            db, user=user, name=body.name, expires_at=body.expires_at, ctx=ctx, now=now
        )
    except (DomainError, ValidationError) as exc:
        await discard(db, user)
        status, message = failure(exc)
        return await _account_page(
            request,
            db,
            user,
            principal,
            clock,
            status_code=status,
            token_error=message,
            token_name=name,
        )
    return render(
        request, "accounts/token_created.html", {"token": token, "secret": secret}, status_code=201
    )


@router.post("/account/tokens/{token_id}/revoke")
async def revoke_token(
    request: Request,
    token_id: uuid.UUID,
    _p: AccountSecurity,
    user: UserDep,
    db: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> Response:
    try:
        await api_tokens.revoke_token(db, user=user, token_id=token_id, ctx=ctx, now=clock.now())
    except DomainError as exc:
        await discard(db, user)
        return error_response(
            request, "error.html", {"status": exc.status_code, "message": exc.message}, exc
        )
    if is_htmx(request):
        return Response(status_code=200)  # htmx swaps the row out for this empty answer
    return see_other("/account?done=token-revoked#tokens")
