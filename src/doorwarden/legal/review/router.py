"""Legal review API (legal reviewers only): the queue, a request with its resolved scope
and checklist, its documents, and the decisions. Reviewers see metadata (which cameras,
which homes, what window), never footage: packages go to the agency alone."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from doorwarden.agencies.models import Agency
from doorwarden.deps import ClockDep, ContextDep, SessionDep, UserDep, authorize
from doorwarden.legal.http import effects_of, store_of
from doorwarden.legal.models import RequestKind, RequestStatus
from doorwarden.legal.requests.router import pdf_response, request_out
from doorwarden.legal.requests.schemas import RequestOut
from doorwarden.legal.requests.service import document_of
from doorwarden.legal.review import service as review
from doorwarden.legal.review.checks import ATTESTABLE, attestations_needed
from doorwarden.policy import Action, Principal

router = APIRouter(prefix="/api/v1/review", tags=["legal review"])
Attest = Annotated[
    list[str], Field(max_length=len(ATTESTABLE), description=f"Any of {', '.join(ATTESTABLE)}.")
]
Reason = Annotated[str | None, Field(max_length=5000)]


class QueueItem(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    agency_id: uuid.UUID
    agency_name: str = ""
    kind: RequestKind
    status: RequestStatus
    case_number: str
    created_at: datetime


class CheckOut(BaseModel):
    name: str
    ok: bool
    detail: str


class TargetOut(BaseModel):
    device_id: uuid.UUID
    household_id: uuid.UUID
    approved: bool | None


class ReviewOut(BaseModel):
    request: RequestOut
    agency_name: str
    emergency_description: str | None
    justification: str | None
    targets: list[TargetOut]
    checks: list[CheckOut]
    attestations_needed: list[str]
    documents: list[uuid.UUID]


class ApproveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    attest: Attest = []
    note: Reason = None


class NarrowIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keep_devices: Annotated[list[uuid.UUID], Field(max_length=1000)]
    window_start: AwareDatetime | None = None
    window_end: AwareDatetime | None = None
    attest: Attest = []
    reason: Reason = None


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason = None


@router.get("/requests", response_model=list[QueueItem])
async def review_queue(
    _p: Annotated[Principal, authorize(Action.legal_review)],
    db: SessionDep,
    include_decided: bool = False,
) -> list[QueueItem]:
    items = []
    for found in await review.queue(db, include_decided=include_decided):
        agency = await db.get(Agency, found.agency_id)
        item = QueueItem.model_validate(found)
        item.agency_name = agency.name if agency else ""
        items.append(item)
    return items


async def _review_out(
    request: Request, db: SessionDep, request_id: uuid.UUID, user: UserDep, ctx: ContextDep
) -> ReviewOut:
    found = await review.reviewable(db, request_id)
    seen = await review.preview(db, found, reviewer=user, effects=effects_of(request, ctx))
    agency = await db.get(Agency, found.agency_id)
    documents = [
        d
        for d in (found.document_id, found.nondisclosure_document_id, found.proof_document_id)
        if d is not None
    ]
    return ReviewOut(
        request=await request_out(db, found),
        agency_name=agency.name if agency else "",
        emergency_description=found.emergency_description,
        justification=found.justification,
        targets=[
            TargetOut(device_id=t.device_id, household_id=t.household_id, approved=t.approved)
            for t in seen.targets
        ],
        checks=[CheckOut(**c.to_json()) for c in seen.checks],
        attestations_needed=attestations_needed(found),
        documents=documents,
    )


@router.get("/requests/{request_id}", response_model=ReviewOut)
async def review_detail(
    request: Request,
    request_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.legal_review)],
    user: UserDep,
    db: SessionDep,
    ctx: ContextDep,
) -> ReviewOut:
    return await _review_out(request, db, request_id, user, ctx)


@router.get("/requests/{request_id}/documents/{document_id}")
async def review_document(
    request: Request,
    request_id: uuid.UUID,
    document_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.legal_review)],
    db: SessionDep,
) -> StreamingResponse:
    found = await review.reviewable(db, request_id)
    return pdf_response(store_of(request), await document_of(db, found, document_id))


@router.post("/requests/{request_id}/start", response_model=ReviewOut)
async def start_review(
    request: Request,
    request_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.legal_review)],
    user: UserDep,
    db: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> ReviewOut:
    found = await review.reviewable(db, request_id)
    await review.start_review(db, request=found, reviewer=user, ctx=ctx, now=clock.now())
    return await _review_out(request, db, request_id, user, ctx)


@router.post("/requests/{request_id}/approve", response_model=RequestOut)
async def approve(
    request: Request,
    request_id: uuid.UUID,
    body: ApproveIn,
    _p: Annotated[Principal, authorize(Action.legal_review)],
    user: UserDep,
    db: SessionDep,
    ctx: ContextDep,
) -> RequestOut:
    found = await review.reviewable(db, request_id)
    await review.approve(
        db,
        request=found,
        reviewer=user,
        attest=set(body.attest),
        note=body.note,
        effects=effects_of(request, ctx),
    )
    return await request_out(db, found)


@router.post("/requests/{request_id}/narrow", response_model=RequestOut)
async def narrow(
    request: Request,
    request_id: uuid.UUID,
    body: NarrowIn,
    _p: Annotated[Principal, authorize(Action.legal_review)],
    user: UserDep,
    db: SessionDep,
    ctx: ContextDep,
) -> RequestOut:
    found = await review.reviewable(db, request_id)
    await review.narrow(
        db,
        request=found,
        reviewer=user,
        keep_devices=set(body.keep_devices),
        window_start=body.window_start,
        window_end=body.window_end,
        attest=set(body.attest),
        reason=body.reason,
        effects=effects_of(request, ctx),
    )
    return await request_out(db, found)


@router.post("/requests/{request_id}/reject", response_model=RequestOut)
async def reject(
    request: Request,
    request_id: uuid.UUID,
    body: RejectIn,
    _p: Annotated[Principal, authorize(Action.legal_review)],
    user: UserDep,
    db: SessionDep,
    ctx: ContextDep,
) -> RequestOut:
    found = await review.reviewable(db, request_id)
    await review.reject(
        db, request=found, reviewer=user, reason=body.reason, effects=effects_of(request, ctx)
    )
    return await request_out(db, found)
