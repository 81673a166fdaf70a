"""A request after its decision, by the agency or by the clock: withdrawing one not yet
decided, proving an emergency (a warrant filed since, or the incident report), extending a
preservation once, closing a community request; and the deadlines that pass on their own
(`run_deadlines`): unproven emergencies become unratified and flag their agency, holds
end, community requests close, delayed notices go out.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.accounts.models import User
from doorwarden.accounts.service import actor_of
from doorwarden.agencies import documents
from doorwarden.agencies.documents import Upload
from doorwarden.agencies.models import Agency, DocumentKind
from doorwarden.audit.service import SYSTEM, Actor, RequestContext, record
from doorwarden.audit.tags import Tag
from doorwarden.clips.models import ClipHold
from doorwarden.config import Settings
from doorwarden.errors import Conflict, InvalidInput
from doorwarden.legal import holds
from doorwarden.legal.disclosure.models import Package
from doorwarden.legal.models import LegalRequest, NoticeKind, RequestKind, RequestStatus
from doorwarden.legal.notices import deliver_due, notify
from doorwarden.legal.scope import targets_of
from doorwarden.legal.states import GRANTED, TAGS, Event, WrongState, next_status
from doorwarden.storage.base import ClipStore


class AlreadyExtended(Conflict):
    code = "already_extended"


class ProofInvalid(InvalidInput):
    code = "proof_invalid"


class ProofLate(Conflict):
    code = "proof_late"


def _audit(
    db: AsyncSession,
    request: LegalRequest,
    event: Event,
    actor: Actor,
    ctx: RequestContext,
    now: datetime,
    extra: dict[str, object] | None = None,
) -> None:
    record(
        db,
        tag=TAGS[event],
        actor=actor,
        ctx=ctx,
        agency_id=request.agency_id,
        target_type="legal_request",
        target_id=request.id,
        extra={"kind": str(request.kind), "status": str(request.status), **(extra or {})},
        occurred_at=now,
    )


async def withdraw(
    db: AsyncSession, *, request: LegalRequest, officer: User, ctx: RequestContext, now: datetime
) -> LegalRequest:
    request.status = next_status(request.kind, request.status, Event.withdraw)
    request.closed_at = now
    _audit(db, request, Event.withdraw, actor_of(officer), ctx, now)
    await holds.release(db, request=request, ctx=ctx, now=now)  # a preservation's, from filing
    await _tell(
        db, request, ctx, now, approved_only=False,
        message="was withdrawn by the agency before it was decided; nothing about your home "
        "was disclosed.",
    )  # fmt: skip
    await proof_fell_away(db, warrant=request, ctx=ctx, now=now)
    return request


async def _tell(
    db: AsyncSession,
    request: LegalRequest,
    ctx: RequestContext,
    now: datetime,
    *,
    approved_only: bool,
    message: str,
    kind: NoticeKind = NoticeKind.decision,
) -> None:
    """Tell the households the request named (or those its decision kept) what became of
    it: by default an owner hears of every turn a request about their home takes."""
    households = {
        t.household_id for t in await targets_of(db, request.id, approved_only=approved_only)
    }
    agency = await db.get(Agency, request.agency_id)
    name = agency.name if agency is not None else "The agency"
    await notify(
        db,
        request=request,
        household_ids=households,
        kind=kind,
        message=f"{name}'s {request.kind} request (case {request.case_number}) {message}",
        ctx=ctx,
        now=now,
    )


async def proof_fell_away(
    db: AsyncSession, *, warrant: LegalRequest, ctx: RequestContext, now: datetime
) -> None:
    """A warrant that ratified an emergency and is then withdrawn or rejected proves
    nothing: the emergency is unratified after all, and its agency flagged."""
    proven = (
        await db.scalars(
            select(LegalRequest).where(
                LegalRequest.proof_request_id == warrant.id,
                LegalRequest.status == RequestStatus.ratified,
            )
        )
    ).all()
    for emergency in proven:
        await _unratify(
            db, emergency, now, ctx,
            f"its proof, warrant request {warrant.id}, was {warrant.status}",
        )  # fmt: skip


async def file_proof(
    db: AsyncSession,
    *,
    request: LegalRequest,
    officer: User,
    warrant_request_id: uuid.UUID | None,
    report: Upload | None,
    store: ClipStore,
    settings: Settings,
    ctx: RequestContext,
    now: datetime,
) -> LegalRequest:
    """Ratify an emergency disclosure with its proof, before the deadline."""
    if request.kind is RequestKind.emergency and request.status is RequestStatus.unratified:
        raise ProofLate("The proof deadline has passed: the request stays unratified.")
    next_status(request.kind, request.status, Event.ratify)  # refuse early, change nothing
    if request.proof_due_at is not None and now > request.proof_due_at:
        raise ProofLate("The proof deadline has passed: the request stays unratified.")
    if (warrant_request_id is None) == (report is None):
        raise ProofInvalid(
            "Prove the emergency with either a warrant request filed since "
            "(warrant_request_id) or the incident report (a PDF), one of the two."
        )
    extra: dict[str, object] = {}
    if warrant_request_id is not None:
        warrant = await db.get(LegalRequest, warrant_request_id)
        if (
            warrant is None
            or warrant.agency_id != request.agency_id
            or warrant.kind is not RequestKind.warrant
            or warrant.created_at <= request.created_at
            or warrant.status in (RequestStatus.withdrawn, RequestStatus.rejected)
        ):
            raise ProofInvalid(
                "The proof must be a warrant request of this agency, filed after the "
                "emergency request and neither withdrawn nor rejected."
            )
        already = await db.scalar(
            select(LegalRequest.id).where(
                LegalRequest.proof_request_id == warrant.id, LegalRequest.id != request.id
            )
        )
        if already is not None:
            raise ProofInvalid("That warrant request is already the proof of another emergency.")
        request.proof_request_id = warrant.id
        extra["warrant_request"] = str(warrant.id)
    elif report is not None:
        pages = documents.check_pdf(
            report.data,
            content_type=report.content_type,
            max_bytes=settings.legal_document_max_bytes,
            what="incident report",
        )
        document = await documents.store_document(
            db,
            store,
            agency_id=request.agency_id,
            kind=DocumentKind.incident_report,
            data=report.data,
            filename=report.filename,
            pages=pages,
            actor=actor_of(officer),
            ctx=ctx,
            now=now,
        )
        request.proof_document_id = document.id
        extra["incident_report_sha256"] = document.sha256
    request.status = next_status(request.kind, request.status, Event.ratify)
    request.ratified_at = now
    _audit(db, request, Event.ratify, actor_of(officer), ctx, now, extra)
    return request


async def extend(
    db: AsyncSession,
    *,
    request: LegalRequest,
    officer: User,
    settings: Settings,
    ctx: RequestContext,
    now: datetime,
) -> LegalRequest:
    """Extend a preservation's holds once, by the same length again."""
    next_status(request.kind, request.status, Event.extend)
    if request.extended_at is not None:
        raise AlreadyExtended("This preservation was extended once already; it cannot be again.")
    assert request.hold_until is not None  # noqa: S101 - set when granted
    if now >= request.hold_until:
        # Ended, only not yet closed by the job: extending now would put back holds the
        # owner was already free of, without a review. A new preservation request is reviewed.
        raise WrongState(
            "This preservation's holds have ended; it can no longer be extended.",
            details={"hold_until": request.hold_until.isoformat()},
        )
    request.hold_until = request.hold_until + timedelta(days=settings.preservation_days)
    request.extended_at = now
    await db.execute(
        update(ClipHold)
        .where(ClipHold.request_id == request.id, ClipHold.released_at.is_(None))
        .values(expires_at=request.hold_until)
    )
    _audit(
        db,
        request,
        Event.extend,
        actor_of(officer),
        ctx,
        now,
        {"hold_until": request.hold_until.isoformat()},
    )
    return request


async def close_community(
    db: AsyncSession, *, request: LegalRequest, officer: User, ctx: RequestContext, now: datetime
) -> LegalRequest:
    request.status = next_status(request.kind, request.status, Event.close)
    request.closed_at = now
    _audit(db, request, Event.close, actor_of(officer), ctx, now)
    return request


@dataclass
class DeadlineResult:
    notices_delivered: int = 0
    emergencies_unratified: int = 0
    preservations_ended: int = 0
    community_closed: int = 0


async def _due(
    db: AsyncSession, kind: RequestKind, states: Collection[RequestStatus], *when: Any
) -> Sequence[LegalRequest]:
    """Requests of `kind` in one of `states` whose deadline (`when`) has come."""
    query = select(LegalRequest).where(
        LegalRequest.kind == kind, LegalRequest.status.in_(list(states)), *when
    )
    return (await db.scalars(query.order_by(LegalRequest.created_at))).all()


async def _unratify(
    db: AsyncSession, request: LegalRequest, now: datetime, ctx: RequestContext, why: str
) -> None:
    request.status = next_status(request.kind, request.status, Event.lapse)
    # Its provisional packages are revoked with it (downloads answer 410 package_revoked:
    # requests/records.py); the lapse names them, so the revocation is on record.
    revoked = (
        await db.scalars(
            select(Package.id)
            .where(Package.request_id == request.id, Package.provisional.is_(True))
            .order_by(Package.created_at)
        )
    ).all()
    extra: dict[str, object] = {"why": why, "packages_revoked": [str(p) for p in revoked]}
    _audit(db, request, Event.lapse, SYSTEM, ctx, now, extra)
    await _tell(
        db, request, ctx, now, approved_only=True,
        message=f"is now recorded as unratified: {why}. "
        + (
            "What was disclosed about your home under it is listed in your earlier notice, "
            "and the agency can no longer download it"
            if revoked
            else "Nothing about your home was disclosed under it"
        )
        + "; the agency has been flagged, and the request counts as unratified in the "
        "public transparency report.",
    )  # fmt: skip
    agency = await db.get(Agency, request.agency_id)
    if agency is not None:
        agency.flagged_at = now
        agency.flag_reason = (
            f"Emergency request {request.id} (case {request.case_number}) is unratified: {why}."
        )
        record(
            db,
            tag=Tag.agency_flag,
            actor=SYSTEM,
            ctx=ctx,
            agency_id=agency.id,
            target_type="agency",
            target_id=agency.id,
            extra={"request": str(request.id), "reason": "emergency unratified", "why": why},
            occurred_at=now,
        )


async def _lapse_emergencies(
    db: AsyncSession, now: datetime, ctx: RequestContext, result: DeadlineResult
) -> None:
    # Strictly past the deadline: at the deadline itself, proof is still accepted.
    overdue = await _due(db, RequestKind.emergency, GRANTED, LegalRequest.proof_due_at < now)
    for request in overdue:
        due = request.proof_due_at.isoformat() if request.proof_due_at else "?"
        await _unratify(db, request, now, ctx, f"no proof was filed by {due}")
        result.emergencies_unratified += 1


async def _end_preservations(
    db: AsyncSession, now: datetime, ctx: RequestContext, result: DeadlineResult
) -> None:
    ended = await _due(db, RequestKind.preservation, GRANTED, LegalRequest.hold_until <= now)
    for request in ended:
        request.status = next_status(request.kind, request.status, Event.expire)
        request.closed_at = now
        released = await db.execute(
            update(ClipHold)
            .where(ClipHold.request_id == request.id, ClipHold.released_at.is_(None))
            .values(released_at=now)
        )
        _audit(db, request, Event.expire, SYSTEM, ctx, now, {"holds_released": released.rowcount})  # type: ignore[attr-defined]
        await _tell(
            db, request, ctx, now, approved_only=True, kind=NoticeKind.hold,
            message="has ended: your clips it held are no longer preserved, and your own "
            "retention and deletion apply to them again.",
        )  # fmt: skip
        record(
            db,
            tag=Tag.legal_hold_release,
            actor=SYSTEM,
            ctx=ctx,
            agency_id=request.agency_id,
            target_type="legal_request",
            target_id=request.id,
            extra={"holds": released.rowcount},  # type: ignore[attr-defined]
            occurred_at=now,
        )
        result.preservations_ended += 1


async def _close_community(
    db: AsyncSession, now: datetime, settings: Settings, ctx: RequestContext, result: DeadlineResult
) -> None:
    cutoff = now - timedelta(days=settings.community_open_days)
    due = await _due(
        db, RequestKind.community, [RequestStatus.open], LegalRequest.created_at <= cutoff
    )
    for request in due:
        request.status = next_status(request.kind, request.status, Event.expire)
        request.closed_at = now
        _audit(db, request, Event.expire, SYSTEM, ctx, now)
        result.community_closed += 1


async def run_deadlines(
    db: AsyncSession, *, settings: Settings, ctx: RequestContext, now: datetime
) -> DeadlineResult:
    """Everything whose time has come, in one transaction (the caller commits)."""
    result = DeadlineResult()
    result.notices_delivered = await deliver_due(db, now=now, ctx=ctx)
    await _lapse_emergencies(db, now, ctx, result)
    await _end_preservations(db, now, ctx, result)
    await _close_community(db, now, settings, ctx, result)
    return result
