"""Whether an agency may act: verified by an operator and, where the instance requires
it, with a municipal approval on file that is neither revoked nor expired.

Read once per request into the officer's Principal, so the policy module decides every
officer action on it (policy rule 6) and no route can forget to ask.

A flagged agency (it let an emergency request go unratified) keeps its standing, but loses
the emergency's trust: its emergency requests release nothing on approval alone, only once
their proof is filed (`emergency_waits_for_proof`; legal/disclosure/outcomes.py).
"""

from __future__ import annotations

import uuid
from datetime import date
from enum import StrEnum

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.agencies.governance.models import MunicipalApproval
from doorwarden.agencies.models import Agency


class Standing(StrEnum):
    active = "active"
    unverified = "unverified"
    no_approval = "no_approval"


async def has_approval(db: AsyncSession, agency_id: uuid.UUID, today: date) -> bool:
    query = select(MunicipalApproval.id).where(
        MunicipalApproval.agency_id == agency_id,
        MunicipalApproval.revoked_at.is_(None),
        MunicipalApproval.approved_on <= today,
        or_(MunicipalApproval.expires_on.is_(None), MunicipalApproval.expires_on >= today),
    )
    return (await db.scalar(query.limit(1))) is not None


async def standing_of(
    db: AsyncSession, agency: Agency, *, require_approval: bool, today: date
) -> Standing:
    if agency.verified_at is None:
        return Standing.unverified
    if require_approval and not await has_approval(db, agency.id, today):
        return Standing.no_approval
    return Standing.active


def emergency_waits_for_proof(agency: Agency) -> bool:
    """Whether the agency's emergency disclosures wait for their proof: it has been
    flagged for an unratified emergency (the flag is public and stays)."""
    return agency.flagged_at is not None
