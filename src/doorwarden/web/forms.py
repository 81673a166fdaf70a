"""Form handling shared by every domain's pages: Post/Redirect/Get, a safe `next`, typed
fields read into what the API's schemas take, readable validation messages, undoing a
refused form's partial work, and the area map's tiles. Kernel: no domain is imported here
(a domain brings its own field labels, see `Messages`)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from pydantic import ValidationError
from pydantic_core import ErrorDetails
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import RedirectResponse, Response

from doorwarden.config import Settings
from doorwarden.db import run_rollback_cleanups
from doorwarden.errors import DomainError, InvalidInput
from doorwarden.middleware import content_security_policy
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
# Pydantic's wording for a missing or mistyped date is for programmers; forms say this.
PLAIN_WORDS = {
    "missing": "this is required",
    "datetime_type": "enter a date and time",
    "datetime_parsing": "enter a date and time",
    "datetime_from_date_parsing": "enter a date and time",
    "date_type": "enter a date",
    "date_parsing": "enter a date",
    "date_from_datetime_parsing": "enter a date",
    "timezone_aware": "enter a date and time",
}
# A date and time typed without a zone; the pages label these inputs "UTC".
LOCAL_INPUT = "%Y-%m-%dT%H:%M"


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


# -- messages ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Messages:
    """How one set of forms words a refusal: its fields' labels; whether an empty or
    mistyped field reads in plain words (PLAIN_WORDS) rather than pydantic's; and any
    wording of its own for a (field, error type) the generic text says badly."""

    labels: Mapping[str, str]
    plain: bool = False
    own: Callable[[str, ErrorDetails], str | None] | None = None

    def text(self, field: str, err: ErrorDetails) -> str:
        if self.own is not None and (special := self.own(field, err)) is not None:
            return special
        if self.plain and (err["type"] in PLAIN_WORDS or err.get("input") in (None, "")):
            return PLAIN_WORDS.get(err["type"], "this is required")
        return str(err.get("msg", "is not valid")).removeprefix("Value error, ")


ACCOUNT_MESSAGES = Messages(FIELD_LABELS)


def validation_message(exc: ValidationError, messages: Messages = ACCOUNT_MESSAGES) -> str:
    """One readable sentence per field; the input itself is never echoed (passwords)."""
    parts = []
    for err in exc.errors():
        loc = err.get("loc") or ()
        field = str(loc[0]) if loc else ""
        label = messages.labels.get(field, field.replace("_", " ").capitalize())
        text = messages.text(field, err)
        parts.append(f"{label}: {text}." if label else f"{text}.")
    return " ".join(parts) or "The form is not valid."


def failure(
    exc: ValidationError | DomainError, messages: Messages = ACCOUNT_MESSAGES
) -> tuple[int, str]:
    """The status code and message to show for a form that was refused."""
    if isinstance(exc, ValidationError):
        return 400, validation_message(exc, messages)
    return exc.status_code, exc.message


async def discard(db: AsyncSession, reload: object | None) -> None:
    """Undo a refused form's partial work: its rows, and any object it stored before the
    refusal (db.on_rollback). Reload `reload` (the signed-in user, for the page header):
    a rollback expires every loaded row, and async sessions cannot lazy-load."""
    await db.rollback()
    await run_rollback_cleanups(db)
    if reload is not None:
        await db.refresh(reload)


def error_response(
    request: Request, template: str, context: dict[str, object], exc: DomainError
) -> Response:
    response = render(
        request, template, {**context, "error": exc.message}, status_code=exc.status_code
    )
    response.headers.update(exc.headers)
    return response


# -- typed fields -------------------------------------------------------------------------


def blank_none(value: str) -> str | None:
    return value.strip() or None


def lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def ids(text: str, what: str) -> list[uuid.UUID]:
    """One id per line (commas and spaces separate too); a line that is not one is named."""
    found: list[uuid.UUID] = []
    for part in text.replace(",", "\n").split():
        try:
            found.append(uuid.UUID(part))
        except ValueError:
            raise InvalidInput(
                f"{what}: “{part[:60]}” is not an id (ids look like "
                "3f2b8c1e-0a4d-4c6e-9b7a-1d2e3f4a5b6c)."
            ) from None
    return found


def utc(value: str) -> str | None:
    """A datetime-local value ("2026-11-25T09:00") as an ISO time in UTC, for pydantic to
    validate; an empty field is None, a malformed one is passed on to be refused."""
    text = value.strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat()


def local_input(moment: datetime | None) -> str:
    """The value of a datetime-local input showing `moment` in UTC (seconds only when
    there are some; the input then needs step="1" to show them)."""
    if moment is None:
        return ""
    moment = moment.astimezone(UTC)
    return moment.strftime(LOCAL_INPUT + (":%S" if moment.second else ""))


# -- the area input: GeoJSON typed or drawn on a map ----------------------------------------


# A drawn or typed area, as geo.py bounds what it parses (geo.MAX_GEOJSON_BYTES).
MAX_AREA_CHARS = 512 * 1024


def geojson(text: str, what: str) -> dict[str, Any] | None:
    """The area typed or drawn, as a JSON object (its geometry is the service's to check)."""
    if not text.strip():
        return None
    if len(text) > MAX_AREA_CHARS:
        raise InvalidInput(f"{what}: the area is longer than {MAX_AREA_CHARS} characters.")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):  # a form field nested thousands deep, as geo.py
        raise InvalidInput(f"{what}: this is not GeoJSON (it does not parse as JSON).") from None
    if not isinstance(value, dict):
        raise InvalidInput(f"{what}: give a GeoJSON Polygon object.")
    return value


def area_text_of(stored: str | None) -> str:
    """A stored GeoJSON area as text for a textarea (empty when there is none)."""
    return json.dumps(json.loads(stored)) if stored else ""


def map_settings(settings: Settings) -> dict[str, str]:
    return {"tile_url": settings.map_tile_url or "", "attribution": settings.map_tile_attribution}


def tile_origin(tile_url: str) -> str:
    """The origin map tiles come from, as a CSP source: "{s}." (the tile server's
    subdomains) becomes a wildcard. config.py has checked the URL's shape."""
    parts = urlsplit(tile_url)
    host = parts.netloc.lower()
    if host.startswith("{s}."):
        host = "*." + host.removeprefix("{s}.")
    return f"{parts.scheme}://{host}"


def with_map_csp(response: Response, settings: Settings) -> Response:
    """A page with an area map may load tiles from the configured tile server (only)."""
    if settings.map_tile_url:
        response.headers["content-security-policy"] = content_security_policy(
            img_sources=(tile_origin(settings.map_tile_url),)
        )
    return response
