"""Agencies and officers. Verification by an operator admin is a precondition for every
legal request an agency will make (the legal process builds on this)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden import geo
from doorwarden.accounts.models import User
from doorwarden.accounts.service import actor_of, check_invite_role
from doorwarden.agencies.governance.models import MunicipalApproval
from doorwarden.agencies.models import Agency, AgencyKind, AgencyOfficer
from doorwarden.audit.service import RequestContext, record
from doorwarden.audit.tags import Tag
from doorwarden.errors import Conflict, Forbidden, InvalidInput, NotFound
from doorwarden.policy import (
    Decision,
    Principal,
    distinct_operator,
    invite_needs_confirmation,
    officer_invite,
    operator_invite,
)
from doorwarden.roles import Role


def require(decision: Decision) -> None:
    """A rule-8 decision as an error: 409 with the policy's code."""
    if not decision.allowed:
        error = Conflict(decision.reason[:1].upper() + decision.reason[1:] + ".")
        error.code = decision.code or "conflict"
        raise error


async def approval_recorders(db: AsyncSession, agency_id: uuid.UUID) -> set[uuid.UUID | None]:
    """Whoever recorded any of the agency's municipal approvals (revoked ones too)."""
    query = select(MunicipalApproval.recorded_by).where(MunicipalApproval.agency_id == agency_id)
    return set((await db.scalars(query)).all())


async def officer_agency(db: AsyncSession, user_id: uuid.UUID) -> uuid.UUID | None:
    row = await db.get(AgencyOfficer, user_id)
    return row.agency_id if row else None


def _area_text(area: dict[str, Any] | None) -> str | None:
    if area is None:
        return None
    try:
        return geo.dumps(geo.parse_area(area))
    except geo.GeoError as exc:
        error = InvalidInput(f"The jurisdiction area is not usable: {exc}.")
        error.code = "invalid_area"
        raise error from None


async def create_agency(
    db: AsyncSession,
    *,
    name: str,
    jurisdiction: str,
    actor: User,
    ctx: RequestContext,
    kind: AgencyKind = AgencyKind.police,
    jurisdiction_area: dict[str, Any] | None = None,
    contacts: list[dict[str, Any]] | None = None,
) -> Agency:
    name = name.strip()
    if (await db.scalars(select(Agency).where(Agency.name == name))).first() is not None:
        raise Conflict("An agency with this name already exists.")
    agency = Agency(
        name=name,
        jurisdiction=jurisdiction.strip(),
        kind=kind,
        jurisdiction_area=_area_text(jurisdiction_area),
        contacts=contacts or [],
    )
    db.add(agency)
    await db.flush()
    record(
        db,
        tag=Tag.agency_create,
        actor=actor_of(actor),
        ctx=ctx,
        agency_id=agency.id,
        target_type="agency",
        target_id=agency.id,
        extra={"name": name},
    )
    return agency


async def get_agency(db: AsyncSession, agency_id: uuid.UUID) -> Agency:
    agency = await db.get(Agency, agency_id)
    if agency is None:
        raise NotFound("No such agency.")
    return agency


async def list_agencies(db: AsyncSession) -> Sequence[Agency]:
    return (await db.scalars(select(Agency).order_by(Agency.name))).all()


async def agency_names(db: AsyncSession, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Each agency's name, by id (one query, for lists of requests)."""
    wanted = set(ids)
    if not wanted:
        return {}
    rows = await db.execute(select(Agency.id, Agency.name).where(Agency.id.in_(wanted)))
    return {row[0]: row[1] for row in rows}


async def update_agency(
    db: AsyncSession,
    *,
    agency: Agency,
    changes: dict[str, Any],
    actor: User,
    ctx: RequestContext,
) -> Agency:
    """Change the given fields (jurisdiction name and area, kind, contacts)."""
    if "jurisdiction_area" in changes:
        agency.jurisdiction_area = _area_text(changes["jurisdiction_area"])
    if changes.get("jurisdiction") is not None:
        agency.jurisdiction = str(changes["jurisdiction"]).strip()
    if changes.get("kind") is not None:
        agency.kind = AgencyKind(changes["kind"])
    if changes.get("contacts") is not None:
        agency.contacts = list(changes["contacts"])
    record(
        db,
        tag=Tag.agency_update,
        actor=actor_of(actor),
        ctx=ctx,
        agency_id=agency.id,
        target_type="agency",
        target_id=agency.id,
        extra={"fields": sorted(changes)},
    )
    return agency


async def verify_agency(
    db: AsyncSession, *, agency: Agency, actor: User, ctx: RequestContext, now: datetime
) -> Agency:
    if agency.verified_at is None:
        # Rule 8: not the operator who recorded its approval.
        require(distinct_operator(actor.id, await approval_recorders(db, agency.id)))
        agency.verified_at, agency.verified_by = now, actor.id
        record(
            db,
            tag=Tag.agency_verify,
            actor=actor_of(actor),
            ctx=ctx,
            agency_id=agency.id,
            target_type="agency",
            target_id=agency.id,
        )
    return agency


async def has_officer_admin(db: AsyncSession, agency_id: uuid.UUID) -> bool:
    query = (
        select(AgencyOfficer.user_id)
        .join(User, User.id == AgencyOfficer.user_id)
        .where(AgencyOfficer.agency_id == agency_id, AgencyOfficer.is_admin, User.is_active)
    )
    return (await db.scalars(query.limit(1))).first() is not None


async def check_invite(db: AsyncSession, *, role: Role, agency_id: uuid.UUID | None) -> bool:
    """Before an operator's accounts.service.create_invite: its checks of the role (their
    errors come first), that the agency an officer's invite names exists (the invite's
    foreign key would otherwise fail at the flush), and policy rule 8. Returns whether the
    invite is complete now; False: it is a proposal a second operator must confirm. An
    operator's officer invite makes the agency's first officer-administrator."""
    check_invite_role(role, agency_id)
    if agency_id is not None:
        await get_agency(db, agency_id)
        require(operator_invite(role, agency_has_admin=await has_officer_admin(db, agency_id)))
    return not invite_needs_confirmation(role)


async def check_officer_invite(db: AsyncSession, *, principal: Principal) -> uuid.UUID:
    """An officer inviting another officer of their agency (the route checked the agency
    and its standing): only as its officer-administrator (rule 8). Returns the agency."""
    row = await db.get(AgencyOfficer, principal.user_id) if principal.user_id else None
    decision = officer_invite(principal, is_admin=bool(row and row.is_admin))
    if not decision.allowed or row is None:
        raise Forbidden(decision.reason[:1].upper() + decision.reason[1:] + ".")
    return row.agency_id


async def add_officer(
    db: AsyncSession, *, user: User, agency_id: uuid.UUID, is_admin: bool = False
) -> None:
    """Make a new agency officer account (accounts.service.create_user, or an officer's
    invite redeemed by sign_up) its agency's officer, in the transaction that creates it.
    No audit event of its own: the account's creation is the event."""
    await get_agency(db, agency_id)
    db.add(AgencyOfficer(user_id=user.id, agency_id=agency_id, is_admin=is_admin))


async def list_officers(db: AsyncSession, agency_id: uuid.UUID) -> Sequence[User]:
    query = (
        select(User)
        .join(AgencyOfficer, AgencyOfficer.user_id == User.id)
        .where(AgencyOfficer.agency_id == agency_id)
        .order_by(User.email)
    )
    return (await db.scalars(query)).all()
