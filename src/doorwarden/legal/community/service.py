"""Community requests: voluntary, small, public, and off when the operator says so.

An agency asks the residents of an area of at most `community_max_square_miles` (and at
least `community_min_square_miles`, reaching at least `community_min_households` homes
with cameras, so that a request never points at one home), inside
its jurisdiction, for clips of a window of at most `community_max_hours`. The households
with cameras in the area are told; each chooses clip by clip what to share, or ignores
it. The agency sees only the clips shared (as packages it builds when it wants them):
never who was asked, who ignored, or where a sharer lives. Being enrolled in the agency's
camera programme changes none of this.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden import geo
from doorwarden.accounts.models import User
from doorwarden.accounts.service import actor_of
from doorwarden.agencies.governance.service import instance_policy
from doorwarden.agencies.models import Agency
from doorwarden.audit.service import RequestContext, record
from doorwarden.audit.tags import Tag
from doorwarden.clips.models import Clip, ClipStatus
from doorwarden.devices.area import households_in
from doorwarden.errors import Conflict, DomainError, InvalidInput, NotFound
from doorwarden.legal.community.models import CommunityRecipient, CommunityShare
from doorwarden.legal.disclosure.models import Package, PackageKind
from doorwarden.legal.disclosure.outcomes import Effects, tell_disclosure
from doorwarden.legal.disclosure.service import build_package
from doorwarden.legal.models import LegalRequest, NoticeKind, RequestKind, RequestStatus
from doorwarden.legal.notices import notify
from doorwarden.legal.requests.schemas import CommunityIn
from doorwarden.legal.requests.service import Filing, check_window, new_request, refuse_duplicate
from doorwarden.legal.scope import parse_area

MAX_SHARE_AT_ONCE = 100


class CommunityDisabled(DomainError):
    status_code = 403
    code = "community_requests_disabled"


class AreaTooLarge(InvalidInput):
    code = "area_too_large"


class AreaTooSmall(InvalidInput):
    code = "area_too_small"


class TooFewHouseholds(Conflict):
    """Fewer homes with cameras in the area than `community_min_households`. One refusal,
    word for word the same for 0 homes as for the minimum less one: a different answer
    would tell the agency how many cameras (or whether one) the area holds."""

    code = "too_few_households"


class OutOfJurisdiction(InvalidInput):
    code = "out_of_jurisdiction"


class NoJurisdiction(Conflict):
    code = "no_jurisdiction"


class RequestClosed(Conflict):
    code = "request_closed"


class NothingShared(Conflict):
    code = "nothing_shared"


async def submit_community(db: AsyncSession, filing: Filing, *, body: CommunityIn) -> LegalRequest:
    if not (await instance_policy(db)).community_requests_enabled:
        raise CommunityDisabled(
            "Community requests are switched off on this instance by its operator."
        )
    check_window(body, filing.now, max_hours=filing.settings.community_max_hours)
    area = parse_area(body.area)
    square_miles = geo.square_miles(geo.area_km2(area))
    smallest = filing.settings.community_min_square_miles
    if square_miles < smallest:  # a box around one door would ask one home
        raise AreaTooSmall(
            f"The area is {square_miles:.4f} square miles; at least {smallest:g} must be "
            "asked, so that a community request never points at one home.",
            details={"square_miles": round(square_miles, 4), "min_square_miles": smallest},
        )
    limit = filing.settings.community_max_square_miles
    if square_miles > limit:
        raise AreaTooLarge(
            f"The area is {square_miles:.2f} square miles; at most {limit:g} may be asked.",
            details={"square_miles": round(square_miles, 4), "max_square_miles": limit},
        )
    if filing.agency.jurisdiction_area is None:
        raise NoJurisdiction(
            "The agency has no jurisdiction area on file: an operator must record it first."
        )
    jurisdiction = geo.parse_area(filing.agency.jurisdiction_area)
    if not jurisdiction.covers(area):
        raise OutOfJurisdiction(
            f"The area is not entirely within the agency's jurisdiction "
            f"({filing.agency.jurisdiction})."
        )
    await refuse_duplicate(db, filing.agency.id, RequestKind.community, body.case_number)
    recipients = await households_in(db, area)
    fewest = filing.settings.community_min_households
    if len(recipients) < fewest:
        # Nothing about the number found: not in the message, the details or the status.
        raise TooFewHouseholds(
            f"A community request must reach at least {fewest} homes with cameras; this "
            "one cannot be sent. Ask a larger area.",
            details={"min_households": fewest},
        )
    request = new_request(filing, RequestKind.community, body, body.case_number)
    request.public_text = body.public_text
    request.area, request.area_km2 = geo.dumps(area), geo.area_km2(area)
    db.add(request)
    await db.flush()
    for household_id in recipients:
        db.add(
            CommunityRecipient(
                request_id=request.id, household_id=household_id, notified_at=filing.now
            )
        )
    record(
        db,
        tag=Tag.legal_request_submit,
        actor=actor_of(filing.officer),
        ctx=filing.ctx,
        agency_id=request.agency_id,
        target_type="legal_request",
        target_id=request.id,
        extra={
            "kind": "community",
            "case_number": request.case_number,
            "area_km2": round(request.area_km2, 4),
            "households_asked": len(recipients),
        },
        occurred_at=filing.now,
    )
    await notify(
        db,
        request=request,
        household_ids=recipients,
        kind=NoticeKind.community,
        message=f"{filing.agency.name} asks residents near you to share clips from "
        f"{request.window_start:%Y-%m-%d %H:%M} to {request.window_end:%Y-%m-%d %H:%M} UTC "
        f"(case {request.case_number}): {request.public_text} Sharing is your choice, clip "
        "by clip; if you ignore this, the agency is not told.",
        ctx=filing.ctx,
        now=filing.now,
    )
    return request


async def recipient(
    db: AsyncSession, request_id: uuid.UUID, household_id: uuid.UUID
) -> tuple[LegalRequest, CommunityRecipient]:
    """The community request as one household received it, or NotFound (a household
    that was not asked cannot tell the request exists from this)."""
    row = await db.get(CommunityRecipient, (request_id, household_id))
    request = await db.get(LegalRequest, request_id)
    if row is None or request is None or request.kind is not RequestKind.community:
        raise NotFound("No such community request for this household.")
    return request, row


async def received(db: AsyncSession, household_id: uuid.UUID) -> Sequence[LegalRequest]:
    query = (
        select(LegalRequest)
        .join(CommunityRecipient, CommunityRecipient.request_id == LegalRequest.id)
        .where(CommunityRecipient.household_id == household_id)
        .order_by(LegalRequest.created_at.desc())
    )
    return (await db.scalars(query)).all()


async def shareable_clips(
    db: AsyncSession, request: LegalRequest, household_id: uuid.UUID
) -> Sequence[Clip]:
    """The household's verified clips that overlap the request's window."""
    query = (
        select(Clip)
        .where(
            Clip.household_id == household_id,
            Clip.status == ClipStatus.verified,
            Clip.start_at < request.window_end,
            Clip.end_at > request.window_start,
        )
        .order_by(Clip.start_at)
    )
    return (await db.scalars(query)).all()


async def shared_ids(
    db: AsyncSession, request_id: uuid.UUID, household_id: uuid.UUID | None = None
) -> set[uuid.UUID]:
    query = select(CommunityShare.clip_id).where(CommunityShare.request_id == request_id)
    if household_id is not None:
        query = query.where(CommunityShare.household_id == household_id)
    return set((await db.scalars(query)).all())


async def share(
    db: AsyncSession,
    *,
    request_id: uuid.UUID,
    household_id: uuid.UUID,
    clip_ids: Collection[uuid.UUID],
    owner: User,
    ctx: RequestContext,
    now: datetime,
) -> list[uuid.UUID]:
    """Share these clips with the agency; the ids newly shared (sharing twice is a no-op)."""
    request, row = await recipient(db, request_id, household_id)
    if request.status is not RequestStatus.open:
        raise RequestClosed("This community request is closed: nothing more can be shared.")
    if not clip_ids or len(clip_ids) > MAX_SHARE_AT_ONCE:
        raise InvalidInput(f"Choose between 1 and {MAX_SHARE_AT_ONCE} clips to share.")
    allowed = {c.id: c for c in await shareable_clips(db, request, household_id)}
    outside = set(clip_ids) - set(allowed)
    if outside:
        error = InvalidInput(
            "Only your own clips from the requested window can be shared.",
            details={"clips": sorted(str(c) for c in outside)},
        )
        error.code = "clip_not_shareable"
        raise error
    already = await shared_ids(db, request.id, household_id)
    new = [c for c in sorted(set(clip_ids)) if c not in already]
    for clip_id in new:
        db.add(
            CommunityShare(
                request_id=request.id,
                clip_id=clip_id,
                household_id=household_id,
                shared_by=owner.id,
                shared_at=now,
            )
        )
        record(
            db,
            tag=Tag.clip_share,
            actor=actor_of(owner),
            ctx=ctx,
            household_id=household_id,
            agency_id=request.agency_id,
            target_type="clip",
            target_id=clip_id,
            extra={"request": str(request.id), "case_number": request.case_number},
            occurred_at=now,
        )
    if new and row.responded_at is None:
        row.responded_at = now
    return new


async def shares_for_agency(db: AsyncSession, request: LegalRequest) -> Sequence[Clip]:
    """What the agency may see of a community request: the shared clips, nothing else."""
    query = (
        select(Clip)
        .join(CommunityShare, CommunityShare.clip_id == Clip.id)
        .where(CommunityShare.request_id == request.id, Clip.status == ClipStatus.verified)
        .order_by(Clip.start_at)
    )
    return (await db.scalars(query)).all()


async def build_shares_package(
    db: AsyncSession, *, request: LegalRequest, officer: User, effects: Effects
) -> Package:
    """A package of every clip shared so far (the agency asks when it wants one). Each
    household whose clips it holds is told, clip by clip, that the agency now has them."""
    if request.kind is not RequestKind.community:
        raise NotFound("Only community requests have shared clips.")
    clips = await shares_for_agency(db, request)
    if not clips:
        raise NothingShared("No resident has shared a clip with this request (yet).")
    package = await build_package(
        db,
        request=request,
        kind=PackageKind.community,
        clips=clips,
        subscriber_households=[],
        store=effects.store,
        signer=effects.signer,
        settings=effects.settings,
        actor=actor_of(officer),
        ctx=effects.ctx,
        now=effects.now,
    )
    agency = await db.get(Agency, request.agency_id)
    assert agency is not None  # noqa: S101 - a foreign key
    heading = f"{agency.name}'s community request (case {request.case_number})"
    await tell_disclosure(
        db,
        request,
        package,
        sorted({c.household_id for c in clips}),
        clips,
        heading,
        actor_of(officer),
        effects,
        opening=f"{heading}: the agency has received the clips your household shared.",
    )
    return package


async def response_counts(db: AsyncSession, request_id: uuid.UUID) -> tuple[int, int]:
    """(households asked, households that shared): for the transparency report only."""
    asked = await db.scalar(select(func.count()).where(CommunityRecipient.request_id == request_id))
    responded = await db.scalar(
        select(func.count()).where(
            CommunityRecipient.request_id == request_id,
            CommunityRecipient.responded_at.is_not(None),
        )
    )
    return int(asked or 0), int(responded or 0)
