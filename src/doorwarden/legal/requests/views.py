"""The agency page with its officers' requests, and filing a request from it, one form per
kind (kinds.py). The typed fields are built into the API's schemas and go through the
same services, so a page refuses exactly what the API refuses, with the same message,
and shows the form again as it was typed (files must be chosen again: browsers never
prefill a file input)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from doorwarden.agencies import service as agencies
from doorwarden.agencies.governance.service import instance_policy
from doorwarden.agencies.page import agency_page, may
from doorwarden.config import Settings
from doorwarden.deps import (
    ClockDep,
    EffectsDep,
    SessionDep,
    SettingsDep,
    UserDep,
    agency_resource,
    authorize,
)
from doorwarden.errors import DomainError
from doorwarden.legal.models import RequestKind
from doorwarden.legal.page_forms import MESSAGES
from doorwarden.legal.requests import forms, kinds
from doorwarden.legal.requests import service as requests
from doorwarden.legal.requests.records import agency_requests, reading
from doorwarden.policy import Action, Principal
from doorwarden.web.forms import (
    area_text_of,
    discard,
    failure,
    map_settings,
    see_other,
    with_map_csp,
)
from doorwarden.web.render import render

router = APIRouter(include_in_schema=False)

OptionalFile = Annotated[UploadFile | None, File()]
Fields = Annotated[forms.RequestFields, Form()]


@router.get("/agencies/{agency_id}")
async def agency_detail(
    request: Request,
    agency_id: uuid.UUID,
    principal: Annotated[Principal, authorize(Action.agency_read, agency_resource)],
    db: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    done: str | None = None,
) -> Response:
    """The agency page (agencies/page.py), with its requests and the forms to file one
    for its own officers."""
    own = may(principal, Action.legal_request_read, agency_id)
    return await agency_page(
        request,
        db,
        principal,
        agency_id,
        settings,
        clock.now(),
        done=done,
        own_officer=own,
        can_file=may(principal, Action.legal_request_submit, agency_id),
        kinds=kinds.KINDS,
        requests=await agency_requests(db, agency_id, reading(principal, agency_id)) if own else [],
    )


async def _form_page(
    request: Request,
    db: AsyncSession,
    settings: Settings,
    agency_id: uuid.UUID,
    kind: RequestKind,
    *,
    status_code: int = 200,
    **extra: Any,
) -> Response:
    agency = await agencies.get_agency(db, agency_id)
    context = {
        "agency": agency,
        "kind": kind,
        "page": kinds.KINDS[kind],
        "form": {},
        "settings": settings,
        "map": map_settings(settings),
        "jurisdiction": area_text_of(agency.jurisdiction_area),
        "community_enabled": (await instance_policy(db)).community_requests_enabled,
        **extra,
    }
    response = render(request, "legal/request_new.html", context, status_code=status_code)
    return with_map_csp(response, settings) if kind is RequestKind.community else response


@router.get("/agencies/{agency_id}/requests/new/{kind}")
async def new_request(
    request: Request,
    agency_id: uuid.UUID,
    kind: RequestKind,
    _p: Annotated[Principal, authorize(Action.legal_request_submit, agency_resource)],
    db: SessionDep,
    settings: SettingsDep,
) -> Response:
    return await _form_page(request, db, settings, agency_id, kind)


@router.post("/agencies/{agency_id}/requests/new/{kind}")
async def file_request(
    request: Request,
    agency_id: uuid.UUID,
    kind: RequestKind,
    fields: Fields,
    _p: Annotated[Principal, authorize(Action.legal_request_submit, agency_resource)],
    user: UserDep,
    db: SessionDep,
    effects: EffectsDep,
    document: OptionalFile = None,
    nondisclosure_order: OptionalFile = None,
) -> Response:
    chosen = kinds.KINDS[kind]
    try:
        filing = await requests.open_filing(db, agency_id=agency_id, officer=user, effects=effects)
        body = chosen.read_form(fields)
        main, order = await kinds.read_files(
            chosen,
            document,
            nondisclosure_order,
            max_bytes=effects.settings.legal_document_max_bytes,
            missing="Attach the {what} as a PDF.",
        )
        filed = await kinds.file(db, filing, chosen, body=body, document=main, nondisclosure=order)
    except (ValidationError, DomainError) as exc:
        await discard(db, user)
        status, text = failure(exc, MESSAGES)
        return await _form_page(
            request,
            db,
            effects.settings,
            agency_id,
            kind,
            status_code=status,
            form=fields.model_dump(),
            error=text,
        )
    return see_other(f"/agencies/{agency_id}/requests/{filed.id}?done=filed")
