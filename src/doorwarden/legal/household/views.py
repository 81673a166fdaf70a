"""A household's "Requests and access" page (owners): its notices (the unread ones marked
until the owner marks them read), every request it was told of with exactly what was
disclosed about it, the holds on its clips, and community requests it may answer by
sharing clips one by one. What a court's non-disclosure order still covers is not here:
household_legal shows only what delivered notices opened."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from doorwarden.deps import ClockDep, ContextDep, SessionDep, UserDep, authorize, household_resource
from doorwarden.devices import service as devices
from doorwarden.errors import DomainError, InvalidInput
from doorwarden.households import service as households
from doorwarden.legal.community import service as community
from doorwarden.legal.household import service as household_service
from doorwarden.legal.household.service import household_legal, mark_read
from doorwarden.policy import Action, Principal
from doorwarden.web.forms import discard, see_other
from doorwarden.web.render import render

router = APIRouter(include_in_schema=False)

DONE = {"read": "Notices marked as read.", "shared": "Shared. The agency sees only these clips."}


async def _page(
    request: Request,
    db: AsyncSession,
    household_id: uuid.UUID,
    now: Any,
    *,
    status_code: int = 200,
    done: str | None = None,
    **extra: Any,
) -> Response:
    household = await households.get_household(db, household_id)
    view = await household_legal(db, household_id, now)
    context = {
        "household": household,
        "zone": households.zone_of(household),
        "view": view,
        "cameras": {d.id: d.name for d in await devices.cameras_of(db, household_id)},
        "done": DONE.get(done or ""),
        **extra,
    }
    return render(request, "legal/household_requests.html", context, status_code=status_code)


@router.get("/households/{household_id}/requests")
async def requests_and_access(
    request: Request,
    household_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.household_requests_read, household_resource)],
    db: SessionDep,
    clock: ClockDep,
    done: str | None = None,
) -> Response:
    return await _page(request, db, household_id, clock.now(), done=done)


@router.post("/households/{household_id}/requests/read")
async def notices_read(
    household_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.household_requests_read, household_resource)],
    db: SessionDep,
    clock: ClockDep,
) -> Response:
    await mark_read(db, household_id, clock.now())
    return see_other(f"/households/{household_id}/requests?done=read")


@router.post("/households/{household_id}/requests/{request_id}/share")
async def share_clips(
    request: Request,
    household_id: uuid.UUID,
    request_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.clip_share, household_resource)],
    user: UserDep,
    db: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
    clip_ids: Annotated[list[str], Form(max_length=community.MAX_SHARE_AT_ONCE + 1)] = [],  # noqa: B006
) -> Response:
    now = clock.now()
    try:
        try:
            chosen = {uuid.UUID(c) for c in clip_ids}
        except ValueError:
            raise InvalidInput("Choose clips from the list.") from None
        if not chosen:
            raise InvalidInput("Tick at least one clip to share, or simply ignore the request.")
        await community.share(
            db,
            request_id=request_id,
            household_id=household_id,
            clip_ids=chosen,
            owner=user,
            ctx=ctx,
            now=now,
        )
    except DomainError as exc:
        await discard(db, user)
        return await _page(
            request,
            db,
            household_id,
            now,
            status_code=exc.status_code,
            share_error={str(request_id): exc.message},
        )
    return see_other(f"/households/{household_id}/requests?done=shared#community-{request_id}")


# TEMPORARY (issue 15): households/views.py still imports this from here; once it takes it
# from legal/household/service.py (a view may not import another view module), remove this.
unread_notices = household_service.unread_notices
