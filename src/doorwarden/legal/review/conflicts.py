"""Who may not review an agency's requests (policy rule 8, `review_conflict`): the facts
the policy decides on, gathered here. On the agency's side: whoever verified it, recorded
any of its municipal approvals, its officers, and whoever invited or confirmed one of
them. On the reviewer's side: the reviewer and whoever invited or confirmed their account.
A reviewer made on the server's shell has no invite: only they are on their side."""

from __future__ import annotations

import uuid

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.accounts.models import Invite, User
from doorwarden.agencies.models import Agency, AgencyOfficer
from doorwarden.agencies.service import approval_recorders
from doorwarden.errors import Conflict
from doorwarden.policy import review_conflict


class ConflictOfInterest(Conflict):
    code = "conflict_of_interest"


async def _inviters(db: AsyncSession, where: ColumnElement[bool]) -> set[uuid.UUID | None]:
    rows = await db.execute(select(Invite.created_by, Invite.confirmed_by).where(where))
    return {person for row in rows for person in row}


async def agency_side(db: AsyncSession, agency: Agency) -> set[uuid.UUID | None]:
    officers = set(
        (
            await db.scalars(
                select(AgencyOfficer.user_id).where(AgencyOfficer.agency_id == agency.id)
            )
        ).all()
    )
    people: set[uuid.UUID | None] = {agency.verified_by, *officers}
    people |= await approval_recorders(db, agency.id)
    # Invites naming the agency, and whatever invites its officers redeemed.
    named = Invite.agency_id == agency.id
    people |= await _inviters(db, or_(named, Invite.used_by.in_(officers)) if officers else named)
    return people


async def reviewer_side(db: AsyncSession, reviewer: User) -> set[uuid.UUID | None]:
    return {reviewer.id} | await _inviters(db, Invite.used_by == reviewer.id)


async def check_no_conflict(db: AsyncSession, *, reviewer: User, agency: Agency) -> None:
    """Refuse (409 conflict_of_interest) a decision by a reviewer with anyone in common
    with the agency's setting-up."""
    decision = review_conflict(await reviewer_side(db, reviewer), await agency_side(db, agency))
    if not decision.allowed:
        raise ConflictOfInterest(decision.reason[:1].upper() + decision.reason[1:] + ".")
