"""What the legal API and pages share at the HTTP boundary: reading uploaded files with
their size bound, finding a request under its agency's path, and the context a filing
or a decision needs from the app."""

from __future__ import annotations

import json
import uuid
from typing import TypeVar

from fastapi import Request, UploadFile
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.accounts.models import User
from doorwarden.agencies.documents import DocumentTooLarge, Upload
from doorwarden.agencies.models import Agency
from doorwarden.audit.service import RequestContext
from doorwarden.config import Settings
from doorwarden.errors import DomainError, InvalidInput, NotFound
from doorwarden.legal.disclosure.outcomes import Effects
from doorwarden.legal.models import LegalRequest
from doorwarden.legal.requests.service import Filing
from doorwarden.storage.base import ClipStore

Model = TypeVar("Model", bound=BaseModel)


class DetailsInvalid(DomainError):
    """The details part failed validation: the same answer as a JSON body would get."""

    status_code = 422
    code = "validation_error"


async def read_upload(file: UploadFile | None, max_bytes: int, what: str) -> Upload | None:
    """The file's bytes (at most `max_bytes`, else DocumentTooLarge), or None when the
    form had no file (browsers send an empty part for an empty file input)."""
    if file is None:
        return None
    data = await file.read(max_bytes + 1)
    if not data and not file.filename:
        return None
    if len(data) > max_bytes:
        raise DocumentTooLarge(
            f"The {what} is larger than {max_bytes} bytes.", details={"max_bytes": max_bytes}
        )
    return Upload(data=data, filename=file.filename, content_type=file.content_type)


def parse_json_part(text: str, model: type[Model]) -> Model:
    """The `details` part of a multipart submission, validated like a JSON body."""
    try:
        return model.model_validate(json.loads(text))
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, ValidationError):
            details = [
                {"loc": [str(p) for p in e["loc"]], "msg": e["msg"], "type": e["type"]}
                for e in exc.errors()
            ]
            raise DetailsInvalid("The request is not valid.", details=details) from None
        raise InvalidInput("The details part is not JSON.") from None


def store_of(request: Request) -> ClipStore:
    store: ClipStore = request.app.state.clip_store
    return store


def effects_of(request: Request, ctx: RequestContext) -> Effects:
    app = request.app
    return Effects(
        store=app.state.clip_store,
        signer=app.state.log_signer,
        settings=app.state.settings,
        ctx=ctx,
        now=app.state.clock.now(),
    )


async def filing_of(
    request: Request, db: AsyncSession, agency_id: uuid.UUID, officer: User, ctx: RequestContext
) -> Filing:
    # Locked (FOR UPDATE, where the database has it) for the rest of the filing: one
    # agency's filings are checked for duplicates and replayed documents one at a time.
    agency = await db.get(Agency, agency_id, with_for_update=True)
    if agency is None:
        raise NotFound("No such agency.")
    settings: Settings = request.app.state.settings
    return Filing(
        agency=agency,
        officer=officer,
        store=store_of(request),
        settings=settings,
        ctx=ctx,
        now=request.app.state.clock.now(),
    )


async def agency_request(
    db: AsyncSession, agency_id: uuid.UUID, request_id: uuid.UUID
) -> LegalRequest:
    """The agency's own request; another agency's is not found (not forbidden: its
    existence is not for this agency to learn)."""
    found = await db.get(LegalRequest, request_id)
    if found is None or found.agency_id != agency_id:
        raise NotFound("No such request.")
    return found
