"""Snoozes: no motion or person notifications for a while (1 to 24 hours).

Two kinds, one table: a household snooze (an owner's: nobody is notified, for one
camera or all) and a member's own (`scope: "me"`: only that member, any member may).
A snooze never stops recording, and rings always notify (docs/modes.md).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden import policy
from doorwarden.accounts.models import User
from doorwarden.audit.service import Actor, RequestContext, record
from doorwarden.audit.tags import Tag
from doorwarden.devices.models import Device
from doorwarden.errors import Conflict, Forbidden, NotFound
from doorwarden.modes.models import Snooze
from doorwarden.modes.service import UnknownCamera

MAX_RUNNING = 100  # per household: one per camera and member is far fewer
FORGET_AFTER = timedelta(days=1)  # ended snoozes are deleted by the schedule job


def scope_of(snooze: Snooze) -> str:
    return "household" if snooze.user_id is None else "me"


async def running(
    db: AsyncSession, household_id: uuid.UUID, user_id: uuid.UUID, at: datetime
) -> list[Snooze]:
    """The household's snoozes and `user_id`'s own, not ended at `at`."""
    rows = await db.scalars(
        select(Snooze)
        .where(
            Snooze.household_id == household_id,
            Snooze.until > at,
            (Snooze.user_id.is_(None)) | (Snooze.user_id == user_id),
        )
        .order_by(Snooze.until, Snooze.id)
    )
    return list(rows)


async def create(
    db: AsyncSession, *, household_id: uuid.UUID, device_id: uuid.UUID | None, hours: int,
    scope: str, principal: policy.Principal, actor: User, ctx: RequestContext, now: datetime,
) -> Snooze:  # fmt: skip
    """A household snooze needs the owner's right to set modes (the route lets every
    member in for their own); the policy decides."""
    if scope == "household":
        decision = policy.decide(
            principal, policy.Action.mode_set, policy.HouseholdResource(household_id)
        )
        if not decision.allowed:
            raise Forbidden(
                "Only an owner may snooze the household; you may snooze your own notifications.",
                details={"reason": decision.reason},
            )
    if device_id is not None:
        found = await db.scalar(
            select(Device.id).where(
                Device.id == device_id,
                Device.household_id == household_id,
                Device.revoked_at.is_(None),
            )
        )
        if found is None:
            raise UnknownCamera("No such camera in this household.")
    count = await db.scalar(
        select(func.count())
        .select_from(Snooze)
        .where(Snooze.household_id == household_id, Snooze.until > now)
    )
    if (count or 0) >= MAX_RUNNING:
        raise Conflict(f"This household already has {MAX_RUNNING} snoozes running.")
    snooze = Snooze(
        id=uuid.uuid4(),
        household_id=household_id,
        device_id=device_id,
        user_id=None if scope == "household" else actor.id,
        created_by=actor.id,
        created_at=now,
        until=now + timedelta(hours=hours),
    )
    db.add(snooze)
    await db.flush()
    record(
        db, tag=Tag.mode_snooze_create, actor=Actor(actor.id, str(actor.role)), ctx=ctx,
        household_id=household_id, target_type="snooze", target_id=snooze.id,
        extra={"scope": scope, "device_id": str(device_id) if device_id else None,
               "hours": hours},
    )  # fmt: skip
    return snooze


async def end(
    db: AsyncSession, *, household_id: uuid.UUID, snooze_id: uuid.UUID,
    principal: policy.Principal, actor: User, ctx: RequestContext, now: datetime,
) -> None:  # fmt: skip
    """End a snooze now: a household one needs an owner; a member's own is theirs alone
    (another member's is not found: nobody learns what others snoozed)."""
    snooze = await db.get(Snooze, snooze_id)
    if snooze is None or snooze.household_id != household_id:
        raise NotFound("No such snooze.")
    if snooze.user_id is not None and snooze.user_id != actor.id:
        raise NotFound("No such snooze.")
    if snooze.user_id is None:
        decision = policy.decide(
            principal, policy.Action.mode_set, policy.HouseholdResource(household_id)
        )
        if not decision.allowed:
            raise Forbidden(
                "Only an owner may end the household's snooze.",
                details={"reason": decision.reason},
            )
    scope = scope_of(snooze)
    await db.delete(snooze)
    record(
        db, tag=Tag.mode_snooze_end, actor=Actor(actor.id, str(actor.role)), ctx=ctx,
        household_id=household_id, target_type="snooze", target_id=snooze_id,
        extra={"scope": scope, "ended_early": snooze.until > now},
    )  # fmt: skip


async def forget_ended(db: AsyncSession, now: datetime) -> None:
    await db.execute(delete(Snooze).where(Snooze.until < now - FORGET_AFTER))
