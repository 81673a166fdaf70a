"""A household's clips after arrival: finding one, watching one, deleting one, expiring
old ones.

Every deletion path asks `is_held` first: a clip under a legal hold is neither deleted by
its owner nor expired by retention.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.audit.models import AuditEvent
from doorwarden.audit.service import SYSTEM, Actor, RequestContext, record
from doorwarden.audit.tags import Tag
from doorwarden.clips.ingest import RING_LABEL
from doorwarden.clips.models import Clip, ClipHold, ClipStatus
from doorwarden.devices.models import PlanKind
from doorwarden.devices.service import plan_of
from doorwarden.errors import Conflict, NotFound
from doorwarden.storage.base import ClipStore

log = structlog.get_logger("doorwarden.clips")
RETENTION_BATCH = 200


class LegalHold(Conflict):
    """A hold its owner has been told of (or may be): the refusal says what it is."""

    code = "legal_hold"


class NotDeletableNow(Conflict):
    """A clip that cannot be deleted now, for a reason its owner may not learn yet (a hold
    under a court's non-disclosure order): the code and message name no legal process."""

    code = "not_deletable_now"


async def verified_clip(db: AsyncSession, household_id: uuid.UUID, clip_id: uuid.UUID) -> Clip:
    """The household's verified clip, or NotFound (also for another household's clip:
    its existence is not ours to confirm)."""
    clip = await db.get(Clip, clip_id)
    if clip is None or clip.household_id != household_id or clip.status is not ClipStatus.verified:
        raise NotFound("No such clip.")
    return clip


def active_holds(now: datetime) -> ColumnElement[bool]:
    """Holds in force: not released, and not past their end."""
    return and_(
        ClipHold.released_at.is_(None),
        or_(ClipHold.expires_at.is_(None), ClipHold.expires_at > now),
    )


async def is_held(db: AsyncSession, clip_id: uuid.UUID, now: datetime) -> bool:
    query = select(ClipHold.id).where(ClipHold.clip_id == clip_id, active_holds(now))
    return (await db.scalar(query.limit(1))) is not None


async def hold_is_secret(db: AsyncSession, clip_id: uuid.UUID, now: datetime) -> bool:
    """Every hold in force on the clip is one its owner may not learn of yet (a court's
    non-disclosure order still runs)."""
    query = select(ClipHold.hidden_until).where(ClipHold.clip_id == clip_id, active_holds(now))
    hidden = (await db.scalars(query)).all()
    return bool(hidden) and all(until is not None and now < until for until in hidden)


async def viewing_on_record(
    db: AsyncSession,
    *,
    clip: Clip,
    user_id: uuid.UUID,
    client_address: str | None,
    since: datetime,
) -> bool:
    """Whether this user, from this address, has a `clip:view` of the clip on record after
    `since`: the same viewing, whose Range requests need no event each. The record is the
    audit event itself, so every server process sees it (and it is never kept apart from
    the trail it stands for). Two first requests racing may both write one: an extra event,
    never a missing one."""
    query = select(AuditEvent.id).where(
        AuditEvent.actor_user_id == user_id,
        AuditEvent.occurred_at > since,
        AuditEvent.tag == str(Tag.clip_view),
        AuditEvent.target_type == "clip",
        AuditEvent.target_id == str(clip.id),
        AuditEvent.client_address.is_(None)
        if client_address is None
        else AuditEvent.client_address == client_address,
    )
    return (await db.scalar(query.limit(1))) is not None


async def remove_objects(store: ClipStore, keys: Sequence[str]) -> None:
    """The objects of tombstoned clips, once the tombstones are committed (never before:
    objects of a deleted clip are never served, and a crash in between leaves only
    unreachable ciphertext, never a listed clip without its video)."""
    for key in keys:
        await store.delete(key)


def _tombstone(clip: Clip, now: datetime) -> list[str]:
    """Turn the row into a tombstone; the object keys to delete once it is committed."""
    keys = [clip.object_key] + ([clip.thumbnail_key] if clip.thumbnail_key else [])
    clip.status, clip.deleted_at = ClipStatus.deleted, now
    clip.manifest, clip.labels, clip.label_set = "", [], ","
    return keys


async def delete_clip(
    db: AsyncSession,
    *,
    household_id: uuid.UUID,
    clip_id: uuid.UUID,
    actor: Actor,
    ctx: RequestContext,
    now: datetime,
) -> list[str]:
    """Tombstones the clip; the keys of its objects, which the caller removes
    (`remove_objects`) once it has committed the tombstone."""
    clip = await verified_clip(db, household_id, clip_id)
    if await is_held(db, clip.id, now):
        # Under a court's non-disclosure order the owner may not learn of the hold yet:
        # neither the code nor the message of the refusal may name it (issue 16, item 8).
        if await hold_is_secret(db, clip.id, now):
            raise NotDeletableNow("This clip cannot be deleted at the moment.")
        raise LegalHold(
            "This clip is under a legal hold and cannot be deleted while the hold lasts."
        )
    record(
        db,
        tag=Tag.clip_delete,
        actor=actor,
        ctx=ctx,
        household_id=household_id,
        target_type="clip",
        target_id=clip.id,
        extra={"device": str(clip.device_id), "sequence": clip.sequence},
    )
    return _tombstone(clip, now)


@dataclass
class RetentionResult:
    expired: int = 0
    held: int = 0
    households: set[uuid.UUID] = field(default_factory=set)
    # Of the expired clips: removed once their tombstones are committed (remove_objects).
    object_keys: list[str] = field(default_factory=list)


async def expire_clips(
    db: AsyncSession, *, now: datetime, ctx: RequestContext, live_only_ring_days: int = 1
) -> RetentionResult:
    """Tombstone verified clips older than their household's retention, except held ones;
    their objects are for the caller to remove once it has committed (the job does).
    Live-only households keep only the clips of doorbell presses (labelled ring), for
    `live_only_ring_days` (settings.live_only_ring_retention_days), and nothing else
    (retention 0: clips from before the plan changed)."""
    result = RetentionResult()
    households: Sequence[uuid.UUID] = (await db.scalars(select(Clip.household_id).distinct())).all()
    ring = Clip.label_set.contains(f",{RING_LABEL},")
    for household_id in households:
        plan = await plan_of(db, household_id)
        live_only = plan.kind is PlanKind.live_only
        days = live_only_ring_days if live_only else plan.retention_days
        too_old = Clip.end_at < now - timedelta(days=days)
        due = and_(
            Clip.household_id == plan.household_id,
            Clip.status == ClipStatus.verified,
            or_(too_old, and_(~ring, Clip.end_at < now)) if live_only else too_old,
        )
        # Held clips are left out of the batch, not skipped in it: otherwise a batch's worth
        # of old held clips would stop every other clip of the household from expiring.
        held = select(ClipHold.id).where(ClipHold.clip_id == Clip.id, active_holds(now)).exists()
        result.held += await db.scalar(select(func.count()).select_from(Clip).where(due, held)) or 0
        query = select(Clip).where(due, ~held).order_by(Clip.start_at).limit(RETENTION_BATCH)
        for clip in (await db.scalars(query)).all():
            if await is_held(db, clip.id, now):
                result.held += 1
                continue
            record(
                db,
                tag=Tag.clip_expire,
                actor=SYSTEM,
                ctx=ctx,
                household_id=clip.household_id,
                target_type="clip",
                target_id=clip.id,
                extra={
                    "retention_days": _days_for(clip, days, live_only),
                    "sequence": clip.sequence,
                },
            )
            result.object_keys += _tombstone(clip, now)
            result.expired += 1
            result.households.add(clip.household_id)
    if result.expired or result.held:
        log.info("retention.run", expired=result.expired, held=result.held)
    return result


def _days_for(clip: Clip, days: int, live_only: bool) -> int:
    """The retention that expired `clip` (for its audit event)."""
    return days if not live_only or f",{RING_LABEL}," in clip.label_set else 0
