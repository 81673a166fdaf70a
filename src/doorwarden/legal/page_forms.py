"""What the legal-process pages share: times typed in `datetime-local` inputs (read as UTC,
and the pages say so), readable validation messages for the legal forms, undoing a refused
form's stored documents, and the area map's settings and CSP."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from doorwarden.accounts.models import User
from doorwarden.config import Settings
from doorwarden.db import run_rollback_cleanups
from doorwarden.errors import DomainError, InvalidInput
from doorwarden.middleware import content_security_policy
from doorwarden.transparency.views import tile_origin
from doorwarden.web.forms import discard

LABELS = {
    "case_number": "Case number",
    "issuing_court": "Issuing court or authority",
    "judge": "Judge",
    "signed_on": "Signed on",
    "expires_at": "Expires (UTC)",
    "window_start": "Window start (UTC)",
    "window_end": "Window end (UTC)",
    "scope": "Scope",
    "justification": "Justification",
    "nondisclosure_until": "Non-disclosure order ends (UTC)",
    "description": "Description of the danger",
    "attest_imminent_danger": "Attestation",
    "public_text": "Text for residents",
    "area": "Area",
    "approving_body": "Approving body",
    "approved_on": "Approved on",
    "reference": "Reference",
    "expires_on": "Expires on",
    "name": "Name",
    "kind": "Kind",
    "funding_source": "Funding source",
    "approval_id": "Approval",
    "jurisdiction": "Jurisdiction name",
    "jurisdiction_area": "Jurisdiction area",
    "contacts": "Contacts",
    "keep_devices": "Cameras to keep",
    "reason": "Reason",
    "note": "Note",
}
FRIENDLY = {
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


def geojson(text: str, what: str) -> dict[str, Any] | None:
    """The area typed or drawn, as a JSON object (its geometry is the service's to check)."""
    if not text.strip():
        return None
    try:
        value = json.loads(text)
    except ValueError:
        raise InvalidInput(f"{what}: this is not GeoJSON (it does not parse as JSON).") from None
    if not isinstance(value, dict):
        raise InvalidInput(f"{what}: give a GeoJSON Polygon object.")
    return value


def area_text_of(stored: str | None) -> str:
    """A stored GeoJSON area as text for a textarea (empty when there is none)."""
    return json.dumps(json.loads(stored)) if stored else ""


def message(exc: ValidationError) -> str:
    """One sentence per problem, with the form's own label; the input is never echoed."""
    parts = []
    for err in exc.errors():
        loc = err.get("loc") or ()
        field = str(loc[0]) if loc else ""
        label = LABELS.get(field, field.replace("_", " ").capitalize())
        if field == "scope" and err["type"] == "too_short":
            text = "name at least one address, household or camera"
        elif err["type"] in FRIENDLY or err.get("input") in (None, ""):
            text = FRIENDLY.get(err["type"], "this is required")
        else:
            text = str(err.get("msg", "is not valid")).removeprefix("Value error, ")
        parts.append(f"{label}: {text}." if label else f"{text}.")
    return " ".join(parts) or "The form is not valid."


def failure(exc: ValidationError | DomainError) -> tuple[int, str]:
    if isinstance(exc, ValidationError):
        return 400, message(exc)
    return exc.status_code, exc.message


async def refused(db: AsyncSession, user: User | None) -> None:
    """Undo a refused form: its rows, and any document it stored before the refusal."""
    await discard(db, user)
    await run_rollback_cleanups(db)


def map_settings(settings: Settings) -> dict[str, str]:
    return {"tile_url": settings.map_tile_url or "", "attribution": settings.map_tile_attribution}


def with_map_csp(response: Response, settings: Settings) -> Response:
    """A page with an area map may load tiles from the configured tile server (only)."""
    if settings.map_tile_url:
        response.headers["content-security-policy"] = content_security_policy(
            img_sources=(tile_origin(settings.map_tile_url),)
        )
    return response


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings
