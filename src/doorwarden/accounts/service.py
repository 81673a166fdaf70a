"""Accounts: creating users, sign-up (open or by invite), passwords, invites, notices.

An agency officer's account names its agency, but agencies sit above accounts: this module
checks that only an officer names one and passes the id on; the agency's own checks and the
officer row are agencies.service's (check_invite, add_officer), called by whoever creates
the account, in the same transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.accounts import sessions
from doorwarden.accounts.models import Invite, SecurityNotice, User
from doorwarden.accounts.secrets import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    hash_password,
    new_secret,
    secret_digest,
    verify_password,
)
from doorwarden.audit.service import Actor, RequestContext, record
from doorwarden.audit.tags import Tag
from doorwarden.config import PasswordCost, Settings, SignupMode
from doorwarden.errors import Conflict, Forbidden, InvalidInput, NotFound
from doorwarden.policy import Principal
from doorwarden.policy import confirm_invite as confirm_invite_rule
from doorwarden.roles import Role

INVITE_LIFETIME = timedelta(days=7)


def normalise_email(email: str) -> str:
    return email.strip().lower()


def actor_of(user: User) -> Actor:
    return Actor(user_id=user.id, role=str(user.role))


def check_password_policy(password: str, *, email: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"Use at least {MIN_PASSWORD_LENGTH} characters.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(f"Use at most {MAX_PASSWORD_LENGTH} characters.")
    if password.strip().lower() == normalise_email(email):
        raise InvalidInput("The password must not be your e-mail address.")


async def get_user(db: AsyncSession, user_id: uuid.UUID) -> User:
    user = await db.get(User, user_id)
    if user is None:
        raise NotFound("No such user.")
    return user


async def find_user_by_email(db: AsyncSession, email: str) -> User | None:
    query = select(User).where(User.email == normalise_email(email))
    return (await db.scalars(query)).first()


def check_agency_named(role: Role, agency_id: uuid.UUID | None, *, what: str) -> None:
    if (role is Role.agency_officer) != (agency_id is not None):
        raise InvalidInput(f"An agency officer {what} needs an agency, and only it does.")


async def create_user(
    db: AsyncSession,
    *,
    email: str,
    display_name: str,
    password: str,
    role: Role,
    password_cost: PasswordCost,
    agency_id: uuid.UUID | None = None,
) -> User:
    """`agency_id` (an officer's, and only an officer's) is checked for presence only: the
    caller then makes the account its agency's officer with agencies.service.add_officer,
    which checks that the agency exists."""
    email = normalise_email(email)
    check_password_policy(password, email=email)
    check_agency_named(role, agency_id, what="account")
    if await find_user_by_email(db, email) is not None:
        raise Conflict("An account with this e-mail address already exists.")
    user = User(
        email=email,
        display_name=display_name.strip(),
        password_hash=await hash_password(password, password_cost),
        role=role,
    )
    db.add(user)
    await db.flush()
    return user


async def replace_password_hash(
    db: AsyncSession, user_id: uuid.UUID, old_hash: str, new_hash: str
) -> None:
    """The same password re-hashed at the current cost; only if the hash is still the one
    that was checked (a password changed meanwhile wins)."""
    await db.execute(
        update(User)
        .where(User.id == user_id, User.password_hash == old_hash)
        .values(password_hash=new_hash)
    )


async def _claim_invite(db: AsyncSession, code: str, now: datetime) -> Invite:
    query = select(Invite).where(Invite.code_hash == secret_digest(code.strip()))
    invite = (await db.scalars(query.with_for_update())).first()
    if invite is None or invite.used_at is not None or invite.expires_at <= now:
        raise Forbidden("This invite code is not valid, already used or expired.")
    if invite.confirmed_at is None:
        raise InviteUnconfirmed(
            "This invite waits for a second operator's confirmation: ask again once it has one."
        )
    return invite


class InviteUnconfirmed(Forbidden):
    """Policy rule 8: a proposed staff invite is inert until a second operator confirms."""

    code = "invite_unconfirmed"


@dataclass(frozen=True)
class SignedUp:
    user: User
    # The agency the invite named (an officer's invite): the caller adds the officer row
    # (agencies.service.add_officer) before the transaction ends.
    agency_id: uuid.UUID | None
    officer_admin: bool = False  # the invite makes the agency's officer-administrator


async def sign_up(
    db: AsyncSession,
    settings: Settings,
    *,
    email: str,
    display_name: str,
    password: str,
    invite_code: str | None,
    ctx: RequestContext,
    now: datetime,
) -> SignedUp:
    invite = None
    if invite_code:
        invite = await _claim_invite(db, invite_code, now)
    elif settings.signup_mode is SignupMode.invite:
        raise Forbidden("Sign-up on this instance needs an invite code from its operator.")
    user = await create_user(
        db,
        email=email,
        display_name=display_name,
        password=password,
        role=invite.role if invite else Role.resident,
        password_cost=settings.password_cost,
        agency_id=invite.agency_id if invite else None,
    )
    if invite is not None:
        invite.used_at, invite.used_by = now, user.id
    record(
        db,
        tag=Tag.account_signup,
        actor=actor_of(user),
        ctx=ctx,
        target_type="user",
        target_id=user.id,
        agency_id=invite.agency_id if invite else None,
        extra={"role": str(user.role), "invite_id": str(invite.id) if invite else None},
    )
    return SignedUp(
        user=user,
        agency_id=invite.agency_id if invite else None,
        officer_admin=bool(invite and invite.officer_admin),
    )


def check_invite_role(role: Role, agency_id: uuid.UUID | None) -> None:
    if role is Role.operator_admin:
        raise InvalidInput(
            "Operator admins are created on the server: doorwarden admin create-user."
        )
    check_agency_named(role, agency_id, what="invite")


async def create_invite(
    db: AsyncSession,
    *,
    role: Role,
    agency_id: uuid.UUID | None,
    actor: User,
    ctx: RequestContext,
    now: datetime,
    confirmed: bool = True,
    officer_admin: bool = False,
) -> tuple[Invite, str]:
    """Call agencies.service.check_invite (an operator's invite) or invite_officer (an
    officer-administrator's) first: they make these checks, the ones that need agencies,
    and say whether the invite needs a second operator (`confirmed=False`: proposed)."""
    check_invite_role(role, agency_id)
    code = new_secret("dwi_", 18)
    invite = Invite(
        code_hash=secret_digest(code),
        role=role,
        agency_id=agency_id,
        created_by=actor.id,
        created_at=now,
        expires_at=now + INVITE_LIFETIME,
        confirmed_at=now if confirmed else None,
        officer_admin=officer_admin,
    )
    db.add(invite)
    await db.flush()
    record(
        db,
        tag=Tag.admin_invite_create,
        actor=actor_of(actor),
        ctx=ctx,
        target_type="invite",
        target_id=invite.id,
        agency_id=agency_id,
        extra={"role": str(role), "confirmed": confirmed, "officer_admin": officer_admin},
    )
    return invite, code


async def pending_invites(db: AsyncSession, now: datetime) -> Sequence[Invite]:
    """Proposed invites waiting for a second operator, newest first."""
    query = select(Invite).where(
        Invite.confirmed_at.is_(None), Invite.used_at.is_(None), Invite.expires_at > now
    )
    return (await db.scalars(query.order_by(Invite.created_at.desc()).limit(100))).all()


async def confirm_invite(
    db: AsyncSession,
    *,
    invite_id: uuid.UUID,
    principal: Principal,
    actor: User,
    ctx: RequestContext,
    now: datetime,
) -> Invite:
    """A second operator confirms a proposed invite (policy rule 8: never its proposer)."""
    invite = await db.get(Invite, invite_id, with_for_update=True)
    if invite is None or invite.used_at is not None or invite.expires_at <= now:
        raise NotFound("No such invite waiting for confirmation.")
    decision = confirm_invite_rule(
        principal, proposed_by=invite.created_by, already_confirmed=invite.confirmed_at is not None
    )
    if not decision.allowed:
        error = Conflict(decision.reason[:1].upper() + decision.reason[1:] + ".")
        error.code = decision.code or "conflict"
        raise error
    invite.confirmed_at, invite.confirmed_by = now, actor.id
    record(
        db,
        tag=Tag.admin_invite_create,  # the second half of the same act
        actor=actor_of(actor),
        ctx=ctx,
        target_type="invite",
        target_id=invite.id,
        agency_id=invite.agency_id,
        extra={"role": str(invite.role), "confirmed": True, "proposed_by": str(invite.created_by)},
    )
    return invite


async def change_password(
    db: AsyncSession,
    *,
    user: User,
    current_password: str,
    new_password: str,
    password_cost: PasswordCost,
    keep_session_id: uuid.UUID | None,
    ctx: RequestContext,
    now: datetime,
) -> int:
    """Returns how many other sessions were ended."""
    if not await verify_password(user.password_hash, current_password):
        raise Forbidden("The current password is not correct.")
    check_password_policy(new_password, email=user.email)
    user.password_hash = await hash_password(new_password, password_cost)
    user.password_changed_at = now
    ended = await sessions.end_other_sessions(db, user.id, keep=keep_session_id)
    record(
        db,
        tag=Tag.account_password_change,
        actor=actor_of(user),
        ctx=ctx,
        target_type="user",
        target_id=user.id,
        extra={"sessions_ended": ended},
    )
    return ended


def add_notice(
    db: AsyncSession, *, user_id: uuid.UUID, kind: str, message: str, now: datetime
) -> None:
    db.add(SecurityNotice(user_id=user_id, kind=kind, message=message, created_at=now))


async def list_notices(
    db: AsyncSession, user_id: uuid.UUID, *, unread_only: bool = False
) -> Sequence[SecurityNotice]:
    query = select(SecurityNotice).where(SecurityNotice.user_id == user_id)
    if unread_only:
        query = query.where(SecurityNotice.read_at.is_(None))
    return (await db.scalars(query.order_by(SecurityNotice.created_at.desc()).limit(50))).all()


async def mark_notices_read(db: AsyncSession, user_id: uuid.UUID, now: datetime) -> None:
    await db.execute(
        update(SecurityNotice)
        .where(SecurityNotice.user_id == user_id, SecurityNotice.read_at.is_(None))
        .values(read_at=now)
    )


async def list_users(db: AsyncSession, *, limit: int = 200, offset: int = 0) -> Sequence[User]:
    return (
        await db.scalars(select(User).order_by(User.created_at).limit(limit).offset(offset))
    ).all()


async def set_active(
    db: AsyncSession, *, user: User, active: bool, actor: User, ctx: RequestContext
) -> None:
    if user.id == actor.id and not active:
        raise InvalidInput("You cannot deactivate your own account.")
    user.is_active = active
    if not active:
        await sessions.end_other_sessions(db, user.id, keep=None)
    record(
        db,
        tag=Tag.admin_user_update,
        actor=actor_of(actor),
        ctx=ctx,
        target_type="user",
        target_id=user.id,
        extra={"is_active": active},
    )
