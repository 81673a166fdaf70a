"""Filing a request from the agency's pages, one form per kind. The typed fields are
built into the API's schemas and go through the same services, so a page refuses exactly
what the API refuses, with the same message, and shows the form again as it was typed
(files must be chosen again: browsers never prefill a file input)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from doorwarden.agencies import service as agencies
from doorwarden.agencies.documents import Upload
from doorwarden.agencies.governance.service import instance_policy
from doorwarden.config import Settings
from doorwarden.deps import ContextDep, SessionDep, UserDep, agency_resource, authorize
from doorwarden.errors import DomainError, InvalidInput
from doorwarden.legal.community import service as community
from doorwarden.legal.http import filing_of, read_upload
from doorwarden.legal.models import LegalRequest, RequestKind
from doorwarden.legal.page_forms import (
    area_text_of,
    failure,
    map_settings,
    refused,
    settings_of,
    with_map_csp,
)
from doorwarden.legal.requests import forms
from doorwarden.legal.requests import service as requests
from doorwarden.policy import Action, Principal
from doorwarden.web.forms import see_other
from doorwarden.web.render import render

router = APIRouter(include_in_schema=False)

OptionalFile = Annotated[UploadFile | None, File()]
Fields = Annotated[forms.RequestFields, Form()]


async def _form_page(
    request: Request,
    db: AsyncSession,
    agency_id: uuid.UUID,
    kind: RequestKind,
    *,
    status_code: int = 200,
    **extra: Any,
) -> Response:
    settings = settings_of(request)
    agency = await agencies.get_agency(db, agency_id)
    context = {
        "agency": agency,
        "kind": kind,
        "page": forms.KINDS[kind],
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
) -> Response:
    return await _form_page(request, db, agency_id, kind)


async def _court_upload(file: UploadFile | None, settings: Settings, what: str) -> Upload:
    upload = await read_upload(file, settings.legal_document_max_bytes, what)
    if upload is None:
        raise InvalidInput(f"Attach the {what} as a PDF.")
    return upload


async def _submit(
    db: AsyncSession,
    kind: RequestKind,
    fields: forms.RequestFields,
    filing: requests.Filing,
    document: UploadFile | None,
    order_file: UploadFile | None,
) -> LegalRequest:
    settings = filing.settings
    limit = settings.legal_document_max_bytes
    if kind is RequestKind.warrant:
        warrant = forms.warrant(fields)
        main = await _court_upload(document, settings, "warrant")
        order = await read_upload(order_file, limit, "non-disclosure order")
        return await requests.submit_warrant(
            db, filing, body=warrant, document=main, nondisclosure=order
        )
    if kind is RequestKind.subpoena:
        subpoena = forms.subpoena(fields)
        main = await _court_upload(document, settings, "subpoena")
        order = await read_upload(order_file, limit, "non-disclosure order")
        return await requests.submit_subpoena(
            db, filing, body=subpoena, document=main, nondisclosure=order
        )
    if kind is RequestKind.preservation:
        preservation = forms.preservation(fields)
        order = await read_upload(order_file, limit, "non-disclosure order")
        return await requests.submit_preservation(
            db, filing, body=preservation, nondisclosure=order
        )
    if kind is RequestKind.emergency:
        if fields.attest_imminent_danger != "yes":
            raise requests.AttestationRequired(
                "Attestation: tick the box to attest an imminent danger of death or serious "
                "physical injury; without it there is no emergency request."
            )
        return await requests.submit_emergency(db, filing, body=forms.emergency(fields))
    return await community.submit_community(db, filing, body=forms.community(fields))


@router.post("/agencies/{agency_id}/requests/new/{kind}")
async def file_request(
    request: Request,
    agency_id: uuid.UUID,
    kind: RequestKind,
    fields: Fields,
    _p: Annotated[Principal, authorize(Action.legal_request_submit, agency_resource)],
    user: UserDep,
    db: SessionDep,
    ctx: ContextDep,
    document: OptionalFile = None,
    nondisclosure_order: OptionalFile = None,
) -> Response:
    try:
        filing = await filing_of(request, db, agency_id, user, ctx)
        filed = await _submit(db, kind, fields, filing, document, nondisclosure_order)
    except (ValidationError, DomainError) as exc:
        await refused(db, user)
        status, text = failure(exc)
        return await _form_page(
            request,
            db,
            agency_id,
            kind,
            status_code=status,
            form=fields.model_dump(),
            error=text,
        )
    return see_other(f"/agencies/{agency_id}/requests/{filed.id}?done=filed")
