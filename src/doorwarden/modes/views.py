"""The modes page: the mode in force, a switch (owners), snoozes (owners for the
household, any member for their own notifications). The forms post here and come back
to the page; the same services as the API decide and audit."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Request
from pydantic import ValidationError
from starlette.responses import Response

from doorwarden.deps import (
    ClockDep,
    ContextDep,
    LiveHubDep,
    SessionDep,
    UserDep,
    authorize,
    household_resource,
)
from doorwarden.errors import DomainError
from doorwarden.households import service as households
from doorwarden.modes import definitions as defs
from doorwarden.modes import push, service, snoozes
from doorwarden.modes.schemas import ModeSet, SnoozeIn
from doorwarden.policy import Action, HouseholdResource, Principal, decide
from doorwarden.web.forms import discard, failure, see_other
from doorwarden.web.render import render

router = APIRouter(include_in_schema=False)
Member = Annotated[Principal, authorize(Action.household_read, household_resource)]
Owner = Annotated[Principal, authorize(Action.mode_set, household_resource)]
Snoozer = Annotated[Principal, authorize(Action.snooze_own, household_resource)]
Short = Annotated[str, Form(max_length=64)]


async def _page(
    request: Request, db: SessionDep, principal: Principal, household_id: uuid.UUID,
    user_id: uuid.UUID, clock: ClockDep, *, status_code: int = 200, error: str | None = None,
) -> Response:  # fmt: skip
    household = await households.get_household(db, household_id)
    now = clock.now()
    row = await service.row_of(db, household_id)
    current = await service.current_mode(db, household_id, now)
    cameras = await service.cameras_of(db, household_id)
    definitions = (row.definitions if row is not None else None) or {}
    names = {c.id: c.name for c in cameras}
    running = [
        {
            "id": s.id, "scope": snoozes.scope_of(s), "until": s.until,
            "camera": names.get(s.device_id, "every camera") if s.device_id else "every camera",
        }
        for s in await snoozes.running(db, household_id, user_id, now)
    ]  # fmt: skip
    owner = decide(principal, Action.mode_set, HouseholdResource(household_id)).allowed
    context = {
        "household": household,
        "current": current,
        "modes": [(m, defs.label(definitions, m)) for m in defs.MODES],
        "cameras": cameras,
        "snoozes": running,
        "owner": owner,
        "error": error,
    }
    return render(request, "modes/modes.html", context, status_code=status_code)


@router.get("/households/{household_id}/modes")
async def modes_page(
    request: Request, household_id: uuid.UUID, principal: Member, user: UserDep,
    db: SessionDep, clock: ClockDep,
) -> Response:  # fmt: skip
    return await _page(request, db, principal, household_id, user.id, clock)


@router.post("/households/{household_id}/modes/mode")
async def set_mode(
    request: Request, household_id: uuid.UUID, principal: Owner, user: UserDep,
    db: SessionDep, ctx: ContextDep, clock: ClockDep, hub: LiveHubDep, mode: Short = "",
) -> Response:  # fmt: skip
    try:
        body = ModeSet(mode=mode)
        await households.get_household(db, household_id)
        await service.set_mode(
            db, household_id=household_id, mode=body.mode, actor=user, ctx=ctx, now=clock.now()
        )
    except (ValidationError, DomainError) as exc:
        await discard(db, user)
        status, message = failure(exc)
        return await _page(
            request, db, principal, household_id, user.id, clock, status_code=status,
            error=message,
        )  # fmt: skip
    await db.commit()
    await push.send_modes(db, hub, household_id, clock.now())
    return see_other(f"/households/{household_id}/modes")


@router.post("/households/{household_id}/modes/snoozes")
async def create_snooze(
    request: Request, household_id: uuid.UUID, principal: Snoozer, user: UserDep,
    db: SessionDep, ctx: ContextDep, clock: ClockDep, hours: Short = "",
    scope: Short = "me", device_id: Short = "",
) -> Response:  # fmt: skip
    try:
        body = SnoozeIn.model_validate(
            {"hours": int(hours) if hours.strip().isdigit() else hours, "scope": scope,
             "device_id": device_id or None}
        )  # fmt: skip
        await households.get_household(db, household_id)
        await snoozes.create(
            db, household_id=household_id, device_id=body.device_id, hours=body.hours,
            scope=body.scope, principal=principal, actor=user, ctx=ctx, now=clock.now(),
        )  # fmt: skip
    except (ValidationError, DomainError) as exc:
        await discard(db, user)
        status, message = failure(exc)
        return await _page(
            request, db, principal, household_id, user.id, clock, status_code=status,
            error=message,
        )  # fmt: skip
    return see_other(f"/households/{household_id}/modes")


@router.post("/households/{household_id}/modes/snoozes/{snooze_id}/end")
async def end_snooze(
    request: Request, household_id: uuid.UUID, snooze_id: uuid.UUID, principal: Snoozer,
    user: UserDep, db: SessionDep, ctx: ContextDep, clock: ClockDep,
) -> Response:  # fmt: skip
    try:
        await snoozes.end(
            db, household_id=household_id, snooze_id=snooze_id, principal=principal,
            actor=user, ctx=ctx, now=clock.now(),
        )  # fmt: skip
    except DomainError as exc:
        await discard(db, user)
        return await _page(
            request, db, principal, household_id, user.id, clock,
            status_code=exc.status_code, error=exc.message,
        )  # fmt: skip
    return see_other(f"/households/{household_id}/modes")
