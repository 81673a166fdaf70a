"""Modes API (docs/modes.md): definitions, the mode in force, the schedule, snoozes.

After a change the route commits, then tells the household's connected agents (push.py):
an agent never hears of a mode that was rolled back.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, status

from doorwarden.deps import (
    ClockDep,
    ContextDep,
    LiveHubDep,
    SessionDep,
    UserDep,
    authorize,
    household_resource,
)
from doorwarden.households import service as households
from doorwarden.modes import push, service, snoozes
from doorwarden.modes.models import Snooze
from doorwarden.modes.schemas import (
    CameraOut,
    CurrentOut,
    ModeOut,
    ModeSet,
    ModesIn,
    ModesOut,
    ScheduleEntry,
    ScheduleIn,
    SnoozeIn,
    SnoozeOut,
    SwitchOut,
)
from doorwarden.policy import Action, Principal

router = APIRouter(prefix="/api/v1/households/{household_id}", tags=["modes"])
Member = Annotated[Principal, authorize(Action.household_read, household_resource)]
Owner = Annotated[Principal, authorize(Action.mode_set, household_resource)]
Snoozer = Annotated[Principal, authorize(Action.snooze_own, household_resource)]


def snooze_out(s: Snooze) -> SnoozeOut:
    return SnoozeOut(
        id=s.id, device_id=s.device_id, scope=snoozes.scope_of(s),
        until=s.until, created_at=s.created_at,
    )  # fmt: skip


async def modes_out(db: SessionDep, household_id: uuid.UUID) -> ModesOut:
    row = await service.row_of(db, household_id)
    cameras = await service.cameras_of(db, household_id)
    view = service.definitions_view(row, cameras)
    return ModesOut(
        modes={m: ModeOut.model_validate(body) for m, body in view.items()},
        cameras=[CameraOut(id=c.id, name=c.name) for c in cameras],
        schedule=[ScheduleEntry.model_validate(e) for e in (row.schedule if row else [])],
    )


async def current_out(
    db: SessionDep, household_id: uuid.UUID, user_id: uuid.UUID, clock: ClockDep
) -> CurrentOut:
    now = clock.now()
    current = await service.current_mode(db, household_id, now)
    running = await snoozes.running(db, household_id, user_id, now)
    return CurrentOut(
        mode=current.mode,
        label=current.label,
        since=current.since,
        source=current.source,
        next=SwitchOut(at=current.next[0], mode=current.next[1]) if current.next else None,
        snoozes=[snooze_out(s) for s in running],
    )


@router.get("/modes", response_model=ModesOut)
async def read_modes(household_id: uuid.UUID, _p: Member, db: SessionDep) -> ModesOut:
    await households.get_household(db, household_id)
    return await modes_out(db, household_id)


@router.put("/modes", response_model=ModesOut)
async def update_modes(
    household_id: uuid.UUID, body: ModesIn, _p: Owner, user: UserDep, db: SessionDep,
    ctx: ContextDep, clock: ClockDep, hub: LiveHubDep,
) -> ModesOut:  # fmt: skip
    await households.get_household(db, household_id)
    await service.update_definitions(
        db, household_id=household_id, body=body, actor=user, ctx=ctx, now=clock.now()
    )
    await db.commit()
    await push.send_modes(db, hub, household_id, clock.now())
    return await modes_out(db, household_id)


@router.get("/mode", response_model=CurrentOut)
async def read_mode(
    household_id: uuid.UUID, _p: Member, user: UserDep, db: SessionDep, clock: ClockDep
) -> CurrentOut:
    await households.get_household(db, household_id)
    return await current_out(db, household_id, user.id, clock)


@router.put("/mode", response_model=CurrentOut)
async def set_mode(
    household_id: uuid.UUID, body: ModeSet, _p: Owner, user: UserDep, db: SessionDep,
    ctx: ContextDep, clock: ClockDep, hub: LiveHubDep,
) -> CurrentOut:  # fmt: skip
    await households.get_household(db, household_id)
    await service.set_mode(
        db, household_id=household_id, mode=body.mode, actor=user, ctx=ctx, now=clock.now()
    )
    await db.commit()
    await push.send_modes(db, hub, household_id, clock.now())
    return await current_out(db, household_id, user.id, clock)


@router.put("/mode-schedule", response_model=ModesOut)
async def set_schedule(
    household_id: uuid.UUID, body: ScheduleIn, _p: Owner, user: UserDep, db: SessionDep,
    ctx: ContextDep, clock: ClockDep, hub: LiveHubDep,
) -> ModesOut:  # fmt: skip
    await households.get_household(db, household_id)
    await service.set_schedule(
        db, household_id=household_id, body=body, actor=user, ctx=ctx, now=clock.now()
    )
    await db.commit()
    # Saving may write down a switch the job had not applied yet: agents hear it now.
    await push.send_modes(db, hub, household_id, clock.now())
    return await modes_out(db, household_id)


@router.post("/snoozes", status_code=status.HTTP_201_CREATED, response_model=SnoozeOut)
async def create_snooze(
    household_id: uuid.UUID, body: SnoozeIn, principal: Snoozer, user: UserDep,
    db: SessionDep, ctx: ContextDep, clock: ClockDep,
) -> SnoozeOut:  # fmt: skip
    await households.get_household(db, household_id)
    snooze = await snoozes.create(
        db, household_id=household_id, device_id=body.device_id, hours=body.hours,
        scope=body.scope, principal=principal, actor=user, ctx=ctx, now=clock.now(),
    )  # fmt: skip
    return snooze_out(snooze)


@router.delete("/snoozes/{snooze_id}", status_code=status.HTTP_204_NO_CONTENT)
async def end_snooze(
    household_id: uuid.UUID, snooze_id: uuid.UUID, principal: Snoozer, user: UserDep,
    db: SessionDep, ctx: ContextDep, clock: ClockDep,
) -> None:  # fmt: skip
    await snoozes.end(
        db, household_id=household_id, snooze_id=snooze_id, principal=principal, actor=user,
        ctx=ctx, now=clock.now(),
    )  # fmt: skip
