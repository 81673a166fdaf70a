"""Pages for signing in and out, signing up, and the landing redirect."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from pydantic import ValidationError
from starlette.responses import Response

from doorwarden.accounts import service, sessions, web_session
from doorwarden.accounts.schemas import SignupIn
from doorwarden.accounts.secrets import PASSWORD_RULES
from doorwarden.agencies.service import add_officer
from doorwarden.config import SignupMode
from doorwarden.deps import ClockDep, ContextDep, SessionDep, SettingsDep, UserDep, authorize
from doorwarden.errors import DomainError
from doorwarden.policy import Action, Principal
from doorwarden.roles import Role
from doorwarden.web.forms import (
    MAX_NEXT_LENGTH,
    discard,
    error_response,
    safe_next,
    see_other,
    validation_message,
)
from doorwarden.web.render import render

router = APIRouter(include_in_schema=False)

PagePublic = Annotated[Principal, authorize(Action.page_public)]
SessionCreate = Annotated[Principal, authorize(Action.session_create)]
Signup = Annotated[Principal, authorize(Action.account_signup)]
SessionEnd = Annotated[Principal, authorize(Action.session_end)]

HOME_BY_ROLE = {
    Role.resident: "/households",
    Role.agency_officer: "/agency",
    Role.legal_reviewer: "/review",
    Role.operator_admin: "/admin",
    Role.auditor: "/audit",
}


# --- pages ------------------------------------------------------------------------------


@router.get("/")
async def home(principal: PagePublic) -> Response:
    if principal.role is None:
        return see_other("/login")
    return see_other(HOME_BY_ROLE.get(principal.role, "/account"))


def _login_page(
    *, email: str = "", next_path: str | None = None, notice: str | None = None
) -> dict[str, object]:
    return {"email": email, "next": next_path or "", "notice": notice}


LOGIN_NOTICES = {
    "created": "Your account is ready. Sign in to continue.",
    "signed-out": "You have signed out.",
}


@router.get("/login")
async def login_form(
    request: Request, principal: PagePublic, next: str | None = None, done: str | None = None
) -> Response:
    target = safe_next(next)
    if not principal.is_anonymous:
        return see_other(target or "/")
    return render(
        request,
        "accounts/login.html",
        _login_page(next_path=target, notice=LOGIN_NOTICES.get(done or "")),
    )


@router.post("/login")
async def login_submit(
    request: Request,
    _p: SessionCreate,
    db: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    ctx: ContextDep,
    email: Annotated[str, Form(max_length=254)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    next: Annotated[str, Form(max_length=MAX_NEXT_LENGTH)] = "",
) -> Response:
    target = safe_next(next)
    await db.commit()  # the throttle's transactions need the connection (web_session.py)
    try:
        signed_in = await web_session.sign_in(
            request, db, settings, clock, ctx, email=email, password=password
        )
    except DomainError as exc:
        await discard(db, None)
        return error_response(
            request, "accounts/login.html", _login_page(email=email, next_path=target), exc
        )
    if signed_in.second_factor_required:
        query = f"?{urlencode({'next': target})}" if target else ""
        response: Response = see_other(f"/login/second-factor{query}")
    else:
        response = see_other(target or "/")
    web_session.set_session_cookies(response, request, settings, signed_in)
    return response


@router.get("/login/second-factor")
async def second_factor_form(request: Request, _p: PagePublic, next: str | None = None) -> Response:
    if sessions.SESSION_COOKIE not in request.cookies:
        return see_other("/login")
    return render(request, "accounts/second_factor.html", {"next": safe_next(next) or ""})


@router.post("/login/second-factor")
async def second_factor_submit(
    request: Request,
    _p: SessionCreate,
    db: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    ctx: ContextDep,
    code: Annotated[str, Form(max_length=64)] = "",
    next: Annotated[str, Form(max_length=MAX_NEXT_LENGTH)] = "",
) -> Response:
    target = safe_next(next)
    try:
        pending = await web_session.pending_sign_in(request, db, settings, clock)
        await db.commit()  # the throttle's transactions need the connection (web_session.py)
        signed_in = await web_session.complete_second_factor(
            request, db, settings, clock, ctx, pending=pending, code=code
        )
    except DomainError as exc:
        await discard(db, None)
        return error_response(request, "accounts/second_factor.html", {"next": target or ""}, exc)
    response = see_other(target or "/")
    web_session.set_session_cookies(response, request, settings, signed_in)
    return response


def _signup_context(settings: SettingsDep, **values: str) -> dict[str, object]:
    return {"invite_only": settings.signup_mode is SignupMode.invite, **PASSWORD_RULES, **values}


@router.get("/signup")
async def signup_form(request: Request, principal: PagePublic, settings: SettingsDep) -> Response:
    if not principal.is_anonymous:
        return see_other("/")
    return render(request, "accounts/signup.html", _signup_context(settings))


@router.post("/signup")
async def signup_submit(
    request: Request,
    _p: Signup,
    db: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    ctx: ContextDep,
    email: Annotated[str, Form(max_length=254)] = "",
    display_name: Annotated[str, Form(max_length=100)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    invite_code: Annotated[str, Form(max_length=64)] = "",
) -> Response:
    # What the person typed comes back on an error; the password never does.
    typed = _signup_context(
        settings, email=email, display_name=display_name, invite_code=invite_code
    )
    try:
        body = SignupIn(
            email=email,
            display_name=display_name,
            password=password,
            invite_code=invite_code.strip() or None,
        )
    except ValidationError as exc:
        return render(
            request,
            "accounts/signup.html",
            {**typed, "error": validation_message(exc)},
            status_code=400,
        )
    try:
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
    except DomainError as exc:
        await discard(db, None)
        return error_response(request, "accounts/signup.html", typed, exc)
    return see_other("/login?done=created")


@router.post("/logout")
async def logout(
    principal: SessionEnd, user: UserDep, db: SessionDep, settings: SettingsDep, ctx: ContextDep
) -> Response:
    await web_session.sign_out(db, user, principal.session_id, ctx)
    response = see_other("/login?done=signed-out")
    web_session.clear_session_cookie(response, settings)
    return response
