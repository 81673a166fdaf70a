"""CSRF tokens: HMAC of the session id for signed-in users, or of a random cookie for
forms posted before sign-in (login, sign-up) — OWASP's signed double-submit pattern."""

from __future__ import annotations

import hmac
import secrets
import uuid

from starlette.requests import Request

from doorwarden.config import Settings
from doorwarden.signing import sign

COOKIE = "dw_csrf"
FIELD = "csrf_token"
HEADER = "x-csrf-token"


def _expected(settings: Settings, request: Request, session_id: uuid.UUID | None) -> str | None:
    key = settings.secret_key.get_secret_value()
    if session_id is not None:
        return sign(key, f"csrf:session:{session_id}")
    cookie = request.cookies.get(COOKIE) or getattr(request.state, "new_csrf_cookie", None)
    return sign(key, f"csrf:anon:{cookie}") if cookie else None


def token_for(settings: Settings, request: Request, session_id: uuid.UUID | None) -> str:
    """The token to embed in a page; creates the anonymous cookie value if needed (the
    renderer sets it on the response)."""
    expected = _expected(settings, request, session_id)
    if expected is None:
        request.state.new_csrf_cookie = secrets.token_urlsafe(32)
        expected = _expected(settings, request, session_id)
    assert expected is not None  # noqa: S101 - just set above
    return expected


def token_ok(
    settings: Settings, request: Request, session_id: uuid.UUID | None, supplied: str | None
) -> bool:
    expected = _expected(settings, request, session_id) if supplied else None
    return expected is not None and supplied is not None and hmac.compare_digest(expected, supplied)
