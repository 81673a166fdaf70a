"""Agencies API: operator admins register and verify agencies; officers see their own."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, status

from doorwarden.deps import ClockDep, ContextDep, SessionDep, UserDep, agency_resource, authorize
from doorwarden.legal import service
from doorwarden.legal.schemas import AgencyIn, AgencyOut, OfficerOut
from doorwarden.policy import Action, Principal

router = APIRouter(prefix="/api/v1/agencies", tags=["agencies"])


@router.get("", response_model=list[AgencyOut])
async def list_agencies(
    _p: Annotated[Principal, authorize(Action.agency_list)], db: SessionDep
) -> list[AgencyOut]:
    return [AgencyOut.model_validate(a) for a in await service.list_agencies(db)]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=AgencyOut)
async def create_agency(
    body: AgencyIn,
    _p: Annotated[Principal, authorize(Action.agency_create)],
    user: UserDep,
    db: SessionDep,
    ctx: ContextDep,
) -> AgencyOut:
    agency = await service.create_agency(
        db, name=body.name, jurisdiction=body.jurisdiction, actor=user, ctx=ctx
    )
    return AgencyOut.model_validate(agency)


@router.get("/{agency_id}", response_model=AgencyOut)
async def read_agency(
    agency_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.agency_read, agency_resource)],
    db: SessionDep,
) -> AgencyOut:
    agency = await service.get_agency(db, agency_id)
    officers = [OfficerOut.model_validate(o) for o in await service.list_officers(db, agency_id)]
    return AgencyOut.model_validate(agency).model_copy(update={"officers": officers})


@router.post("/{agency_id}/verify", response_model=AgencyOut)
async def verify_agency(
    agency_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.agency_verify, agency_resource)],
    user: UserDep,
    db: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> AgencyOut:
    agency = await service.get_agency(db, agency_id)
    await service.verify_agency(db, agency=agency, actor=user, ctx=ctx, now=clock.now())
    return AgencyOut.model_validate(agency)
