"""A request as its agency sees it: what it named, how it was decided and why, the
packages with their download links, and what its state allows next (withdraw, prove an
emergency, extend a preservation, close a community request, package its shared clips:
the routes of all but the proof are made from actions.py's table).

Never which households or cameras a scope resolved to, nor how many: whether an address
has a camera here is not the agency's to learn (RequestOut's rule, kept on the page).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from doorwarden.accounts.models import User
from doorwarden.agencies import service as agencies
from doorwarden.agencies.http import read_upload
from doorwarden.deps import ClockDep, EffectsDep, SessionDep, UserDep, agency_resource, authorize
from doorwarden.errors import DomainError
from doorwarden.legal import lifecycle
from doorwarden.legal.community import service as community
from doorwarden.legal.models import LegalRequest, RequestKind, RequestStatus
from doorwarden.legal.requests import actions, records
from doorwarden.legal.requests.service import agency_request
from doorwarden.legal.scope import scope_items
from doorwarden.legal.states import Event, allowed
from doorwarden.policy import Action, AgencyResource, Principal, can
from doorwarden.web.forms import discard, see_other
from doorwarden.web.render import render

router = APIRouter(include_in_schema=False)
Updater = Annotated[Principal, authorize(Action.legal_request_update, agency_resource)]

DONE = {
    "filed": "Request filed. A legal reviewer will check it; you will see the decision here.",
    "withdrawn": "Request withdrawn.",
    "proven": "Proof filed: the emergency disclosure is ratified.",
    "extended": "Preservation extended.",
    "closed": "Community request closed: residents can no longer share with it.",
    "packaged": "Package built from the clips shared so far.",
}


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


def _actions(found: LegalRequest, can_update: bool, now: datetime) -> dict[str, bool]:
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
    now: datetime,
    *,
    status_code: int = 200,
    done: str | None = None,
    **extra: Any,
) -> Response:
    reader = records.reading(principal, agency_id)  # out of standing: own filings' status
    found = await records.readable_request(db, reader, agency_id, request_id)
    agency = AgencyResource(agency_id)
    can_update = can(principal, Action.legal_request_update, agency)
    can_download = can(principal, Action.legal_package_download, agency)
    offered = _actions(found, can_update, now)
    context = {
        "agency": await agencies.get_agency(db, agency_id),
        "req": found,
        "scope": await scope_items(db, found.id),
        "packages": await records.packages_of(db, found.id) if reader.in_standing else [],
        "can_download": can_download,
        "revoked": records.is_revoked,
        "documents": await records.documents(db, found) if can_download else [],
        "actions": offered,
        "may_act": can_update,
        "proof_warrants": await _proof_warrants(db, found) if offered.get("prove") else [],
        "shared": (
            await community.shares_for_agency(db, found)
            if found.kind is RequestKind.community and can_download
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
    clock: ClockDep,
    done: str | None = None,
) -> Response:
    return await request_page(request, db, principal, agency_id, request_id, clock.now(), done=done)


async def _refused(
    request: Request,
    db: AsyncSession,
    principal: Principal,
    user: User,
    agency_id: uuid.UUID,
    request_id: uuid.UUID,
    now: datetime,
    exc: DomainError,
) -> Response:
    await discard(db, user)
    return await request_page(
        request,
        db,
        principal,
        agency_id,
        request_id,
        now,
        status_code=exc.status_code,
        error=exc.message,
    )


def _done(agency_id: uuid.UUID, request_id: uuid.UUID, what: str) -> Response:
    return see_other(f"/agencies/{agency_id}/requests/{request_id}?done={what}")


def _action_route(name: str) -> Callable[..., Awaitable[Response]]:
    async def endpoint(
        request: Request,
        agency_id: uuid.UUID,
        request_id: uuid.UUID,
        principal: Updater,
        user: UserDep,
        db: SessionDep,
        effects: EffectsDep,
    ) -> Response:
        try:
            await actions.act(
                db,
                agency_id=agency_id,
                request_id=request_id,
                action=name,
                officer=user,
                effects=effects,
            )
        except DomainError as exc:
            return await _refused(
                request, db, principal, user, agency_id, request_id, effects.now, exc
            )
        return _done(agency_id, request_id, actions.ACTIONS[name].done)

    return endpoint


for _name in actions.ACTIONS:
    router.add_api_route(
        f"/agencies/{{agency_id}}/requests/{{request_id}}/{_name}",
        _action_route(_name),
        methods=["POST"],
        name=_name,
    )


@router.post("/agencies/{agency_id}/requests/{request_id}/proof")
async def file_proof(
    request: Request,
    agency_id: uuid.UUID,
    request_id: uuid.UUID,
    principal: Updater,
    user: UserDep,
    db: SessionDep,
    effects: EffectsDep,
    warrant_request_id: Annotated[str, Form(max_length=60)] = "",
    incident_report: Annotated[UploadFile | None, File()] = None,
) -> Response:
    found = await agency_request(db, agency_id, request_id)
    try:
        report = await read_upload(
            incident_report, effects.settings.legal_document_max_bytes, "incident report"
        )
        await actions.prove(
            db,
            found,
            officer=user,
            warrant_request_id=_warrant_id(warrant_request_id),
            report=report,
            effects=effects,
        )
    except DomainError as exc:
        return await _refused(request, db, principal, user, agency_id, request_id, effects.now, exc)
    return _done(agency_id, request_id, "proven")


def _warrant_id(chosen: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(chosen) if chosen.strip() else None
    except ValueError:
        raise lifecycle.ProofInvalid("Choose a warrant request from the list.") from None
