"""Accounts API: sign-up, sessions, password, second factor, API tokens, notices."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Request, Response, status

from doorwarden.accounts import api_tokens, service, sessions, totp, web_session
from doorwarden.accounts.schemas import (
    AccountOut,
    LoginIn,
    LoginOut,
    NoticeOut,
    PasswordChangedOut,
    PasswordChangeIn,
    RecoveryCodesOut,
    SecondFactorIn,
    SessionOut,
    SignupIn,
    TokenCreatedOut,
    TokenCreateIn,
    TokenOut,
    TotpConfirmIn,
    TotpDisableIn,
    TotpEnrolmentOut,
    account_out,
)
from doorwarden.agencies.service import add_officer
from doorwarden.deps import ClockDep, ContextDep, SessionDep, SettingsDep, UserDep, authorize
from doorwarden.errors import InvalidInput
from doorwarden.policy import Action, Principal
from doorwarden.web import csrf

router = APIRouter(prefix="/api/v1", tags=["accounts"])

Signup = Annotated[Principal, authorize(Action.account_signup)]
SessionCreate = Annotated[Principal, authorize(Action.session_create)]
SessionEnd = Annotated[Principal, authorize(Action.session_end)]
AccountRead = Annotated[Principal, authorize(Action.account_read)]
AccountSecurity = Annotated[Principal, authorize(Action.account_security)]


def _login_out(
    request: Request, settings: SettingsDep, signed_in: web_session.SignedIn
) -> LoginOut:
    if signed_in.second_factor_required:
        return LoginOut(account=None, second_factor_required=True, csrf_token=None)
    token = csrf.token_for(settings, request, signed_in.session.id)
    return LoginOut(
        account=account_out(signed_in.user), second_factor_required=False, csrf_token=token
    )


@router.post("/accounts", status_code=status.HTTP_201_CREATED, response_model=AccountOut)
async def sign_up(
    body: SignupIn,
    _p: Signup,
    db: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> AccountOut:
    signed_up = await service.sign_up(
        db,
        settings,
        email=str(body.email),
        display_name=body.display_name,
        password=body.password,
        invite_code=body.invite_code,
        ctx=ctx,
        now=clock.now(),
    )
    if signed_up.agency_id is not None:  # an officer's invite
        await add_officer(
            db,
            user=signed_up.user,
            agency_id=signed_up.agency_id,
            is_admin=signed_up.officer_admin,
        )
    return account_out(signed_up.user)


@router.post("/session", response_model=LoginOut)
async def log_in(
    body: LoginIn,
    _p: SessionCreate,
    request: Request,
    response: Response,
    db: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> LoginOut:
    """Password sign-in. With two-factor on, answer `second_factor_required` by posting a
    code to /api/v1/session/second-factor with the same cookie."""
    await db.commit()  # the throttle's transactions need the connection (web_session.py)
    signed_in = await web_session.sign_in(
        request, db, settings, clock, ctx, email=body.email, password=body.password
    )
    web_session.set_session_cookies(response, request, settings, signed_in)
    return _login_out(request, settings, signed_in)


@router.post("/session/second-factor", response_model=LoginOut)
async def second_factor(
    body: SecondFactorIn,
    _p: SessionCreate,
    request: Request,
    response: Response,
    db: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> LoginOut:
    pending = await web_session.pending_sign_in(request, db, settings, clock)
    await db.commit()  # the throttle's transactions need the connection (web_session.py)
    signed_in = await web_session.complete_second_factor(
        request, db, settings, clock, ctx, pending=pending, code=body.code
    )
    web_session.set_session_cookies(response, request, settings, signed_in)
    return _login_out(request, settings, signed_in)


@router.delete("/session", status_code=status.HTTP_204_NO_CONTENT)
async def log_out(
    principal: SessionEnd, user: UserDep, db: SessionDep, settings: SettingsDep, ctx: ContextDep
) -> Response:
    await web_session.sign_out(db, user, principal.session_id, ctx)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    web_session.clear_session_cookie(response, settings)
    return response


@router.get("/account", response_model=AccountOut)
async def read_account(_p: AccountRead, user: UserDep) -> AccountOut:
    return account_out(user)


@router.get("/account/sessions", response_model=list[SessionOut])
async def list_sessions(
    principal: AccountRead, user: UserDep, db: SessionDep, clock: ClockDep
) -> list[SessionOut]:
    rows = await sessions.list_sessions(db, user.id, clock.now())
    return [
        SessionOut.model_validate(row).model_copy(
            update={"current": row.id == principal.session_id}
        )
        for row in rows
    ]


@router.post("/account/password", response_model=PasswordChangedOut)
async def change_password(
    body: PasswordChangeIn,
    principal: AccountSecurity,
    user: UserDep,
    db: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> PasswordChangedOut:
    """Changes the password and ends every other session of the account."""
    ended = await service.change_password(
        db,
        user=user,
        current_password=body.current_password,
        new_password=body.new_password,
        password_cost=settings.password_cost,
        keep_session_id=principal.session_id,
        ctx=ctx,
        now=clock.now(),
    )
    return PasswordChangedOut(sessions_ended=ended)


@router.post("/account/totp", response_model=TotpEnrolmentOut)
async def begin_totp(_p: AccountSecurity, user: UserDep, settings: SettingsDep) -> TotpEnrolmentOut:
    seed = totp.begin_enrolment(settings.secret_key.get_secret_value(), user)
    return TotpEnrolmentOut(secret=seed, otpauth_uri=totp.provisioning_uri(seed, user.email))


@router.post("/account/totp/confirm", response_model=RecoveryCodesOut)
async def confirm_totp(
    body: TotpConfirmIn,
    _p: AccountSecurity,
    user: UserDep,
    db: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> RecoveryCodesOut:
    codes = await totp.confirm_enrolment(
        db, settings.secret_key.get_secret_value(), user, body.code, clock.now(), ctx
    )
    return RecoveryCodesOut(recovery_codes=codes)


@router.post("/account/totp/disable", status_code=status.HTTP_204_NO_CONTENT)
async def disable_totp(
    body: TotpDisableIn, _p: AccountSecurity, user: UserDep, db: SessionDep, ctx: ContextDep
) -> None:
    await totp.disable(db, user, password=body.password, ctx=ctx)


@router.post("/account/recovery-codes", response_model=RecoveryCodesOut)
async def new_recovery_codes(
    _p: AccountSecurity, user: UserDep, db: SessionDep, clock: ClockDep
) -> RecoveryCodesOut:
    if user.totp_enabled_at is None:
        raise InvalidInput("Turn on two-factor sign-in first.")
    return RecoveryCodesOut(recovery_codes=await totp.replace_recovery_codes(db, user, clock.now()))


@router.get("/account/tokens", response_model=list[TokenOut])
async def list_tokens(_p: AccountRead, user: UserDep, db: SessionDep) -> list[TokenOut]:
    return [TokenOut.model_validate(t) for t in await api_tokens.list_tokens(db, user_id=user.id)]


@router.post("/account/tokens", status_code=status.HTTP_201_CREATED, response_model=TokenCreatedOut)
async def create_token(
    body: TokenCreateIn,
    _p: AccountSecurity,
    user: UserDep,
    db: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> TokenCreatedOut:
    token, secret = await api_tokens.create_token(
        db, user=user, name=body.name, expires_at=body.expires_at, ctx=ctx, now=clock.now()
    )
    return TokenCreatedOut(**TokenOut.model_validate(token).model_dump(), token=secret)


@router.delete("/account/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_token(
    token_id: uuid.UUID,
    _p: AccountSecurity,
    user: UserDep,
    db: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> None:
    await api_tokens.revoke_token(db, user=user, token_id=token_id, ctx=ctx, now=clock.now())


@router.get("/account/notices", response_model=list[NoticeOut])
async def list_notices(_p: AccountRead, user: UserDep, db: SessionDep) -> list[NoticeOut]:
    return [NoticeOut.model_validate(n) for n in await service.list_notices(db, user.id)]


@router.post("/account/notices/read", status_code=status.HTTP_204_NO_CONTENT)
async def mark_notices_read(
    _p: AccountSecurity, user: UserDep, db: SessionDep, clock: ClockDep
) -> None:
    await service.mark_notices_read(db, user.id, clock.now())
