"""Households and their members."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.accounts.models import User
from doorwarden.accounts.service import actor_of, find_user_by_email
from doorwarden.audit.service import RequestContext, record
from doorwarden.audit.tags import Tag
from doorwarden.db import utcnow
from doorwarden.errors import Conflict, InvalidInput, NotFound
from doorwarden.geo import cell_of
from doorwarden.households.addresses import address_key
from doorwarden.households.membership_models import MembershipPeriod
from doorwarden.households.models import Household, HouseholdMember
from doorwarden.roles import HouseholdRole, Role

MAX_MEMBERS = 50


async def memberships(db: AsyncSession, user_id: uuid.UUID) -> dict[uuid.UUID, HouseholdRole]:
    query = select(HouseholdMember.household_id, HouseholdMember.role).where(
        HouseholdMember.user_id == user_id
    )
    return {row.household_id: row.role for row in await db.execute(query)}


async def create_household(
    db: AsyncSession,
    *,
    owner: User,
    name: str,
    address: str,
    latitude: float | None,
    longitude: float | None,
    time_zone: str,
    ctx: RequestContext,
) -> Household:
    household = Household(
        name=name.strip(),
        address=address.strip(),
        address_key=address_key(address),
        latitude=latitude,
        longitude=longitude,
        location_cell=cell_of(latitude, longitude),
        time_zone=time_zone,
    )
    db.add(household)
    await db.flush()
    joined = utcnow()
    db.add(
        HouseholdMember(
            household_id=household.id,
            user_id=owner.id,
            role=HouseholdRole.owner,
            added_by=owner.id,
            added_at=joined,
        )
    )
    _open_period(db, household.id, owner.id, joined)
    record(
        db,
        tag=Tag.household_create,
        actor=actor_of(owner),
        ctx=ctx,
        household_id=household.id,
        target_type="household",
        target_id=household.id,
    )
    return household


async def get_household(db: AsyncSession, household_id: uuid.UUID) -> Household:
    household = await db.get(Household, household_id)
    if household is None:
        raise NotFound("No such household.")
    return household


def zone_of(household: Household) -> ZoneInfo:
    """The household's zone, in which its pages show times; the zone is checked when it
    is set, so UTC is only a guard against a row written some other way."""
    try:
        return ZoneInfo(household.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


async def households_of(
    db: AsyncSession, user_id: uuid.UUID
) -> Sequence[tuple[Household, HouseholdRole]]:
    query = (
        select(Household, HouseholdMember.role)
        .join(HouseholdMember, HouseholdMember.household_id == Household.id)
        .where(HouseholdMember.user_id == user_id)
        .order_by(Household.name)
    )
    return (await db.execute(query)).all()


async def update_household(
    db: AsyncSession,
    *,
    household: Household,
    changes: dict[str, object],
    actor: User,
    ctx: RequestContext,
) -> Household:
    """The household's own row. Its cameras carry a copy of its location (area queries
    read it): callers go through devices.service.update_household, which keeps it."""
    for field, value in changes.items():
        setattr(household, field, value.strip() if isinstance(value, str) else value)
    household.location_cell = cell_of(household.latitude, household.longitude)
    household.address_key = address_key(household.address)
    record(
        db,
        tag=Tag.household_update,
        actor=actor_of(actor),
        ctx=ctx,
        household_id=household.id,
        target_type="household",
        target_id=household.id,
        extra={"fields": sorted(changes)},
    )
    return household


async def list_members(
    db: AsyncSession, household_id: uuid.UUID
) -> Sequence[tuple[HouseholdMember, User]]:
    query = (
        select(HouseholdMember, User)
        .join(User, User.id == HouseholdMember.user_id)
        .where(HouseholdMember.household_id == household_id)
        .order_by(HouseholdMember.added_at)
    )
    return (await db.execute(query)).all()


async def add_member(
    db: AsyncSession, *, household_id: uuid.UUID, email: str, actor: User, ctx: RequestContext
) -> tuple[HouseholdMember, User]:
    """Adds an existing resident account as a shared user (live view and history only)."""
    user = await find_user_by_email(db, email)
    # The same answer whether the account is missing or not a resident: staff and agency
    # accounts can never join a household (policy rule 1), and we do not say which exist.
    if user is None or user.role is not Role.resident or not user.is_active:
        raise NotFound("No resident account with that e-mail address.")
    if await db.get(HouseholdMember, (household_id, user.id)) is not None:
        raise Conflict("That person is already a member of this household.")
    count = await db.scalar(
        select(func.count())
        .select_from(HouseholdMember)
        .where(HouseholdMember.household_id == household_id)
    )
    if (count or 0) >= MAX_MEMBERS:
        raise Conflict(f"A household has at most {MAX_MEMBERS} members.")
    joined = utcnow()
    member = HouseholdMember(
        household_id=household_id,
        user_id=user.id,
        role=HouseholdRole.shared,
        added_by=actor.id,
        added_at=joined,
    )
    db.add(member)
    # The new member's key (if any) is a recipient of the clips recorded from now on:
    # cameras hear of it before they seal their next end-to-end clip (docs/e2e.md).
    _open_period(db, household_id, user.id, joined)
    await db.flush()
    record(
        db,
        tag=Tag.household_member_add,
        actor=actor_of(actor),
        ctx=ctx,
        household_id=household_id,
        target_type="user",
        target_id=user.id,
        extra={"role": str(HouseholdRole.shared)},
    )
    return member, user


async def remove_member(
    db: AsyncSession,
    *,
    household_id: uuid.UUID,
    user_id: uuid.UUID,
    actor: User,
    ctx: RequestContext,
) -> None:
    member = await db.get(HouseholdMember, (household_id, user_id))
    if member is None:
        raise NotFound("No such member.")
    if member.role is HouseholdRole.owner:
        raise InvalidInput("The owner cannot be removed from the household.")
    await db.delete(member)
    # From now on their key is no recipient of this household's end-to-end clips: cameras
    # fetch the new member set before they seal (docs/e2e.md), and a clip recorded after
    # this and still wrapped to their key is refused (clips/ingest.py).
    await close_periods(db, household_id, user_id, utcnow())
    record(
        db,
        tag=Tag.household_member_remove,
        actor=actor_of(actor),
        ctx=ctx,
        household_id=household_id,
        target_type="user",
        target_id=user_id,
    )


def _open_period(
    db: AsyncSession, household_id: uuid.UUID, user_id: uuid.UUID, at: datetime
) -> None:
    db.add(MembershipPeriod(household_id=household_id, user_id=user_id, joined_at=at))


async def close_periods(
    db: AsyncSession, household_id: uuid.UUID, user_id: uuid.UUID, at: datetime
) -> None:
    """The user's stay in the household ends `at` (membership_models.py)."""
    open_periods = await db.scalars(
        select(MembershipPeriod).where(
            MembershipPeriod.household_id == household_id,
            MembershipPeriod.user_id == user_id,
            MembershipPeriod.left_at.is_(None),
        )
    )
    for period in open_periods:
        period.left_at = at
