"""Legal review API (legal reviewers only): the queue, a request with its resolved scope
and checklist, its documents, and the decisions. Reviewers see metadata (which cameras,
which homes, what window), never footage: packages go to the agency alone."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.accounts.models import User
from doorwarden.agencies.http import pdf_response
from doorwarden.agencies.service import agency_names
from doorwarden.deps import (
    ClockDep,
    ContextDep,
    EffectsDep,
    SessionDep,
    StoreDep,
    UserDep,
    authorize,
)
from doorwarden.legal.disclosure.outcomes import Effects
from doorwarden.legal.requests.records import document_ids, request_out
from doorwarden.legal.requests.schemas import RequestOut
from doorwarden.legal.requests.service import document_of
from doorwarden.legal.review import service as review
from doorwarden.legal.review.checks import attestations_needed
from doorwarden.legal.review.schemas import (
    ApproveIn,
    CheckOut,
    NarrowIn,
    QueueItem,
    RejectIn,
    ReviewOut,
    TargetOut,
)
from doorwarden.policy import Action, Principal

router = APIRouter(prefix="/api/v1/review", tags=["legal review"])
Reviewer = Annotated[Principal, authorize(Action.legal_review)]


@router.get("/requests", response_model=list[QueueItem])
async def review_queue(
    _p: Reviewer,
    db: SessionDep,
    include_decided: bool = False,
) -> list[QueueItem]:
    found = await review.queue(db, include_decided=include_decided)
    names = await agency_names(db, (r.agency_id for r in found))
    return [
        QueueItem.model_validate(r).model_copy(update={"agency_name": names.get(r.agency_id, "")})
        for r in found
    ]


async def _review_out(
    db: AsyncSession, request_id: uuid.UUID, user: User, effects: Effects
) -> ReviewOut:
    seen = await review.preview(db, request_id, reviewer=user, effects=effects)
    found = seen.request
    return ReviewOut(
        request=await request_out(db, found),
        agency_name=seen.agency.name,
        emergency_description=found.emergency_description,
        justification=found.justification,
        targets=[
            TargetOut(device_id=t.device_id, household_id=t.household_id, approved=t.approved)
            for t in seen.targets
        ],
        checks=[CheckOut(**c.to_json()) for c in seen.checks],
        attestations_needed=attestations_needed(found),
        documents=[document_id for _, document_id in document_ids(found)],
    )


@router.get("/requests/{request_id}", response_model=ReviewOut)
async def review_detail(
    request_id: uuid.UUID,
    _p: Reviewer,
    user: UserDep,
    db: SessionDep,
    effects: EffectsDep,
) -> ReviewOut:
    return await _review_out(db, request_id, user, effects)


@router.get("/requests/{request_id}/documents/{document_id}")
async def review_document(
    request_id: uuid.UUID,
    document_id: uuid.UUID,
    _p: Reviewer,
    db: SessionDep,
    store: StoreDep,
) -> StreamingResponse:
    found = await review.reviewable(db, request_id)
    return pdf_response(store, await document_of(db, found, document_id))


@router.post("/requests/{request_id}/start", response_model=ReviewOut)
async def start_review(
    request_id: uuid.UUID,
    _p: Reviewer,
    user: UserDep,
    db: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
    effects: EffectsDep,
) -> ReviewOut:
    await review.start_review(db, request_id=request_id, reviewer=user, ctx=ctx, now=clock.now())
    return await _review_out(db, request_id, user, effects)


async def _decided(
    db: AsyncSession,
    request_id: uuid.UUID,
    user: User,
    decision: review.Decision,
    effects: Effects,
) -> RequestOut:
    found = await review.decide(
        db, request_id=request_id, reviewer=user, decision=decision, effects=effects
    )
    return await request_out(db, found)


@router.post("/requests/{request_id}/approve", response_model=RequestOut)
async def approve(
    request_id: uuid.UUID,
    body: ApproveIn,
    _p: Reviewer,
    user: UserDep,
    db: SessionDep,
    effects: EffectsDep,
) -> RequestOut:
    decision = review.Approval(**body.model_dump())
    return await _decided(db, request_id, user, decision, effects)


@router.post("/requests/{request_id}/narrow", response_model=RequestOut)
async def narrow(
    request_id: uuid.UUID,
    body: NarrowIn,
    _p: Reviewer,
    user: UserDep,
    db: SessionDep,
    effects: EffectsDep,
) -> RequestOut:
    decision = review.Narrowing(**body.model_dump())
    return await _decided(db, request_id, user, decision, effects)


@router.post("/requests/{request_id}/reject", response_model=RequestOut)
async def reject(
    request_id: uuid.UUID,
    body: RejectIn,
    _p: Reviewer,
    user: UserDep,
    db: SessionDep,
    effects: EffectsDep,
) -> RequestOut:
    decision = review.Rejection(**body.model_dump())
    return await _decided(db, request_id, user, decision, effects)
