"""Legal review: a reviewer takes a request, runs the checklist, and approves it as asked,
narrows it (fewer cameras, a shorter window, with a stated reason) or rejects it (with a
reason). Approval as asked needs every check to pass; a narrowing must itself pass them.
What a decision sets in motion (a package, holds, a proof deadline, notices) is
outcomes.py's.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, select
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.accounts.models import User
from doorwarden.accounts.service import actor_of
from doorwarden.agencies.models import Agency
from doorwarden.audit.service import RequestContext, record
from doorwarden.errors import Conflict, InvalidInput, NotFound
from doorwarden.legal.disclosure.outcomes import Effects, apply_decision
from doorwarden.legal.lifecycle import proof_fell_away
from doorwarden.legal.models import (
    LegalRequest,
    Outcome,
    RequestKind,
    RequestStatus,
    ScopeItem,
    ScopeKind,
    Target,
)
from doorwarden.legal.review import checks
from doorwarden.legal.review.conflicts import check_no_conflict
from doorwarden.legal.scope import scope_items, targets_of
from doorwarden.legal.states import REVIEWED_KINDS, TAGS, UNDECIDED, Event, next_status


class ChecksFailed(Conflict):
    code = "checks_failed"


class ReasonRequired(InvalidInput):
    code = "reason_required"


class NarrowingInvalid(InvalidInput):
    code = "narrowing_invalid"


async def queue(db: AsyncSession, *, include_decided: bool = False) -> Sequence[LegalRequest]:
    """Requests awaiting a decision: emergencies first, then oldest first."""
    query = select(LegalRequest).where(LegalRequest.kind.in_(REVIEWED_KINDS))
    if not include_decided:
        query = query.where(LegalRequest.status.in_(list(UNDECIDED)))
    urgency = case((LegalRequest.kind == RequestKind.emergency, 0), else_=1)
    return (await db.scalars(query.order_by(urgency, LegalRequest.created_at).limit(500))).all()


async def reviewable(db: AsyncSession, request_id: uuid.UUID) -> LegalRequest:
    request = await db.get(LegalRequest, request_id)
    if request is None or request.kind not in REVIEWED_KINDS:
        raise NotFound("No such request.")
    return request


async def start_review(
    db: AsyncSession, *, request_id: uuid.UUID, reviewer: User, ctx: RequestContext, now: datetime
) -> LegalRequest:
    request = await reviewable(db, request_id)
    request.status = next_status(request.kind, request.status, Event.review)
    request.reviewer_id, request.review_started_at = reviewer.id, now
    _audit(db, request, Event.review, reviewer, ctx, now, {})
    return request


@dataclass(frozen=True)
class Preview:
    """What the reviewer sees before deciding (the API and the page alike): the request,
    its agency, the scope and every check as asked."""

    request: LegalRequest
    agency: Agency
    items: Sequence[ScopeItem]
    targets: Sequence[Target]
    checks: list[checks.Check]


async def preview(
    db: AsyncSession, request_id: uuid.UUID, *, reviewer: User, effects: Effects
) -> Preview:
    request = await reviewable(db, request_id)
    agency = await db.get(Agency, request.agency_id)
    assert agency is not None  # noqa: S101 - a foreign key
    items, targets = await scope_items(db, request.id), await targets_of(db, request.id)
    found = await checks.checklist(
        db,
        request,
        agency=agency,
        items=items,
        targets=targets,
        window=(request.window_start, request.window_end),
        attest=checks.attestations_needed(request),  # as if attested: shows the rest
        reviewer=reviewer.display_name,
        settings=effects.settings,
        now=effects.now,
    )
    return Preview(request, agency, items, targets, found)


def _audit(
    db: AsyncSession,
    request: LegalRequest,
    event: Event,
    reviewer: User,
    ctx: RequestContext,
    now: datetime,
    extra: dict[str, object],
) -> None:
    record(
        db,
        tag=TAGS[event],
        actor=actor_of(reviewer),
        ctx=ctx,
        agency_id=request.agency_id,
        target_type="legal_request",
        target_id=request.id,
        extra={"kind": str(request.kind), "status": str(request.status), **extra},
        occurred_at=now,
    )


def _reason(reason: str | None, event: Event) -> str:
    text = (reason or "").strip()
    if not text:
        done = "narrowed" if event is Event.narrow else "rejected"
        raise ReasonRequired(
            f"Say why the request is {done}: the reason is given to the agency and kept on record."
        )
    if len(text) > 5000:
        raise InvalidInput("The reason is longer than 5000 characters.")
    return text


@dataclass(frozen=True)
class Approval:
    """Approve as asked."""

    attest: Collection[str] = ()
    note: str | None = None


@dataclass(frozen=True)
class Narrowing:
    """Approve less than asked: these of the cameras it named, this part of its window
    (each side None: as asked), and why."""

    keep_devices: Collection[uuid.UUID]
    window_start: datetime | None = None
    window_end: datetime | None = None
    attest: Collection[str] = ()
    reason: str | None = None


@dataclass(frozen=True)
class Rejection:
    reason: str | None = None


Decision = Approval | Narrowing | Rejection


async def decide(
    db: AsyncSession,
    *,
    request_id: uuid.UUID,
    reviewer: User,
    decision: Decision,
    effects: Effects,
) -> LegalRequest:
    """The reviewer's decision on a request, taken alike from the API and the page."""
    request = await reviewable(db, request_id)
    agency = await db.get(Agency, request.agency_id)
    assert agency is not None  # noqa: S101 - a foreign key
    # Rule 8: nobody who helped set the agency up decides its requests.
    await check_no_conflict(db, reviewer=reviewer, agency=agency)
    if isinstance(decision, Approval):
        await _approve(db, request, reviewer, decision, effects)
    elif isinstance(decision, Narrowing):
        await _narrow(db, request, reviewer, decision, effects)
    else:
        await _reject(db, request, reviewer, decision, effects)
    return request


async def _reject(
    db: AsyncSession, request: LegalRequest, reviewer: User, decision: Rejection, effects: Effects
) -> None:
    text = _reason(decision.reason, Event.reject)
    request.status = next_status(request.kind, request.status, Event.reject)
    request.outcome, request.decision_reason = Outcome.rejected, text
    request.reviewer_id, request.decided_at = reviewer.id, effects.now
    for target in await targets_of(db, request.id):
        target.approved = False
    _audit(db, request, Event.reject, reviewer, effects.ctx, effects.now, {"reason": text})
    await apply_decision(db, request=request, actor=actor_of(reviewer), effects=effects)
    await proof_fell_away(db, warrant=request, ctx=effects.ctx, now=effects.now)


async def _approve(
    db: AsyncSession, request: LegalRequest, reviewer: User, decision: Approval, effects: Effects
) -> None:
    """Approve as asked: every check must pass (an overbroad request can only be
    narrowed or rejected)."""
    next_status(request.kind, request.status, Event.approve)  # refuse early, change nothing
    targets = await targets_of(db, request.id)
    items = await scope_items(db, request.id)
    window = (request.window_start, request.window_end)
    await _grant(
        db,
        request=request,
        reviewer=reviewer,
        event=Event.approve,
        items=items,
        keep=targets,
        drop=[],
        window=window,
        attest=set(decision.attest),
        reason=(decision.note or "").strip() or None,
        effects=effects,
    )


async def _narrow(
    db: AsyncSession, request: LegalRequest, reviewer: User, decision: Narrowing, effects: Effects
) -> None:
    """Approve less than asked: a subset of the cameras (never one it did not name) and
    a window inside the one asked for; the smaller scope must pass every check."""
    keep_devices = set(decision.keep_devices)
    text = _reason(decision.reason, Event.narrow)
    next_status(request.kind, request.status, Event.narrow)
    targets = await targets_of(db, request.id)
    by_device = {t.device_id: t for t in targets}
    unknown = keep_devices - set(by_device)
    if unknown:
        raise NarrowingInvalid(
            "A narrowing keeps cameras the request named, and no others.",
            details={"unknown_devices": sorted(str(d) for d in unknown)},
        )
    if not keep_devices:
        raise NarrowingInvalid("A narrowing keeps at least one camera: reject the request instead.")
    start = decision.window_start or request.window_start
    end = decision.window_end or request.window_end
    if not request.window_start <= start < end <= request.window_end:
        raise NarrowingInvalid("The narrowed window must lie inside the window asked for.")
    asked = await scope_items(db, request.id)
    items = [i for i in asked if i.kind is not ScopeKind.area]  # a narrowing drops sweeps
    keep = [by_device[d] for d in keep_devices]
    same_window = (start, end) == (request.window_start, request.window_end)
    if len(keep) == len(targets) and same_window and len(items) == len(asked):
        raise NarrowingInvalid("Nothing is narrowed: approve the request as asked instead.")
    await _grant(
        db,
        request=request,
        reviewer=reviewer,
        event=Event.narrow,
        items=items,
        keep=keep,
        drop=[t for t in targets if t.device_id not in keep_devices],
        window=(start, end),
        attest=set(decision.attest),
        reason=text,
        effects=effects,
    )


async def _grant(
    db: AsyncSession,
    *,
    request: LegalRequest,
    reviewer: User,
    event: Event,
    items: Sequence[ScopeItem],
    keep: Sequence[Target],
    drop: Sequence[Target],
    window: tuple[datetime, datetime],
    attest: Collection[str],
    reason: str | None,
    effects: Effects,
) -> None:
    agency = await db.get(Agency, request.agency_id)
    assert agency is not None  # noqa: S101 - a foreign key
    found = await checks.checklist(
        db,
        request,
        agency=agency,
        items=items,
        targets=keep,
        window=window,
        attest=attest,
        reviewer=reviewer.display_name,
        settings=effects.settings,
        now=effects.now,
    )
    failed = [c for c in found if not c.ok]
    if failed:
        advice = "narrow or reject it" if event is Event.approve else "narrow it further"
        raise ChecksFailed(
            f"The request cannot be {'approved' if event is Event.approve else 'narrowed so'}: "
            f"{'; '.join(c.detail for c in failed)} ({advice}).",
            details={"failed": [c.to_json() for c in failed]},
        )
    request.status = next_status(request.kind, request.status, event)
    request.outcome = Outcome.approved if event is Event.approve else Outcome.narrowed
    request.approved_start, request.approved_end = window
    request.reviewer_id, request.decided_at = reviewer.id, effects.now
    request.decision_reason = reason
    request.checklist = {c.name: c.to_json() for c in found}
    for target in keep:
        target.approved = True
    for target in drop:
        target.approved = False
    _audit(
        db,
        request,
        event,
        reviewer,
        effects.ctx,
        effects.now,
        {
            "cameras": len(keep),
            "cameras_dropped": len(drop),
            "window": [window[0].isoformat(), window[1].isoformat()],
            "reason": reason,
        },
    )
    await apply_decision(db, request=request, actor=actor_of(reviewer), effects=effects)


def decided(request: LegalRequest) -> bool:
    return request.status not in (RequestStatus.submitted, RequestStatus.in_review)
