"""Households API: create, read, settings, members, and the owner's audit trail."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status
from pydantic import AwareDatetime

from doorwarden.audit import service as audit
from doorwarden.audit.schemas import AuditEventOut
from doorwarden.deps import (
    ContextDep,
    LiveHubDep,
    SessionDep,
    UserDep,
    authorize,
    household_resource,
    member_resource,
)
from doorwarden.devices import member_push
from doorwarden.devices import service as devices
from doorwarden.errors import InvalidInput
from doorwarden.households import service
from doorwarden.households.schemas import (
    HouseholdIn,
    HouseholdOut,
    HouseholdPatch,
    MemberIn,
    MemberOut,
)
from doorwarden.policy import Action, Principal
from doorwarden.roles import HouseholdRole

router = APIRouter(prefix="/api/v1/households", tags=["households"])


@router.get("", response_model=list[HouseholdOut])
async def list_households(
    _p: Annotated[Principal, authorize(Action.household_list)], user: UserDep, db: SessionDep
) -> list[HouseholdOut]:
    rows = await service.households_of(db, user.id)
    return [HouseholdOut.model_validate(h).model_copy(update={"my_role": role}) for h, role in rows]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=HouseholdOut)
async def create_household(
    body: HouseholdIn,
    _p: Annotated[Principal, authorize(Action.household_create)],
    user: UserDep,
    db: SessionDep,
    ctx: ContextDep,
) -> HouseholdOut:
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
    return HouseholdOut.model_validate(household).model_copy(
        update={"my_role": HouseholdRole.owner}
    )


@router.get("/{household_id}", response_model=HouseholdOut)
async def read_household(
    household_id: uuid.UUID,
    principal: Annotated[Principal, authorize(Action.household_read, household_resource)],
    db: SessionDep,
) -> HouseholdOut:
    household = await service.get_household(db, household_id)
    role = principal.household_role(household_id)
    return HouseholdOut.model_validate(household).model_copy(update={"my_role": role})


@router.patch("/{household_id}", response_model=HouseholdOut)
async def update_household(
    household_id: uuid.UUID,
    body: HouseholdPatch,
    principal: Annotated[Principal, authorize(Action.household_update, household_resource)],
    user: UserDep,
    db: SessionDep,
    ctx: ContextDep,
) -> HouseholdOut:
    changes = body.model_dump(exclude_unset=True)
    if any(changes.get(key, "set") is None for key in ("name", "address", "time_zone")):
        raise InvalidInput("name, address and time_zone cannot be null.")
    household = await service.get_household(db, household_id)
    merged_lat = changes.get("latitude", household.latitude)
    merged_lon = changes.get("longitude", household.longitude)
    if (merged_lat is None) != (merged_lon is None):
        raise InvalidInput("Give both latitude and longitude, or neither.")
    await devices.update_household(db, household=household, changes=changes, actor=user, ctx=ctx)
    return HouseholdOut.model_validate(household).model_copy(
        update={"my_role": principal.household_role(household_id)}
    )


@router.get("/{household_id}/members", response_model=list[MemberOut])
async def list_members(
    household_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.household_members_read, household_resource)],
    db: SessionDep,
) -> list[MemberOut]:
    return [
        MemberOut(
            user_id=u.id,
            email=u.email,
            display_name=u.display_name,
            role=m.role,
            added_at=m.added_at,
        )
        for m, u in await service.list_members(db, household_id)
    ]


@router.post(
    "/{household_id}/members", status_code=status.HTTP_201_CREATED, response_model=MemberOut
)
async def add_member(
    household_id: uuid.UUID,
    body: MemberIn,
    _p: Annotated[Principal, authorize(Action.household_member_add, household_resource)],
    user: UserDep,
    db: SessionDep,
    ctx: ContextDep,
    live_hub: LiveHubDep,
) -> MemberOut:
    """Adds an existing resident account as a shared user."""
    member, added = await service.add_member(
        db, household_id=household_id, email=str(body.email), actor=user, ctx=ctx
    )
    out = MemberOut(
        user_id=added.id,
        email=added.email,
        display_name=added.display_name,
        role=member.role,
        added_at=member.added_at,
    )
    await db.commit()  # committed before the cameras fetch the new member set
    await member_push.nudge(db, live_hub, [household_id])
    return out


@router.delete("/{household_id}/members/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_member(
    household_id: uuid.UUID,
    user_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.household_member_remove, member_resource)],
    user: UserDep,
    db: SessionDep,
    ctx: ContextDep,
    live_hub: LiveHubDep,
) -> None:
    await service.remove_member(db, household_id=household_id, user_id=user_id, actor=user, ctx=ctx)
    await db.commit()  # committed before the cameras fetch the new member set
    await member_push.nudge(db, live_hub, [household_id])


@router.get("/{household_id}/audit-events", response_model=list[AuditEventOut])
async def household_audit(
    household_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.household_audit_read, household_resource)],
    db: SessionDep,
    before: AwareDatetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AuditEventOut]:
    """Who did what in this household, newest first (owners only); where staff or the
    system acted, without their address or browser (audit/readers.py)."""
    events = await audit.household_events(db, household_id=household_id, before=before, limit=limit)
    return [AuditEventOut.model_validate(e) for e in events]
