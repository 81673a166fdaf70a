"""A preservation request's holds, from its filing: footage named in a request could
otherwise expire or be deleted by its owner while the request waits for review.

* At filing, every clip the request names (its cameras, its window) is held
  *provisionally*: kept from deletion and retention, and hidden from its household
  (`hidden_until` = the hold's own end), so an owner who tries to delete such a clip gets
  the neutral `409 not_deletable_now` that any secret hold gives (clips/service.py). Only
  reviewers, who see the request's scope, know of it. It lasts at most
  `preservation_days`, whether or not anyone reviews the request.
* At approval the holds are confirmed for the approved scope only (narrowed cameras and
  window), run `preservation_days` from the decision, and are shown to the household
  (unless a court's non-disclosure order hides them until it ends); the rest are released.
* At rejection or withdrawal every provisional hold is released.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.audit.service import SYSTEM, RequestContext, record
from doorwarden.audit.tags import Tag
from doorwarden.clips.models import Clip, ClipHold
from doorwarden.config import Settings
from doorwarden.legal.models import LegalRequest, RequestKind, Target
from doorwarden.legal.scope import clips_in_window


def _reason(request: LegalRequest) -> str:
    return f"Preservation request {request.id} (case {request.case_number})"


async def hold_at_filing(
    db: AsyncSession,
    *,
    request: LegalRequest,
    targets: Sequence[Target],
    settings: Settings,
    now: datetime,
) -> int:
    """Hold, provisionally and unseen by the household, every clip the request names."""
    if request.kind is not RequestKind.preservation or not targets:
        return 0
    until = now + timedelta(days=settings.preservation_days)
    clips = await clips_in_window(
        db, sorted({t.device_id for t in targets}), request.window_start, request.window_end
    )
    for clip in clips:
        db.add(
            ClipHold(
                clip_id=clip.id,
                reason=_reason(request),
                created_by=request.submitted_by,
                request_id=request.id,
                expires_at=until,
                hidden_until=until,  # provisional: the household is not told of it
                created_at=now,
            )
        )
    return len(clips)


async def _open_holds(db: AsyncSession, request_id: uuid.UUID) -> Sequence[ClipHold]:
    query = select(ClipHold).where(
        ClipHold.request_id == request_id, ClipHold.released_at.is_(None)
    )
    return (await db.scalars(query)).all()


async def confirm(
    db: AsyncSession,
    *,
    request: LegalRequest,
    clips: Sequence[Clip],
    until: datetime,
    created_by: uuid.UUID | None,
    ctx: RequestContext,
    now: datetime,
) -> None:
    """At approval: the approved clips held until `until`, shown to their household
    (unless a non-disclosure order runs); provisional holds outside the approval released."""
    keep = {c.id for c in clips}
    held: set[uuid.UUID] = set()
    dropped = 0
    for hold in await _open_holds(db, request.id):
        if hold.clip_id in keep and hold.clip_id not in held:
            hold.expires_at, hold.hidden_until = until, request.nondisclosure_until
            held.add(hold.clip_id)
        else:
            hold.released_at = now
            dropped += 1
    for clip in clips:
        if clip.id not in held:  # uploaded since the filing
            db.add(
                ClipHold(
                    clip_id=clip.id,
                    reason=_reason(request),
                    created_by=created_by,
                    request_id=request.id,
                    expires_at=until,
                    hidden_until=request.nondisclosure_until,
                    created_at=now,
                )
            )
    _released(db, request, dropped, ctx, now)


async def release(
    db: AsyncSession, *, request: LegalRequest, ctx: RequestContext, now: datetime
) -> int:
    """At rejection or withdrawal: every hold the request placed goes."""
    if request.kind is not RequestKind.preservation:
        return 0
    result = await db.execute(
        update(ClipHold)
        .where(ClipHold.request_id == request.id, ClipHold.released_at.is_(None))
        .values(released_at=now)
    )
    released = int(result.rowcount)  # type: ignore[attr-defined]
    _released(db, request, released, ctx, now)
    return released


def _released(
    db: AsyncSession, request: LegalRequest, count: int, ctx: RequestContext, now: datetime
) -> None:
    """On record, without a household: the holds were never shown to one."""
    if not count:
        return
    record(
        db,
        tag=Tag.legal_hold_release,
        actor=SYSTEM,
        ctx=ctx,
        agency_id=request.agency_id,
        target_type="legal_request",
        target_id=request.id,
        extra={"holds": count, "provisional": True},
        occurred_at=now,
    )
