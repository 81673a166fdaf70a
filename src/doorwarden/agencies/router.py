"""Agencies API: operator admins register and verify agencies; officers see their own."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, status
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.accounts import service as accounts
from doorwarden.accounts.schemas import InviteOut
from doorwarden.agencies import service
from doorwarden.agencies.models import Agency
from doorwarden.agencies.schemas import AgencyIn, AgencyOut, AgencyUpdate, OfficerOut
from doorwarden.agencies.standing import standing_of
from doorwarden.clock import Clock
from doorwarden.config import Settings
from doorwarden.deps import (
    ClockDep,
    ContextDep,
    SessionDep,
    SettingsDep,
    UserDep,
    agency_resource,
    authorize,
)
from doorwarden.policy import Action, Principal
from doorwarden.roles import Role

router = APIRouter(prefix="/api/v1/agencies", tags=["agencies"])


@router.get("", response_model=list[AgencyOut])
async def list_agencies(
    _p: Annotated[Principal, authorize(Action.agency_list)],
    db: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> list[AgencyOut]:
    return [await agency_out(db, a, settings, clock) for a in await service.list_agencies(db)]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=AgencyOut)
async def create_agency(
    body: AgencyIn,
    _p: Annotated[Principal, authorize(Action.agency_create)],
    user: UserDep,
    db: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> AgencyOut:
    agency = await service.create_agency(
        db,
        name=body.name,
        jurisdiction=body.jurisdiction,
        kind=body.kind,
        jurisdiction_area=body.jurisdiction_area,
        contacts=[c.model_dump(mode="json") for c in body.contacts],
        actor=user,
        ctx=ctx,
    )
    return await agency_out(db, agency, settings, clock)


@router.get("/{agency_id}", response_model=AgencyOut)
async def read_agency(
    agency_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.agency_read, agency_resource)],
    db: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> AgencyOut:
    agency = await service.get_agency(db, agency_id)
    out = await agency_out(db, agency, settings, clock)
    out.officers = [
        OfficerOut.model_validate(o) for o in await service.list_officers(db, agency_id)
    ]
    return out


@router.patch("/{agency_id}", response_model=AgencyOut)
async def update_agency(
    agency_id: uuid.UUID,
    body: AgencyUpdate,
    _p: Annotated[Principal, authorize(Action.agency_update, agency_resource)],
    user: UserDep,
    db: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> AgencyOut:
    agency = await service.get_agency(db, agency_id)
    changes = body.model_dump(mode="json", exclude_unset=True)
    await service.update_agency(db, agency=agency, changes=changes, actor=user, ctx=ctx)
    return await agency_out(db, agency, settings, clock)


@router.post("/{agency_id}/verify", response_model=AgencyOut)
async def verify_agency(
    agency_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.agency_verify, agency_resource)],
    user: UserDep,
    db: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> AgencyOut:
    agency = await service.get_agency(db, agency_id)
    await service.verify_agency(db, agency=agency, actor=user, ctx=ctx, now=clock.now())
    return await agency_out(db, agency, settings, clock)


@router.post("/{agency_id}/invites", status_code=status.HTTP_201_CREATED, response_model=InviteOut)
async def invite_officer(
    agency_id: uuid.UUID,
    principal: Annotated[Principal, authorize(Action.agency_officer_invite, agency_resource)],
    user: UserDep,
    db: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> InviteOut:
    """The agency's officer-administrator invites another officer of this agency (policy
    rule 8: operators never do). The code is shown once."""
    own = await service.check_officer_invite(db, principal=principal)
    invite, code = await accounts.create_invite(
        db, role=Role.agency_officer, agency_id=own, actor=user, ctx=ctx, now=clock.now()
    )
    return InviteOut(
        id=invite.id,
        role=invite.role,
        agency_id=invite.agency_id,
        expires_at=invite.expires_at,
        code=code,
    )


async def agency_out(
    db: AsyncSession, agency: Agency, settings: Settings, clock: Clock
) -> AgencyOut:
    out = AgencyOut.model_validate(agency)
    out.has_jurisdiction_area = agency.jurisdiction_area is not None
    out.standing = await standing_of(
        db,
        agency,
        require_approval=settings.legal_require_municipal_approval,
        today=clock.now().date(),
    )
    return out
