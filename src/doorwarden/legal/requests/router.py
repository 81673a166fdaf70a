"""The agency's side of legal process, under /api/v1/agencies/{agency_id}/...: file each
kind of request, follow it, withdraw it, prove an emergency, extend a preservation,
close a community request, and download what a decision released.

Every route is decided by the policy on the agency in the path (an officer of another
agency is refused; an agency not in good standing can read but not act), and every
request id is looked up under that agency (another agency's request is not found).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.accounts.service import actor_of
from doorwarden.agencies.documents import Upload
from doorwarden.agencies.models import LegalDocument
from doorwarden.audit.service import record
from doorwarden.audit.tags import Tag
from doorwarden.deps import (
    ClockDep,
    ContextDep,
    SessionDep,
    SettingsDep,
    UserDep,
    agency_resource,
    authorize,
)
from doorwarden.errors import DomainError, InvalidInput, NotFound
from doorwarden.legal import lifecycle
from doorwarden.legal.community import service as community
from doorwarden.legal.disclosure.models import Package
from doorwarden.legal.http import (
    agency_request,
    effects_of,
    filing_of,
    parse_json_part,
    read_upload,
    store_of,
)
from doorwarden.legal.models import LegalRequest, RequestKind
from doorwarden.legal.requests import service as requests
from doorwarden.legal.requests.schemas import (
    CommunityIn,
    EmergencyIn,
    PackageOut,
    PreservationIn,
    ProofIn,
    RequestOut,
    ScopeItemOut,
    SubpoenaIn,
    WarrantIn,
)
from doorwarden.legal.requests.service import document_of
from doorwarden.legal.scope import scope_items
from doorwarden.policy import Action, Principal
from doorwarden.storage.base import ClipStore

router = APIRouter(prefix="/api/v1/agencies/{agency_id}", tags=["legal requests"])

Details = Annotated[str, Form(description="The request as JSON (see the schemas).")]
OptionalFile = Annotated[UploadFile | None, File()]


class PackageExpired(DomainError):
    status_code = 410
    code = "package_expired"


def package_out(agency_id: uuid.UUID, package: Package) -> PackageOut:
    out = PackageOut.model_validate(package)
    out.download_url = f"/api/v1/agencies/{agency_id}/packages/{package.id}"
    return out


async def packages_of(db: AsyncSession, request_id: uuid.UUID) -> Sequence[Package]:
    query = select(Package).where(Package.request_id == request_id).order_by(Package.created_at)
    return (await db.scalars(query)).all()


async def request_out(db: AsyncSession, request: LegalRequest) -> RequestOut:
    out = RequestOut.model_validate(request)
    out.scope = [ScopeItemOut.model_validate(i) for i in await scope_items(db, request.id)]
    out.packages = [package_out(request.agency_id, p) for p in await packages_of(db, request.id)]
    return out


@router.get("/requests", response_model=list[RequestOut])
async def list_requests(
    agency_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.legal_request_read, agency_resource)],
    db: SessionDep,
) -> list[RequestOut]:
    query = (
        select(LegalRequest)
        .where(LegalRequest.agency_id == agency_id)
        .order_by(LegalRequest.created_at.desc())
        .limit(500)
    )
    return [await request_out(db, r) for r in (await db.scalars(query)).all()]


@router.get("/requests/{request_id}", response_model=RequestOut)
async def read_request(
    agency_id: uuid.UUID,
    request_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.legal_request_read, agency_resource)],
    db: SessionDep,
) -> RequestOut:
    return await request_out(db, await agency_request(db, agency_id, request_id))


async def _court_order_uploads(
    document: UploadFile, nondisclosure_order: UploadFile | None, limit: int, what: str
) -> tuple[Upload, Upload | None]:
    main = await read_upload(document, limit, what)
    if main is None:
        raise InvalidInput(f"Send the {what} as a PDF in the document part.")
    return main, await read_upload(nondisclosure_order, limit, "non-disclosure order")


@router.post("/requests/warrants", status_code=status.HTTP_201_CREATED, response_model=RequestOut)
async def file_warrant(
    request: Request,
    agency_id: uuid.UUID,
    details: Details,
    document: Annotated[UploadFile, File(description="The signed warrant, a PDF.")],
    _p: Annotated[Principal, authorize(Action.legal_request_submit, agency_resource)],
    user: UserDep,
    db: SessionDep,
    settings: SettingsDep,
    ctx: ContextDep,
    nondisclosure_order: OptionalFile = None,
) -> RequestOut:
    body = parse_json_part(details, WarrantIn)
    warrant, order = await _court_order_uploads(
        document, nondisclosure_order, settings.legal_document_max_bytes, "warrant"
    )
    filing = await filing_of(request, db, agency_id, user, ctx)
    filed = await requests.submit_warrant(
        db, filing, body=body, document=warrant, nondisclosure=order
    )
    return await request_out(db, filed)


@router.post("/requests/subpoenas", status_code=status.HTTP_201_CREATED, response_model=RequestOut)
async def file_subpoena(
    request: Request,
    agency_id: uuid.UUID,
    details: Details,
    document: Annotated[UploadFile, File(description="The subpoena, a PDF.")],
    _p: Annotated[Principal, authorize(Action.legal_request_submit, agency_resource)],
    user: UserDep,
    db: SessionDep,
    settings: SettingsDep,
    ctx: ContextDep,
    nondisclosure_order: OptionalFile = None,
) -> RequestOut:
    body = parse_json_part(details, SubpoenaIn)
    subpoena, order = await _court_order_uploads(
        document, nondisclosure_order, settings.legal_document_max_bytes, "subpoena"
    )
    filing = await filing_of(request, db, agency_id, user, ctx)
    filed = await requests.submit_subpoena(
        db, filing, body=body, document=subpoena, nondisclosure=order
    )
    return await request_out(db, filed)


@router.post(
    "/requests/preservations", status_code=status.HTTP_201_CREATED, response_model=RequestOut
)
async def file_preservation(
    request: Request,
    agency_id: uuid.UUID,
    details: Details,
    _p: Annotated[Principal, authorize(Action.legal_request_submit, agency_resource)],
    user: UserDep,
    db: SessionDep,
    settings: SettingsDep,
    ctx: ContextDep,
    nondisclosure_order: OptionalFile = None,
) -> RequestOut:
    body = parse_json_part(details, PreservationIn)
    order = await read_upload(
        nondisclosure_order, settings.legal_document_max_bytes, "non-disclosure order"
    )
    filing = await filing_of(request, db, agency_id, user, ctx)
    filed = await requests.submit_preservation(db, filing, body=body, nondisclosure=order)
    return await request_out(db, filed)


@router.post(
    "/requests/emergencies", status_code=status.HTTP_201_CREATED, response_model=RequestOut
)
async def file_emergency(
    request: Request,
    agency_id: uuid.UUID,
    body: EmergencyIn,
    _p: Annotated[Principal, authorize(Action.legal_request_submit, agency_resource)],
    user: UserDep,
    db: SessionDep,
    ctx: ContextDep,
) -> RequestOut:
    filing = await filing_of(request, db, agency_id, user, ctx)
    return await request_out(db, await requests.submit_emergency(db, filing, body=body))


@router.post("/requests/community", status_code=status.HTTP_201_CREATED, response_model=RequestOut)
async def file_community_request(
    request: Request,
    agency_id: uuid.UUID,
    body: CommunityIn,
    _p: Annotated[Principal, authorize(Action.legal_request_submit, agency_resource)],
    user: UserDep,
    db: SessionDep,
    ctx: ContextDep,
) -> RequestOut:
    filing = await filing_of(request, db, agency_id, user, ctx)
    return await request_out(db, await community.submit_community(db, filing, body=body))


@router.post("/requests/{request_id}/withdraw", response_model=RequestOut)
async def withdraw_request(
    agency_id: uuid.UUID,
    request_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.legal_request_update, agency_resource)],
    user: UserDep,
    db: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> RequestOut:
    found = await agency_request(db, agency_id, request_id)
    await lifecycle.withdraw(db, request=found, officer=user, ctx=ctx, now=clock.now())
    return await request_out(db, found)


@router.post("/requests/{request_id}/proof", response_model=RequestOut)
async def file_proof(
    request: Request,
    agency_id: uuid.UUID,
    request_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.legal_request_update, agency_resource)],
    user: UserDep,
    db: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    ctx: ContextDep,
    details: Annotated[str | None, Form()] = None,
    incident_report: OptionalFile = None,
) -> RequestOut:
    """Prove an emergency: `details` = {"warrant_request_id"} of a warrant filed since,
    or the incident report as a PDF."""
    found = await agency_request(db, agency_id, request_id)
    warrant = parse_json_part(details, ProofIn).warrant_request_id if details else None
    report = await read_upload(
        incident_report, settings.legal_document_max_bytes, "incident report"
    )
    await lifecycle.file_proof(
        db,
        request=found,
        officer=user,
        warrant_request_id=warrant,
        report=report,
        store=store_of(request),
        settings=settings,
        ctx=ctx,
        now=clock.now(),
    )
    return await request_out(db, found)


@router.post("/requests/{request_id}/extend", response_model=RequestOut)
async def extend_preservation(
    agency_id: uuid.UUID,
    request_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.legal_request_update, agency_resource)],
    user: UserDep,
    db: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> RequestOut:
    found = await agency_request(db, agency_id, request_id)
    await lifecycle.extend(
        db, request=found, officer=user, settings=settings, ctx=ctx, now=clock.now()
    )
    return await request_out(db, found)


@router.post("/requests/{request_id}/close", response_model=RequestOut)
async def close_community_request(
    agency_id: uuid.UUID,
    request_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.legal_request_update, agency_resource)],
    user: UserDep,
    db: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> RequestOut:
    found = await agency_request(db, agency_id, request_id)
    await lifecycle.close_community(db, request=found, officer=user, ctx=ctx, now=clock.now())
    return await request_out(db, found)


class SharedClipOut(BaseModel):
    """A clip a resident shared: which camera (an id, no name or address), when."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    device_id: uuid.UUID
    start_at: datetime
    end_at: datetime
    duration_ms: int
    labels: list[str]


@router.get("/requests/{request_id}/shares", response_model=list[SharedClipOut])
async def shared_clips(
    agency_id: uuid.UUID,
    request_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.legal_request_read, agency_resource)],
    db: SessionDep,
) -> list[SharedClipOut]:
    """The clips residents chose to share with a community request: all the agency sees
    of it (never who was asked or who did not answer)."""
    found = await agency_request(db, agency_id, request_id)
    if found.kind is not RequestKind.community:
        raise NotFound("Only community requests have shared clips.")
    return [SharedClipOut.model_validate(c) for c in await community.shares_for_agency(db, found)]


@router.post(
    "/requests/{request_id}/packages",
    status_code=status.HTTP_201_CREATED,
    response_model=PackageOut,
)
async def package_shared_clips(
    request: Request,
    agency_id: uuid.UUID,
    request_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.legal_request_update, agency_resource)],
    user: UserDep,
    db: SessionDep,
    ctx: ContextDep,
) -> PackageOut:
    """A community request's clips shared so far, as a package."""
    found = await agency_request(db, agency_id, request_id)
    if found.kind is not RequestKind.community:
        raise NotFound("Only community requests have shared clips to package.")
    package = await community.build_shares_package(
        db, request=found, officer=user, effects=effects_of(request, ctx)
    )
    return package_out(agency_id, package)


@router.get("/packages/{package_id}")
async def download_package(
    request: Request,
    agency_id: uuid.UUID,
    package_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.legal_package_download, agency_resource)],
    user: UserDep,
    db: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> StreamingResponse:
    package = await db.get(Package, package_id)
    if package is None or package.agency_id != agency_id:
        raise NotFound("No such package.")
    if clock.now() >= package.expires_at:
        raise PackageExpired(
            "This package's download link has expired; it stays on record. Ask the "
            "instance's operator if it must be sent again.",
            details={"expired_at": package.expires_at.isoformat()},
        )
    package.downloads += 1
    record(
        db,
        tag=Tag.legal_package_download,
        actor=actor_of(user),
        ctx=ctx,
        agency_id=agency_id,
        target_type="legal_package",
        target_id=package.id,
        extra={"request": str(package.request_id), "sha256": package.sha256},
    )
    await db.commit()  # the download is on record before a byte leaves
    return StreamingResponse(
        _stream(store_of(request), package.object_key),
        media_type="application/zip",
        headers={
            "content-disposition": f'attachment; filename="package-{package.id}.zip"',
            "content-length": str(package.size),
            "x-content-sha256": package.sha256,
            "cache-control": "no-store",
        },
    )


async def _stream(store: ClipStore, key: str) -> AsyncIterator[bytes]:
    async for block in store.stream(key):
        yield block


@router.get("/requests/{request_id}/documents/{document_id}")
async def read_document(
    request: Request,
    agency_id: uuid.UUID,
    request_id: uuid.UUID,
    document_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.legal_request_read, agency_resource)],
    db: SessionDep,
) -> StreamingResponse:
    found = await agency_request(db, agency_id, request_id)
    document: LegalDocument = await document_of(db, found, document_id)
    return pdf_response(store_of(request), document)


def pdf_response(store: ClipStore, document: LegalDocument) -> StreamingResponse:
    return StreamingResponse(
        _stream(store, document.object_key),
        media_type="application/pdf",
        headers={
            "content-disposition": f'attachment; filename="{document.filename}"',
            "content-length": str(document.size),
            "cache-control": "no-store",
        },
    )
