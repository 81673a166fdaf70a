"""Household pages: list and create, details and settings, members, the owner's audit trail."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from doorwarden.accounts.models import User
from doorwarden.audit import service as audit
from doorwarden.deps import (
    ContextDep,
    LiveHubDep,
    SessionDep,
    SettingsDep,
    SignerDep,
    UserDep,
    authorize,
    household_resource,
    member_resource,
)
from doorwarden.devices import member_push
from doorwarden.devices import service as devices
from doorwarden.errors import DomainError, InvalidInput
from doorwarden.households import service
from doorwarden.households.schemas import HouseholdIn, HouseholdPatch, MemberIn
from doorwarden.legal.household.service import unread_notices
from doorwarden.policy import Action, Principal
from doorwarden.roles import HouseholdRole
from doorwarden.web.forms import (
    discard,
    error_response,
    failure,
    is_htmx,
    see_other,
    validation_message,
)
from doorwarden.web.render import render

router = APIRouter(include_in_schema=False)

DONE_MESSAGES = {
    "created": "Household created. You are its owner.",
    "updated": "Settings saved.",
    "member-added": "Member added as a shared user: live view and history, no settings.",
    "member-removed": "Member removed.",
    "left": "You have left the household.",
}
AUDIT_PAGE_SIZE = 100
Text = Annotated[str, Form(max_length=300)]


def _coordinate(value: str, label: str) -> float | None:
    value = value.strip()
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        raise InvalidInput(f"{label}: enter a number such as 51.5072, or leave it empty.") from None


def _household_fields(
    name: str, address: str, time_zone: str, latitude: str, longitude: str
) -> dict[str, Any]:
    """The form as the API's input shape (which checks that both coordinates or neither
    are given); an empty coordinate means none."""
    lat, lon = _coordinate(latitude, "Latitude"), _coordinate(longitude, "Longitude")
    return {
        "name": name,
        "address": address,
        "time_zone": time_zone.strip() or "UTC",
        "latitude": lat,
        "longitude": lon,
    }


async def _list_page(
    request: Request, db: AsyncSession, user: User, *, status_code: int = 200, **extra: Any
) -> Response:
    rows = await service.households_of(db, user.id)
    return render(
        request, "households/list.html", {"households": rows, **extra}, status_code=status_code
    )


@router.get("/households")
async def list_households(
    request: Request,
    _p: Annotated[Principal, authorize(Action.household_list)],
    user: UserDep,
    db: SessionDep,
    done: str | None = None,
) -> Response:
    return await _list_page(request, db, user, done=DONE_MESSAGES.get(done or ""))


@router.post("/households")
async def create_household(
    request: Request,
    _p: Annotated[Principal, authorize(Action.household_create)],
    user: UserDep,
    db: SessionDep,
    ctx: ContextDep,
    name: Annotated[str, Form(max_length=100)] = "",
    address: Text = "",
    time_zone: Annotated[str, Form(max_length=64)] = "UTC",
    latitude: Annotated[str, Form(max_length=32)] = "",
    longitude: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    typed = {
        "name": name,
        "address": address,
        "time_zone": time_zone,
        "latitude": latitude,
        "longitude": longitude,
    }
    try:
        body = HouseholdIn(**_household_fields(name, address, time_zone, latitude, longitude))
        household = await service.create_household(
            db,
            owner=user,
            name=body.name,
            address=body.address,
            latitude=body.latitude,
            longitude=body.longitude,
            time_zone=body.time_zone,
            ctx=ctx,
        )
    except ValidationError as exc:
        return await _list_page(
            request, db, user, status_code=400, form=typed, error=validation_message(exc)
        )
    except DomainError as exc:
        await discard(db, user)
        return await _list_page(
            request, db, user, status_code=exc.status_code, form=typed, error=exc.message
        )
    return see_other(f"/households/{household.id}?done=created")


async def _detail_page(
    request: Request,
    db: AsyncSession,
    principal: Principal,
    household_id: uuid.UUID,
    *,
    status_code: int = 200,
    **extra: Any,
) -> Response:
    household = await service.get_household(db, household_id)
    members = await service.list_members(db, household_id)
    is_owner = principal.household_role(household_id) is HouseholdRole.owner
    context = {
        "household": household,
        "members": members,
        "is_owner": is_owner,
        "unread_notices": await unread_notices(db, household_id) if is_owner else 0,
        "me": principal.user_id,
        **extra,
    }
    return render(request, "households/detail.html", context, status_code=status_code)


@router.get("/households/{household_id}")
async def household_detail(
    request: Request,
    household_id: uuid.UUID,
    principal: Annotated[Principal, authorize(Action.household_read, household_resource)],
    db: SessionDep,
    done: str | None = None,
) -> Response:
    return await _detail_page(
        request, db, principal, household_id, done=DONE_MESSAGES.get(done or "")
    )


@router.post("/households/{household_id}/settings")
async def update_household(
    request: Request,
    household_id: uuid.UUID,
    principal: Annotated[Principal, authorize(Action.household_update, household_resource)],
    user: UserDep,
    db: SessionDep,
    ctx: ContextDep,
    name: Annotated[str, Form(max_length=100)] = "",
    address: Text = "",
    time_zone: Annotated[str, Form(max_length=64)] = "UTC",
    latitude: Annotated[str, Form(max_length=32)] = "",
    longitude: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    try:
        changes = HouseholdPatch(
            **_household_fields(name, address, time_zone, latitude, longitude)
        ).model_dump()
        household = await service.get_household(db, household_id)
        await devices.update_household(
            db, household=household, changes=changes, actor=user, ctx=ctx
        )
    except (ValidationError, DomainError) as exc:
        await discard(db, user)
        status, message = failure(exc)
        return await _detail_page(
            request, db, principal, household_id, status_code=status, settings_error=message
        )
    return see_other(f"/households/{household_id}?done=updated")


@router.post("/households/{household_id}/members")
async def add_member(
    request: Request,
    household_id: uuid.UUID,
    principal: Annotated[Principal, authorize(Action.household_member_add, household_resource)],
    user: UserDep,
    db: SessionDep,
    ctx: ContextDep,
    live_hub: LiveHubDep,
    email: Annotated[str, Form(max_length=254)] = "",
) -> Response:
    try:
        body = MemberIn(email=email.strip())
        await service.add_member(
            db, household_id=household_id, email=str(body.email), actor=user, ctx=ctx
        )
    except (ValidationError, DomainError) as exc:
        await discard(db, user)
        status, message = failure(exc)
        return await _detail_page(
            request,
            db,
            principal,
            household_id,
            status_code=status,
            member_error=message,
            member_email=email,
        )
    await db.commit()  # committed before the cameras fetch the new member set
    await member_push.nudge(db, live_hub, [household_id])
    return see_other(f"/households/{household_id}?done=member-added#members")


@router.post("/households/{household_id}/members/{user_id}/remove")
async def remove_member(
    request: Request,
    household_id: uuid.UUID,
    user_id: uuid.UUID,
    principal: Annotated[Principal, authorize(Action.household_member_remove, member_resource)],
    user: UserDep,
    db: SessionDep,
    ctx: ContextDep,
    live_hub: LiveHubDep,
) -> Response:
    """An owner removes a shared user, or a shared user leaves."""
    try:
        await service.remove_member(
            db, household_id=household_id, user_id=user_id, actor=user, ctx=ctx
        )
    except DomainError as exc:
        await discard(db, user)
        return error_response(
            request, "error.html", {"status": exc.status_code, "message": exc.message}, exc
        )
    await db.commit()  # committed before the cameras fetch the new member set
    await member_push.nudge(db, live_hub, [household_id])
    if user_id == principal.user_id:
        if is_htmx(request):  # the page is no longer ours to show: go to the list
            return Response(status_code=200, headers={"HX-Redirect": "/households?done=left"})
        return see_other("/households?done=left")
    if is_htmx(request):
        return Response(status_code=200)  # htmx swaps the member's row out for nothing
    return see_other(f"/households/{household_id}?done=member-removed#members")


@router.get("/households/{household_id}/audit")
async def household_audit(
    request: Request,
    household_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.household_audit_read, household_resource)],
    db: SessionDep,
    settings: SettingsDep,
    signer: SignerDep,
) -> Response:
    household = await service.get_household(db, household_id)
    events = await audit.household_events(db, household_id=household_id, limit=AUDIT_PAGE_SIZE)
    context = {
        "household": household,
        "events": events,
        "base_url": settings.public_base_url.rstrip("/"),
        "log_key": signer.key.verifier(),
    }
    return render(request, "households/audit.html", context)
