"""Modes: the definitions, the mode in force, setting it by hand, the schedule, and
whether a camera's event notifies a member (`notifies`, read by notify/).

Services never commit (DESIGN convention 1): the router or the job does, and only then
are the agents told (push.py), so an agent never hears of a change that was rolled back.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.accounts.models import User
from doorwarden.audit.service import SYSTEM, Actor, RequestContext, record
from doorwarden.audit.tags import Tag
from doorwarden.devices.models import Device
from doorwarden.errors import InvalidInput
from doorwarden.households.models import Household
from doorwarden.modes import definitions as defs
from doorwarden.modes import schedule as sched
from doorwarden.modes.models import HouseholdModes, Snooze
from doorwarden.modes.schemas import ModesIn, ScheduleIn

NEVER = datetime(1970, 1, 1, tzinfo=UTC)


class UnknownCamera(InvalidInput):
    code = "unknown_camera"


@dataclass(frozen=True)
class Current:
    mode: str
    label: str
    since: datetime | None
    source: str  # default | manual | schedule
    next: tuple[datetime, str] | None


# -- reading ------------------------------------------------------------------------------


async def row_of(db: AsyncSession, household_id: uuid.UUID) -> HouseholdModes | None:
    return await db.get(HouseholdModes, household_id)


async def cameras_of(db: AsyncSession, household_id: uuid.UUID) -> list[Device]:
    """The household's cameras in service, in pairing order."""
    rows = await db.scalars(
        select(Device)
        .where(Device.household_id == household_id, Device.revoked_at.is_(None))
        .order_by(Device.created_at, Device.id)
    )
    return list(rows)


async def zone_of(db: AsyncSession, household_id: uuid.UUID) -> Any:
    name = await db.scalar(select(Household.time_zone).where(Household.id == household_id))
    return sched.zone_of(name or "UTC")


def evaluate(row: HouseholdModes | None, zone: Any, at: datetime) -> Current:
    """The mode in force at `at`: the later of the mode set by hand (or last applied) and
    the schedule's last switch."""
    if row is None:
        mode = defs.DEFAULT_MODE
        return Current(mode, defs.DEFAULT_LABELS[mode], None, "default", None)
    entries = sched.entries_of(row.schedule or [])
    mode, since, source = row.mode, row.mode_set_at, row.source
    last = sched.last_switch(entries, zone, at)
    if last is not None and last[0] > since:
        since, mode, source = last[0], last[1], "schedule"
    upcoming = sched.next_switch(entries, zone, at)
    label = defs.label(row.definitions or {}, mode)
    return Current(mode, label, since if source != "default" else None, source, upcoming)


async def current_mode(db: AsyncSession, household_id: uuid.UUID, at: datetime) -> Current:
    row = await row_of(db, household_id)
    return evaluate(row, await zone_of(db, household_id), at)


async def setting_for(
    db: AsyncSession, household_id: uuid.UUID, device_id: uuid.UUID, at: datetime
) -> tuple[Current, defs.Setting]:
    row = await row_of(db, household_id)
    current = evaluate(row, await zone_of(db, household_id), at)
    definitions = row.definitions if row is not None else {}
    return current, defs.setting(definitions or {}, current.mode, str(device_id))


async def notifies(
    db: AsyncSession,
    household_id: uuid.UUID,
    device_id: uuid.UUID | None,
    user_id: uuid.UUID,
    at: datetime,
    *,
    kind: str | None = None,
    now: datetime | None = None,
) -> bool:
    """Whether a motion or person event of `device_id` at `at` notifies `user_id`: not
    while the household, that camera, or the member's own notifications are snoozed, and
    only when the mode in force says the camera notifies. A ring always notifies (rings
    are the caller's to let through; `kind="ring"` says so here too).

    Snoozed means a snooze was running when the event occurred (`at`) or is running when
    the member would be told (`now`, the outbox's clock): a clip that was recording when
    the member snoozed is uploaded and made an event afterwards, and must not alert them
    once they asked for quiet."""
    if kind == "ring":
        return True
    running = (Snooze.created_at <= at) & (Snooze.until > at)
    if now is not None:
        running = running | ((Snooze.created_at <= now) & (Snooze.until > now))
    snoozed = await db.scalar(
        select(Snooze.id)
        .where(
            Snooze.household_id == household_id,
            running,
            (Snooze.user_id.is_(None)) | (Snooze.user_id == user_id),
            (Snooze.device_id.is_(None)) | (Snooze.device_id == device_id),
        )
        .limit(1)
    )
    if snoozed is not None:
        return False
    if device_id is None:
        return True
    _, setting = await setting_for(db, household_id, device_id, at)
    return setting.notify


def definitions_view(
    row: HouseholdModes | None, cameras: list[Device]
) -> dict[str, dict[str, Any]]:
    definitions = row.definitions if row is not None and row.definitions else {}
    return {
        mode: {
            "label": defs.label(definitions, mode),
            "cameras": {
                str(c.id): defs.setting(definitions, mode, str(c.id)).as_dict() for c in cameras
            },
        }
        for mode in defs.MODES
    }


# -- changing -----------------------------------------------------------------------------


async def _row_for_update(
    db: AsyncSession, household_id: uuid.UUID, now: datetime
) -> HouseholdModes:
    """The household's row, made with the defaults the first time (two owners doing so
    at once: one insert wins, the other finds it), locked for this transaction."""
    values = {
        "household_id": household_id, "mode": defs.DEFAULT_MODE, "mode_set_at": now,
        "source": "default", "definitions": {}, "schedule": [], "scheduled": False,
        "updated_at": now,
    }  # fmt: skip
    dialect = db.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    await db.execute(
        insert(HouseholdModes)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["household_id"])
    )
    row = await db.scalar(
        select(HouseholdModes)
        .where(HouseholdModes.household_id == household_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert row is not None  # noqa: S101 - inserted just above
    return row


def _actor(user: User) -> Actor:
    return Actor(user_id=user.id, role=str(user.role))


async def set_mode(
    db: AsyncSession, *, household_id: uuid.UUID, mode: str, actor: User,
    ctx: RequestContext, now: datetime,
) -> Current:  # fmt: skip
    row = await _row_for_update(db, household_id, now)
    before = evaluate(row, await zone_of(db, household_id), now)
    row.mode, row.mode_set_at, row.mode_set_by, row.source = mode, now, actor.id, "manual"
    row.updated_at = now
    record(
        db, tag=Tag.mode_set, actor=_actor(actor), ctx=ctx, household_id=household_id,
        target_type="household", target_id=household_id,
        extra={"mode": mode, "from": before.mode, "source": "manual"},
    )  # fmt: skip
    return evaluate(row, await zone_of(db, household_id), now)


async def update_definitions(
    db: AsyncSession, *, household_id: uuid.UUID, body: ModesIn, actor: User,
    ctx: RequestContext, now: datetime,
) -> HouseholdModes:  # fmt: skip
    in_service = {str(c.id) for c in await cameras_of(db, household_id)}
    named = {str(d) for change in body.modes.values() for d in change.cameras}
    unknown = sorted(named - in_service)
    if unknown:
        raise UnknownCamera(
            "No such camera in this household.", details={"device_ids": unknown[:20]}
        )
    changes: dict[str, dict[str, Any]] = {
        mode: {
            "label": change.label,
            "cameras": {str(d): s.model_dump() for d, s in change.cameras.items()},
        }
        for mode, change in body.modes.items()
    }
    row = await _row_for_update(db, household_id, now)
    current = defs.forget_cameras(row.definitions or {}, in_service)
    row.definitions = defs.merged(current, changes)
    row.updated_at = now
    record(
        db, tag=Tag.mode_update, actor=_actor(actor), ctx=ctx, household_id=household_id,
        target_type="household", target_id=household_id,
        extra={
            "modes": sorted(body.modes),
            "labels": {m: c.label for m, c in body.modes.items() if c.label is not None},
            "cameras": len(named),
        },
    )  # fmt: skip
    return row


async def set_schedule(
    db: AsyncSession, *, household_id: uuid.UUID, body: ScheduleIn, actor: User,
    ctx: RequestContext, now: datetime,
) -> HouseholdModes:  # fmt: skip
    row = await _row_for_update(db, household_id, now)
    # A schedule saved now starts counting now: its past switches do not override the
    # mode in force (saving "home at 07:00" at noon does not switch to home).
    current = evaluate(row, await zone_of(db, household_id), now)
    row.mode, row.source = current.mode, current.source
    row.mode_set_at = now
    row.schedule = [e.model_dump() for e in body.entries]
    row.scheduled = bool(body.entries)
    row.updated_at = now
    record(
        db, tag=Tag.mode_schedule_update, actor=_actor(actor), ctx=ctx,
        household_id=household_id, target_type="household", target_id=household_id,
        extra={"entries": len(body.entries)},
    )  # fmt: skip
    return row


async def apply_schedules(db: AsyncSession, now: datetime, ctx: RequestContext) -> list[uuid.UUID]:
    """The scheduler's turn: every household whose schedule switched since its mode was
    last set gets that mode written (and audited); returns the households whose mode
    changed, for their agents to be told after the commit."""
    rows = await db.scalars(select(HouseholdModes).where(HouseholdModes.scheduled.is_(True)))
    changed = []
    for row in rows:
        if not row.schedule:
            continue
        current = evaluate(row, await zone_of(db, row.household_id), now)
        if current.source != "schedule" or current.since == row.mode_set_at:
            continue
        before = row.mode
        row.mode, row.mode_set_at, row.mode_set_by, row.source = (
            current.mode,
            current.since or now,
            None,
            "schedule",
        )
        if before != current.mode:
            record(
                db, tag=Tag.mode_set, actor=SYSTEM, ctx=ctx, household_id=row.household_id,
                target_type="household", target_id=row.household_id,
                extra={"mode": current.mode, "from": before, "source": "schedule"},
            )  # fmt: skip
            changed.append(row.household_id)
    return changed
