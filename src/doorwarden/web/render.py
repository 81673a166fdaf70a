"""Server-rendered pages: one Jinja2 environment, CSRF token and navigation in every page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.templating import Jinja2Templates
from starlette.requests import Request
from starlette.responses import Response

from doorwarden import __version__, policy
from doorwarden.roles import Role
from doorwarden.web import csrf

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
templates = Jinja2Templates(directory=TEMPLATES_DIR)

NAVIGATION: dict[Role | None, list[tuple[str, str]]] = {
    None: [("Sign in", "/login"), ("Create account", "/signup")],
    Role.resident: [("Households", "/households"), ("Account", "/account")],
    Role.agency_officer: [("Agency", "/agency"), ("Account", "/account")],
    Role.legal_reviewer: [
        ("Review", "/review"),
        ("Agencies", "/agencies"),
        ("Account", "/account"),
    ],
    Role.operator_admin: [
        ("Administration", "/admin"),
        ("Instance policy", "/policy"),
        ("Audit log", "/audit"),
        ("Account", "/account"),
    ],
    Role.auditor: [("Audit log", "/audit"), ("Account", "/account")],
}


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
) -> Response:
    settings = request.app.state.settings
    principal: policy.Principal = getattr(request.state, "principal", policy.ANONYMOUS)
    token = csrf.token_for(settings, request, principal.session_id)
    page_context = {
        "principal": principal,
        "user": getattr(request.state, "user", None),
        # A plain string, read when the principal was loaded: an error page renders after
        # a rollback, when the user row can no longer be read.
        "user_name": getattr(request.state, "user_name", None),
        "nav": NAVIGATION.get(principal.role, []),
        "csrf_token": token,
        "csrf_field": csrf.FIELD,
        "version": __version__,
        **(context or {}),
    }
    response = templates.TemplateResponse(request, template, page_context, status_code=status_code)
    new_cookie = getattr(request.state, "new_csrf_cookie", None)
    if new_cookie:
        response.set_cookie(
            csrf.COOKIE,
            new_cookie,
            httponly=True,
            samesite="lax",
            secure=settings.cookies_secure,
            path="/",
        )
    response.headers["cache-control"] = "no-store"
    return response
