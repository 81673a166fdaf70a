"""The operator admin's page: accounts (deactivate, reactivate) and invites. Like the API
it mirrors, nothing here reaches footage."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from doorwarden.accounts import service
from doorwarden.accounts.models import User
from doorwarden.agencies.service import check_invite, list_agencies
from doorwarden.deps import ClockDep, ContextDep, SessionDep, UserDep, authorize
from doorwarden.errors import DomainError, InvalidInput
from doorwarden.policy import Action, Principal
from doorwarden.roles import Role
from doorwarden.web.forms import discard, see_other
from doorwarden.web.render import render

router = APIRouter(include_in_schema=False)

# Operator admins are made on the server's shell only (check_invite refuses them).
INVITE_ROLES = [Role.resident, Role.agency_officer, Role.legal_reviewer, Role.auditor]
DONE_MESSAGES = {
    "deactivated": "Account deactivated; its sessions were ended.",
    "reactivated": "Account reactivated.",
    "confirmed": "Invite confirmed: its code now works.",
}


async def _admin_page(
    request: Request, db: AsyncSession, actor: User, *, status_code: int = 200, **extra: Any
) -> Response:
    context = {
        "users": await service.list_users(db),
        "agencies": await list_agencies(db),
        "invite_roles": INVITE_ROLES,
        "pending": await service.pending_invites(db, request.app.state.clock.now()),
        "me": actor.id,
        **extra,
    }
    return render(request, "admin/index.html", context, status_code=status_code)


@router.get("/admin")
async def admin_home(
    request: Request,
    _p: Annotated[Principal, authorize(Action.admin_users_read)],
    actor: UserDep,
    db: SessionDep,
    done: str | None = None,
) -> Response:
    return await _admin_page(request, db, actor, done=DONE_MESSAGES.get(done or ""))


@router.post("/admin/users/{user_id}/active")
async def set_active(
    request: Request,
    user_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.admin_user_update)],
    actor: UserDep,
    db: SessionDep,
    ctx: ContextDep,
    active: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    try:
        if active not in ("true", "false"):
            raise InvalidInput("Say whether the account should be active.")
        user = await service.get_user(db, user_id)
        await service.set_active(db, user=user, active=active == "true", actor=actor, ctx=ctx)
    except DomainError as exc:
        await discard(db, actor)
        return await _admin_page(
            request, db, actor, status_code=exc.status_code, users_error=exc.message
        )
    return see_other(f"/admin?done={'reactivated' if active == 'true' else 'deactivated'}")


@router.post("/admin/invites")
async def create_invite(
    request: Request,
    _p: Annotated[Principal, authorize(Action.admin_invite_create)],
    actor: UserDep,
    db: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
    role: Annotated[str, Form(max_length=32)] = "",
    agency_id: Annotated[str, Form(max_length=36)] = "",
) -> Response:
    typed = {"role": role, "agency_id": agency_id}
    try:
        if role not in {r.value for r in INVITE_ROLES}:
            raise InvalidInput("Choose the kind of account the invite creates.")
        agency = _uuid_or_none(agency_id) if role == Role.agency_officer else None
        confirmed = await check_invite(db, role=Role(role), agency_id=agency)
        invite, code = await service.create_invite(
            db,
            role=Role(role),
            agency_id=agency,
            actor=actor,
            ctx=ctx,
            now=clock.now(),
            confirmed=confirmed,
            officer_admin=role == Role.agency_officer,
        )
    except DomainError as exc:
        await discard(db, actor)
        return await _admin_page(
            request,
            db,
            actor,
            status_code=exc.status_code,
            invite_error=exc.message,
            invite_form=typed,
        )
    # The code exists only in this answer: it is stored as a hash.
    return render(
        request, "admin/invite_created.html", {"invite": invite, "code": code}, status_code=201
    )


@router.post("/admin/invites/{invite_id}/confirm")
async def confirm_invite(
    request: Request,
    invite_id: uuid.UUID,
    principal: Annotated[Principal, authorize(Action.admin_invite_confirm)],
    actor: UserDep,
    db: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> Response:
    """The second operator's half of a proposed invite (policy rule 8)."""
    try:
        await service.confirm_invite(
            db, invite_id=invite_id, principal=principal, actor=actor, ctx=ctx, now=clock.now()
        )
    except DomainError as exc:
        await discard(db, actor)
        return await _admin_page(
            request, db, actor, status_code=exc.status_code, pending_error=exc.message
        )
    return see_other("/admin?done=confirmed")


def _uuid_or_none(value: str) -> uuid.UUID | None:
    if not value.strip():
        return None
    try:
        return uuid.UUID(value.strip())
    except ValueError:
        raise InvalidInput("Choose an agency from the list.") from None
