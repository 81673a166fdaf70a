"""The agency's side of legal process, under /api/v1/agencies/{agency_id}/...: file each
kind of request, follow it, withdraw it, prove an emergency, extend a preservation,
close a community request, and download what a decision released.

Every route is decided by the policy on the agency in the path (an officer of another
agency is refused; an officer of an agency not in good standing keeps only the status of
their own filings: records.reading), and every request id is looked up under that agency
(another agency's request is not found).
The filing routes are made from kinds.py's table, the routes of an officer's actions
from actions.py's.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.accounts.models import User
from doorwarden.accounts.service import actor_of
from doorwarden.agencies.http import parse_json_part, pdf_response, read_upload, stored
from doorwarden.audit.service import record
from doorwarden.audit.tags import Tag
from doorwarden.deps import (
    ClockDep,
    ContextDep,
    EffectsDep,
    SessionDep,
    StoreDep,
    UserDep,
    agency_resource,
    authorize,
    refusal,
)
from doorwarden.errors import DomainError, NotFound
from doorwarden.legal.community import service as community
from doorwarden.legal.disclosure.models import Package
from doorwarden.legal.disclosure.outcomes import Effects
from doorwarden.legal.models import RequestKind
from doorwarden.legal.requests import actions, kinds
from doorwarden.legal.requests import service as requests
from doorwarden.legal.requests.records import (
    agency_requests,
    check_not_revoked,
    package_out,
    readable_request,
    reading,
    request_out,
)
from doorwarden.legal.requests.schemas import PackageOut, ProofIn, RequestOut, SharedClipOut
from doorwarden.legal.requests.service import agency_request, document_of
from doorwarden.policy import Action, AgencyResource, Principal, decide

router = APIRouter(prefix="/api/v1/agencies/{agency_id}", tags=["legal requests"])

Details = Annotated[str, Form(description="The request as JSON (see the schemas).")]
OptionalFile = Annotated[UploadFile | None, File()]
Submitter = Annotated[Principal, authorize(Action.legal_request_submit, agency_resource)]
Updater = Annotated[Principal, authorize(Action.legal_request_update, agency_resource)]
Reader = Annotated[Principal, authorize(Action.legal_request_read, agency_resource)]


def _require(principal: Principal, action: Action, agency_id: uuid.UUID) -> None:
    """What a decision released (documents, shared clips) is read only by those the
    policy lets take a package: an officer out of standing is refused with its code."""
    decision = decide(principal, action, AgencyResource(agency_id))
    if not decision.allowed:
        raise refusal(principal, decision)


class PackageExpired(DomainError):
    status_code = 410
    code = "package_expired"


@router.get("/requests", response_model=list[RequestOut])
async def list_requests(agency_id: uuid.UUID, p: Reader, db: SessionDep) -> list[RequestOut]:
    reader = reading(p, agency_id)
    return [await request_out(db, r, reader) for r in await agency_requests(db, agency_id, reader)]


@router.get("/requests/{request_id}", response_model=RequestOut)
async def read_request(
    agency_id: uuid.UUID, request_id: uuid.UUID, p: Reader, db: SessionDep
) -> RequestOut:
    reader = reading(p, agency_id)
    return await request_out(db, await readable_request(db, reader, agency_id, request_id), reader)


# -- filing: one route per kind --------------------------------------------------------------


def _param(name: str, annotation: Any, default: Any = inspect.Parameter.empty) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default
    )


def _filing_parameters(kind: kinds.Kind) -> list[inspect.Parameter]:
    """What the route for `kind` takes: a multipart form (the `details` JSON part, the
    court document, a non-disclosure order) or a JSON body, as kinds.py says. Built as a
    signature because the body's type and the document's description differ by kind;
    the order of the parts is the order the OpenAPI document lists them in."""
    params = [_param("agency_id", uuid.UUID)]
    if kind.multipart:
        params.append(_param("details", Details))
        if kind.document is not None:
            document = Annotated[UploadFile, File(description=kind.document_help)]
            params.append(_param("document", document))
    else:
        params.append(_param("body", kind.schema))
    deps = (("_p", Submitter), ("user", UserDep), ("db", SessionDep), ("effects", EffectsDep))
    params += [_param(name, annotation) for name, annotation in deps]
    if kind.nondisclosure:
        params.append(_param("nondisclosure_order", OptionalFile, None))
    return params


def _filing_route(kind: kinds.Kind) -> Callable[..., Awaitable[RequestOut]]:
    # No docstring: it would become the operation's description, which these never had.
    async def endpoint(
        *,
        agency_id: uuid.UUID,
        user: User,
        db: AsyncSession,
        effects: Effects,
        details: str | None = None,
        body: BaseModel | None = None,
        document: UploadFile | None = None,
        nondisclosure_order: UploadFile | None = None,
        _p: Principal | None = None,
    ) -> RequestOut:
        if body is None:
            body = parse_json_part(details or "", kind.schema)
        main, order = await kinds.read_files(
            kind,
            document,
            nondisclosure_order,
            max_bytes=effects.settings.legal_document_max_bytes,
            missing="Send the {what} as a PDF in the document part.",
        )
        filing = await requests.open_filing(db, agency_id=agency_id, officer=user, effects=effects)
        filed = await kinds.file(db, filing, kind, body=body, document=main, nondisclosure=order)
        return await request_out(db, filed)

    endpoint.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        _filing_parameters(kind), return_annotation=RequestOut
    )
    return endpoint


for _kind in kinds.KINDS.values():
    router.add_api_route(
        f"/requests/{_kind.path}",
        _filing_route(_kind),
        methods=["POST"],
        status_code=status.HTTP_201_CREATED,
        response_model=RequestOut,
        name=_kind.operation,
    )


# -- what an officer does to a filed request ---------------------------------------------------


def _action_route(name: str) -> Callable[..., Awaitable[RequestOut]]:
    async def endpoint(
        agency_id: uuid.UUID,
        request_id: uuid.UUID,
        _p: Updater,
        user: UserDep,
        db: SessionDep,
        effects: EffectsDep,
    ) -> RequestOut:
        found = await actions.act(
            db,
            agency_id=agency_id,
            request_id=request_id,
            action=name,
            officer=user,
            effects=effects,
        )
        return await request_out(db, found)

    return endpoint


for _name, _action in actions.ACTIONS.items():
    if _action.operation is not None:
        router.add_api_route(
            f"/requests/{{request_id}}/{_name}",
            _action_route(_name),
            methods=["POST"],
            response_model=RequestOut,
            name=_action.operation,
        )


@router.post("/requests/{request_id}/proof", response_model=RequestOut)
async def file_proof(
    agency_id: uuid.UUID,
    request_id: uuid.UUID,
    _p: Updater,
    user: UserDep,
    db: SessionDep,
    effects: EffectsDep,
    details: Annotated[str | None, Form()] = None,
    incident_report: OptionalFile = None,
) -> RequestOut:
    """Prove an emergency: `details` = {"warrant_request_id"} of a warrant filed since,
    or the incident report as a PDF."""
    found = await agency_request(db, agency_id, request_id)
    warrant = parse_json_part(details, ProofIn).warrant_request_id if details else None
    report = await read_upload(
        incident_report, effects.settings.legal_document_max_bytes, "incident report"
    )
    await actions.prove(
        db, found, officer=user, warrant_request_id=warrant, report=report, effects=effects
    )
    return await request_out(db, found)


@router.get("/requests/{request_id}/shares", response_model=list[SharedClipOut])
async def shared_clips(
    agency_id: uuid.UUID, request_id: uuid.UUID, p: Reader, db: SessionDep
) -> list[SharedClipOut]:
    """The clips residents chose to share with a community request: all the agency sees
    of it (never who was asked or who did not answer)."""
    _require(p, Action.legal_package_download, agency_id)
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
    agency_id: uuid.UUID,
    request_id: uuid.UUID,
    _p: Updater,
    user: UserDep,
    db: SessionDep,
    effects: EffectsDep,
) -> PackageOut:
    """A community request's clips shared so far, as a package."""
    found = await agency_request(db, agency_id, request_id)
    if found.kind is not RequestKind.community:
        raise NotFound("Only community requests have shared clips to package.")
    package = await community.build_shares_package(db, request=found, officer=user, effects=effects)
    return package_out(agency_id, package)


@router.get("/packages/{package_id}")
async def download_package(
    agency_id: uuid.UUID,
    package_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.legal_package_download, agency_resource)],
    user: UserDep,
    db: SessionDep,
    store: StoreDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> StreamingResponse:
    package = await db.get(Package, package_id)
    if package is None or package.agency_id != agency_id:
        raise NotFound("No such package.")
    await check_not_revoked(db, package)
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
        stored(store, package.object_key),
        media_type="application/zip",
        headers={
            "content-disposition": f'attachment; filename="package-{package.id}.zip"',
            "content-length": str(package.size),
            "x-content-sha256": package.sha256,
            "cache-control": "no-store",
        },
    )


@router.get("/requests/{request_id}/documents/{document_id}")
async def read_document(
    agency_id: uuid.UUID,
    request_id: uuid.UUID,
    document_id: uuid.UUID,
    p: Reader,
    db: SessionDep,
    store: StoreDep,
) -> StreamingResponse:
    _require(p, Action.legal_package_download, agency_id)
    found = await agency_request(db, agency_id, request_id)
    return pdf_response(store, await document_of(db, found, document_id))
