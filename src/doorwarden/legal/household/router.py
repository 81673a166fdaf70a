"""A household's "requests and access" API (owners): every request it was told of, its
notices, what was disclosed, the holds, and the community requests it may answer by
sharing clips (each share audited as clip:share)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from doorwarden.deps import ClockDep, ContextDep, SessionDep, UserDep, authorize, household_resource
from doorwarden.legal.community import service as community
from doorwarden.legal.household.service import household_legal, mark_read
from doorwarden.legal.models import NoticeKind, Outcome, RequestKind, RequestStatus
from doorwarden.policy import Action, Principal

router = APIRouter(prefix="/api/v1/households/{household_id}", tags=["requests and access"])


class NoticeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    request_id: uuid.UUID
    kind: NoticeKind
    message: str
    delivered_at: datetime | None
    deliver_after: datetime | None = Field(description="Set when a court order delayed it.")
    read_at: datetime | None


class ToldRequestOut(BaseModel):
    id: uuid.UUID
    agency: str
    kind: RequestKind
    status: RequestStatus
    outcome: Outcome | None
    case_number: str
    created_at: datetime
    decided_at: datetime | None
    decision_reason: str | None
    window_start: datetime
    window_end: datetime
    nondisclosure_until: datetime | None
    disclosed_clips: list[uuid.UUID]
    subscriber_information_disclosed: bool


class HoldOut(BaseModel):
    clip_id: uuid.UUID
    start_at: datetime
    until: datetime | None
    request_id: uuid.UUID | None


class CommunityOut(BaseModel):
    id: uuid.UUID
    agency: str
    status: RequestStatus
    case_number: str
    public_text: str | None
    window_start: datetime
    window_end: datetime
    shareable_clips: list[uuid.UUID]
    shared_clips: list[uuid.UUID]


class HouseholdLegalOut(BaseModel):
    notices: list[NoticeOut]
    requests: list[ToldRequestOut]
    holds: list[HoldOut]
    community_requests: list[CommunityOut]


class ShareIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    clip_ids: Annotated[
        list[uuid.UUID], Field(min_length=1, max_length=community.MAX_SHARE_AT_ONCE)
    ]


class ShareOut(BaseModel):
    shared: list[uuid.UUID]
    total_shared: int


@router.get("/legal", response_model=HouseholdLegalOut)
async def requests_and_access(
    household_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.household_requests_read, household_resource)],
    db: SessionDep,
    clock: ClockDep,
) -> HouseholdLegalOut:
    view = await household_legal(db, household_id, clock.now())
    requests = []
    for found in view.requests:
        disclosures = view.disclosures.get(found.id, [])
        requests.append(
            ToldRequestOut(
                id=found.id,
                agency=view.agencies.get(found.agency_id, ""),
                kind=found.kind,
                status=found.status,
                outcome=found.outcome,
                case_number=found.case_number,
                created_at=found.created_at,
                decided_at=found.decided_at,
                decision_reason=found.decision_reason,
                window_start=found.approved_start or found.window_start,
                window_end=found.approved_end or found.window_end,
                nondisclosure_until=found.nondisclosure_until,
                disclosed_clips=[c.id for d in disclosures for c in d.clips],
                subscriber_information_disclosed=any(
                    d.package.kind.value == "subscriber" for d in disclosures
                ),
            )
        )
    return HouseholdLegalOut(
        notices=[NoticeOut.model_validate(n) for n in view.notices],
        requests=requests,
        holds=[
            HoldOut(
                clip_id=h.clip.id, start_at=h.clip.start_at, until=h.until, request_id=h.request_id
            )
            for h in view.holds
        ],
        community_requests=[
            CommunityOut(
                id=ask.request.id,
                agency=ask.agency_name,
                status=ask.request.status,
                case_number=ask.request.case_number,
                public_text=ask.request.public_text,
                window_start=ask.request.window_start,
                window_end=ask.request.window_end,
                shareable_clips=[c.id for c in ask.clips],
                shared_clips=sorted(ask.shared),
            )
            for ask in view.community
        ],
    )


@router.post("/legal/notices/read", status_code=status.HTTP_204_NO_CONTENT)
async def notices_read(
    household_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.household_requests_read, household_resource)],
    db: SessionDep,
    clock: ClockDep,
) -> None:
    await mark_read(db, household_id, clock.now())


@router.post("/community-requests/{request_id}/share", response_model=ShareOut)
async def share_clips(
    household_id: uuid.UUID,
    request_id: uuid.UUID,
    body: ShareIn,
    _p: Annotated[Principal, authorize(Action.clip_share, household_resource)],
    user: UserDep,
    db: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> ShareOut:
    new = await community.share(
        db,
        request_id=request_id,
        household_id=household_id,
        clip_ids=set(body.clip_ids),
        owner=user,
        ctx=ctx,
        now=clock.now(),
    )
    total = await community.shared_ids(db, request_id, household_id)
    return ShareOut(shared=new, total_shared=len(total))
