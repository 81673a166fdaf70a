"""Instance administration API: users and invites. Nothing here reaches footage."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from doorwarden.accounts import service
from doorwarden.accounts.schemas import (
    ConfirmedInviteOut,
    InviteIn,
    InviteOut,
    PendingInviteOut,
    UserAdminOut,
    UserUpdateIn,
)
from doorwarden.agencies.service import check_invite
from doorwarden.deps import ClockDep, ContextDep, SessionDep, UserDep, authorize
from doorwarden.policy import Action, Principal
from doorwarden.roles import Role

router = APIRouter(prefix="/api/v1/admin", tags=["administration"])


@router.get("/users", response_model=list[UserAdminOut])
async def list_users(
    _p: Annotated[Principal, authorize(Action.admin_users_read)],
    db: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[UserAdminOut]:
    return [
        UserAdminOut.model_validate(u)
        for u in await service.list_users(db, limit=limit, offset=offset)
    ]


@router.patch("/users/{user_id}", response_model=UserAdminOut)
async def update_user(
    user_id: uuid.UUID,
    body: UserUpdateIn,
    _p: Annotated[Principal, authorize(Action.admin_user_update)],
    actor: UserDep,
    db: SessionDep,
    ctx: ContextDep,
) -> UserAdminOut:
    """Deactivate (ends every session and token use) or reactivate an account."""
    user = await service.get_user(db, user_id)
    await service.set_active(db, user=user, active=body.is_active, actor=actor, ctx=ctx)
    return UserAdminOut.model_validate(user)


@router.post("/invites", status_code=status.HTTP_201_CREATED, response_model=InviteOut)
async def create_invite(
    body: InviteIn,
    _p: Annotated[Principal, authorize(Action.admin_invite_create)],
    actor: UserDep,
    db: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> InviteOut:
    """A legal reviewer's invite, or an agency's first officer-administrator's, is a
    proposal (`confirmed: false`): its code works once a second operator confirms it."""
    confirmed = await check_invite(db, role=body.role, agency_id=body.agency_id)
    invite, code = await service.create_invite(
        db,
        role=body.role,
        agency_id=body.agency_id,
        actor=actor,
        ctx=ctx,
        now=clock.now(),
        confirmed=confirmed,
        officer_admin=body.role is Role.agency_officer,
    )
    return InviteOut(
        id=invite.id,
        role=invite.role,
        agency_id=invite.agency_id,
        expires_at=invite.expires_at,
        code=code,
        confirmed=confirmed,
        officer_admin=invite.officer_admin,
    )


@router.get("/invites/pending", response_model=list[PendingInviteOut])
async def pending_invites(
    _p: Annotated[Principal, authorize(Action.admin_invite_confirm)],
    db: SessionDep,
    clock: ClockDep,
) -> list[PendingInviteOut]:
    return [
        PendingInviteOut.model_validate(i) for i in await service.pending_invites(db, clock.now())
    ]


@router.post("/invites/{invite_id}/confirm", response_model=ConfirmedInviteOut)
async def confirm_invite(
    invite_id: uuid.UUID,
    principal: Annotated[Principal, authorize(Action.admin_invite_confirm)],
    actor: UserDep,
    db: SessionDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> ConfirmedInviteOut:
    """The second operator's half of a proposed invite; its proposer is refused
    (409 separation_of_duties)."""
    invite = await service.confirm_invite(
        db, invite_id=invite_id, principal=principal, actor=actor, ctx=ctx, now=clock.now()
    )
    return ConfirmedInviteOut(
        id=invite.id,
        role=invite.role,
        agency_id=invite.agency_id,
        confirmed_by=invite.confirmed_by,
        confirmed_at=invite.confirmed_at,
    )
