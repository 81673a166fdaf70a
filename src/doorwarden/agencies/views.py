"""Agency pages: officers see their own agency; operator admins and legal reviewers see all,
and operator admins register and verify them. The agency's own page (which shows its
officers their requests) is served by legal/requests/views.py, built by page.py."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from doorwarden.agencies import service
from doorwarden.agencies.page import DONE
from doorwarden.agencies.schemas import AgencyIn
from doorwarden.deps import ClockDep, ContextDep, SessionDep, UserDep, agency_resource, authorize
from doorwarden.errors import DomainError
from doorwarden.policy import Action, Principal
from doorwarden.roles import Role
from doorwarden.web.forms import discard, failure, see_other
from doorwarden.web.render import render

router = APIRouter(include_in_schema=False)

Text200 = Annotated[str, Form(max_length=200)]


@router.get("/agency")
async def own_agency(principal: Annotated[Principal, authorize(Action.account_read)]) -> Response:
    """The officer's way in: their agency's page. The decision to show it is made there,
    by agency_read on that agency."""
    if principal.role is Role.agency_officer and principal.agency_id is not None:
        return see_other(f"/agencies/{principal.agency_id}")
    return see_other(
        "/agencies" if principal.role in (Role.operator_admin, Role.legal_reviewer) else "/"
    )


async def _list_page(
    request: Request,
    db: AsyncSession,
    principal: Principal,
    *,
    status_code: int = 200,
    **extra: Any,
) -> Response:
    context = {
        "agencies": await service.list_agencies(db),
        "can_manage": principal.role is Role.operator_admin,
        **extra,
    }
    return render(request, "legal/agencies.html", context, status_code=status_code)


@router.get("/agencies")
async def list_agencies(
    request: Request,
    principal: Annotated[Principal, authorize(Action.agency_list)],
    db: SessionDep,
    done: str | None = None,
) -> Response:
    return await _list_page(request, db, principal, done=DONE.get(done or ""))


@router.post("/agencies")
async def create_agency(
    request: Request,
    principal: Annotated[Principal, authorize(Action.agency_create)],
    user: UserDep,
    db: SessionDep,
    ctx: ContextDep,
    name: Text200 = "",
    jurisdiction: Text200 = "",
) -> Response:
    typed = {"name": name, "jurisdiction": jurisdiction}
    try:
        body = AgencyIn(name=name, jurisdiction=jurisdiction)
        agency = await service.create_agency(
            db, name=body.name, jurisdiction=body.jurisdiction, actor=user, ctx=ctx
        )
    except (ValidationError, DomainError) as exc:
        await discard(db, user)
        status, message = failure(exc)
        return await _list_page(
            request, db, principal, status_code=status, form=typed, error=message
        )
    return see_other(f"/agencies/{agency.id}?done=created")


@router.post("/agencies/{agency_id}/verify")
async def verify_agency(
    agency_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.agency_verify, agency_resource)],
    user: UserDep,
    db: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> Response:
    agency = await service.get_agency(db, agency_id)
    await service.verify_agency(db, agency=agency, actor=user, ctx=ctx, now=clock.now())
    return see_other(f"/agencies/{agency_id}?done=verified")
