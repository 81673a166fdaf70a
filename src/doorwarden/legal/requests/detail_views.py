"""A request as its agency sees it: what it named, how it was decided and why, the
packages with their download links, and what its state allows next (withdraw, prove an
emergency, extend a preservation, close a community request, package its shared clips).

Never which households or cameras a scope resolved to, nor how many: whether an address
has a camera here is not the agency's to learn (RequestOut's rule, kept on the page).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from doorwarden.agencies import service as agencies
from doorwarden.agencies.models import LegalDocument
from doorwarden.deps import (
    ClockDep,
    ContextDep,
    SessionDep,
    SettingsDep,
    UserDep,
    agency_resource,
    authorize,
)
from doorwarden.errors import DomainError
from doorwarden.legal import lifecycle
from doorwarden.legal.agency_page import may
from doorwarden.legal.community import service as community
from doorwarden.legal.http import agency_request, effects_of, read_upload, store_of
from doorwarden.legal.models import LegalRequest, RequestKind, RequestStatus
from doorwarden.legal.page_forms import refused
from doorwarden.legal.requests.router import packages_of
from doorwarden.legal.scope import scope_items
from doorwarden.legal.states import Event, allowed
from doorwarden.policy import Action, Principal
from doorwarden.web.forms import see_other
from doorwarden.web.render import render

router = APIRouter(include_in_schema=False)

DONE = {
    "filed": "Request filed. A legal reviewer will check it; you will see the decision here.",
    "withdrawn": "Request withdrawn.",
    "proven": "Proof filed: the emergency disclosure is ratified.",
    "extended": "Preservation extended.",
    "closed": "Community request closed: residents can no longer share with it.",
    "packaged": "Package built from the clips shared so far.",
}
DOCUMENT_NAMES = {
    "document_id": "The court document",
    "nondisclosure_document_id": "Non-disclosure order",
    "proof_document_id": "Incident report (proof)",
}


async def _documents(db: AsyncSession, found: LegalRequest) -> list[tuple[str, LegalDocument]]:
    out = []
    for attribute, name in DOCUMENT_NAMES.items():
        document_id = getattr(found, attribute)
        if document_id is not None:
            document = await db.get(LegalDocument, document_id)
            if document is not None:
                out.append((name, document))
    return out


async def _proof_warrants(db: AsyncSession, found: LegalRequest) -> Sequence[LegalRequest]:
    """Warrant requests that may prove this emergency (lifecycle.file_proof's rule: filed
    after it, neither withdrawn nor rejected, not the proof of another emergency)."""
    used = select(LegalRequest.proof_request_id).where(
        LegalRequest.proof_request_id.is_not(None), LegalRequest.id != found.id
    )
    query = (
        select(LegalRequest)
        .where(
            LegalRequest.agency_id == found.agency_id,
            LegalRequest.kind == RequestKind.warrant,
            LegalRequest.created_at > found.created_at,
            LegalRequest.status.not_in([RequestStatus.withdrawn, RequestStatus.rejected]),
            LegalRequest.id.not_in(used),
        )
        .order_by(LegalRequest.created_at.desc())
    )
    return (await db.scalars(query)).all()


def _actions(found: LegalRequest, can_update: bool, now: Any) -> dict[str, bool]:
    if not can_update:
        return {}
    kind, status = found.kind, found.status
    in_time = found.proof_due_at is None or now <= found.proof_due_at
    return {
        "withdraw": allowed(kind, status, Event.withdraw),
        "prove": allowed(kind, status, Event.ratify) and in_time,
        "extend": allowed(kind, status, Event.extend)
        and found.extended_at is None
        and (found.hold_until is None or now < found.hold_until),
        "close": allowed(kind, status, Event.close),
        "package": kind is RequestKind.community,
    }


async def request_page(
    request: Request,
    db: AsyncSession,
    principal: Principal,
    agency_id: uuid.UUID,
    request_id: uuid.UUID,
    *,
    status_code: int = 200,
    done: str | None = None,
    **extra: Any,
) -> Response:
    found = await agency_request(db, agency_id, request_id)
    now = request.app.state.clock.now()
    can_update = may(principal, Action.legal_request_update, agency_id)
    actions = _actions(found, can_update, now)
    context = {
        "agency": await agencies.get_agency(db, agency_id),
        "req": found,
        "scope": await scope_items(db, found.id),
        "packages": await packages_of(db, found.id),
        "can_download": may(principal, Action.legal_package_download, agency_id),
        "documents": await _documents(db, found),
        "actions": actions,
        "may_act": can_update,
        "proof_warrants": await _proof_warrants(db, found) if actions.get("prove") else [],
        "shared": (
            await community.shares_for_agency(db, found)
            if found.kind is RequestKind.community
            else []
        ),
        "now": now,
        "done": DONE.get(done or ""),
        **extra,
    }
    return render(request, "legal/request.html", context, status_code=status_code)


@router.get("/agencies/{agency_id}/requests/{request_id}")
async def read_request(
    request: Request,
    agency_id: uuid.UUID,
    request_id: uuid.UUID,
    principal: Annotated[Principal, authorize(Action.legal_request_read, agency_resource)],
    db: SessionDep,
    done: str | None = None,
) -> Response:
    return await request_page(request, db, principal, agency_id, request_id, done=done)


async def _refused(
    request: Request,
    db: AsyncSession,
    principal: Principal,
    user: Any,
    agency_id: uuid.UUID,
    request_id: uuid.UUID,
    exc: DomainError,
) -> Response:
    await refused(db, user)
    return await request_page(
        request,
        db,
        principal,
        agency_id,
        request_id,
        status_code=exc.status_code,
        error=exc.message,
    )


def _done(agency_id: uuid.UUID, request_id: uuid.UUID, what: str) -> Response:
    return see_other(f"/agencies/{agency_id}/requests/{request_id}?done={what}")


@router.post("/agencies/{agency_id}/requests/{request_id}/withdraw")
async def withdraw(
    request: Request,
    agency_id: uuid.UUID,
    request_id: uuid.UUID,
    principal: Annotated[Principal, authorize(Action.legal_request_update, agency_resource)],
    user: UserDep,
    db: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> Response:
    found = await agency_request(db, agency_id, request_id)
    try:
        await lifecycle.withdraw(db, request=found, officer=user, ctx=ctx, now=clock.now())
    except DomainError as exc:
        return await _refused(request, db, principal, user, agency_id, request_id, exc)
    return _done(agency_id, request_id, "withdrawn")


@router.post("/agencies/{agency_id}/requests/{request_id}/proof")
async def file_proof(
    request: Request,
    agency_id: uuid.UUID,
    request_id: uuid.UUID,
    principal: Annotated[Principal, authorize(Action.legal_request_update, agency_resource)],
    user: UserDep,
    db: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    ctx: ContextDep,
    warrant_request_id: Annotated[str, Form(max_length=60)] = "",
    incident_report: Annotated[UploadFile | None, File()] = None,
) -> Response:
    found = await agency_request(db, agency_id, request_id)
    try:
        report = await read_upload(
            incident_report, settings.legal_document_max_bytes, "incident report"
        )
        warrant = uuid.UUID(warrant_request_id) if warrant_request_id.strip() else None
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
    except ValueError:
        error = lifecycle.ProofInvalid("Choose a warrant request from the list.")
        return await _refused(request, db, principal, user, agency_id, request_id, error)
    except DomainError as exc:
        return await _refused(request, db, principal, user, agency_id, request_id, exc)
    return _done(agency_id, request_id, "proven")


@router.post("/agencies/{agency_id}/requests/{request_id}/extend")
async def extend(
    request: Request,
    agency_id: uuid.UUID,
    request_id: uuid.UUID,
    principal: Annotated[Principal, authorize(Action.legal_request_update, agency_resource)],
    user: UserDep,
    db: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> Response:
    found = await agency_request(db, agency_id, request_id)
    try:
        await lifecycle.extend(
            db, request=found, officer=user, settings=settings, ctx=ctx, now=clock.now()
        )
    except DomainError as exc:
        return await _refused(request, db, principal, user, agency_id, request_id, exc)
    return _done(agency_id, request_id, "extended")


@router.post("/agencies/{agency_id}/requests/{request_id}/close")
async def close(
    request: Request,
    agency_id: uuid.UUID,
    request_id: uuid.UUID,
    principal: Annotated[Principal, authorize(Action.legal_request_update, agency_resource)],
    user: UserDep,
    db: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> Response:
    found = await agency_request(db, agency_id, request_id)
    try:
        await lifecycle.close_community(db, request=found, officer=user, ctx=ctx, now=clock.now())
    except DomainError as exc:
        return await _refused(request, db, principal, user, agency_id, request_id, exc)
    return _done(agency_id, request_id, "closed")


@router.post("/agencies/{agency_id}/requests/{request_id}/packages")
async def package_shared(
    request: Request,
    agency_id: uuid.UUID,
    request_id: uuid.UUID,
    principal: Annotated[Principal, authorize(Action.legal_request_update, agency_resource)],
    user: UserDep,
    db: SessionDep,
    ctx: ContextDep,
) -> Response:
    found = await agency_request(db, agency_id, request_id)
    try:
        await community.build_shares_package(
            db, request=found, officer=user, effects=effects_of(request, ctx)
        )
    except DomainError as exc:
        return await _refused(request, db, principal, user, agency_id, request_id, exc)
    return _done(agency_id, request_id, "packaged")
