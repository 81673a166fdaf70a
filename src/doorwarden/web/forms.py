"""Form handling shared by every domain's pages: Post/Redirect/Get, a safe `next`,
readable validation messages, and undoing a refused form's partial work."""

from __future__ import annotations

from fastapi import Request
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import RedirectResponse, Response

from doorwarden.accounts.models import User
from doorwarden.db import run_rollback_cleanups
from doorwarden.errors import DomainError
from doorwarden.web.render import render

MAX_NEXT_LENGTH = 2000
FIELD_LABELS = {
    "email": "E-mail address",
    "display_name": "Name",
    "password": "Password",
    "invite_code": "Invite code",
    "name": "Name",
    "address": "Address",
    "time_zone": "Time zone",
    "latitude": "Latitude",
    "longitude": "Longitude",
    "jurisdiction": "Jurisdiction",
}


def see_other(url: str) -> RedirectResponse:
    """303: the browser follows with GET, so reloading the result never re-posts."""
    return RedirectResponse(url, status_code=303)


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def safe_next(value: str | None) -> str | None:
    """A local path to go to after sign-in, or None. Browsers treat a backslash as a
    slash, so "/\\evil.example" would leave the site just like "//evil.example"."""
    if not value or len(value) > MAX_NEXT_LENGTH or not value.startswith("/"):
        return None
    if value.startswith("//") or "\\" in value or any(ord(c) < 0x21 for c in value):
        return None
    return value


def validation_message(exc: ValidationError) -> str:
    """One readable sentence per field; the input itself is never echoed (passwords)."""
    parts = []
    for err in exc.errors():
        field = str(err["loc"][0]) if err.get("loc") else ""
        label = FIELD_LABELS.get(field, field.replace("_", " ").capitalize())
        message = str(err.get("msg", "is not valid")).removeprefix("Value error, ")
        parts.append(f"{label}: {message}." if label else f"{message}.")
    return " ".join(parts) or "The form is not valid."


def failure(exc: ValidationError | DomainError) -> tuple[int, str]:
    """The status code and message to show for a form that was refused."""
    if isinstance(exc, ValidationError):
        return 400, validation_message(exc)
    return exc.status_code, exc.message


async def discard(db: AsyncSession, user: User | None) -> None:
    """Undo a failed form's partial work; reload the signed-in user for the page header
    (a rollback expires every loaded row, and async sessions cannot lazy-load)."""
    await db.rollback()
    await run_rollback_cleanups(db)
    if user is not None:
        await db.refresh(user)


def error_response(
    request: Request, template: str, context: dict[str, object], exc: DomainError
) -> Response:
    response = render(
        request, template, {**context, "error": exc.message}, status_code=exc.status_code
    )
    response.headers.update(exc.headers)
    return response
