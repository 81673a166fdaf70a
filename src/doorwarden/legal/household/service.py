"""What a household sees of legal process ("requests and access"): every request it has
been told of, its notices, exactly which clips left, the holds on its clips, and the
community requests it received. Nothing under a running non-disclosure order shows
until the order ends (the notices are what opens each request to the household)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.agencies.service import agency_names
from doorwarden.clips.models import Clip, ClipHold
from doorwarden.clips.service import active_holds
from doorwarden.legal.community import service as community
from doorwarden.legal.disclosure.models import Package, PackageClip, PackageKind
from doorwarden.legal.models import LegalRequest, Notice, RequestKind, Target
from doorwarden.legal.notices import delivered, told_requests


@dataclass(frozen=True)
class Disclosed:
    package: Package
    clips: Sequence[Clip]  # still held by the server (a clip deleted since is counted)
    clip_count: int


@dataclass(frozen=True)
class HeldClip:
    clip: Clip
    until: datetime | None
    request_id: uuid.UUID | None


@dataclass(frozen=True)
class CommunityAsk:
    request: LegalRequest
    agency_name: str
    clips: Sequence[Clip]  # the household's clips in the window
    shared: set[uuid.UUID]


@dataclass
class HouseholdLegal:
    notices: Sequence[Notice]
    requests: Sequence[LegalRequest]
    agencies: dict[uuid.UUID, str]
    disclosures: dict[uuid.UUID, list[Disclosed]] = field(default_factory=dict)
    holds: Sequence[HeldClip] = ()
    community: Sequence[CommunityAsk] = ()

    @property
    def unread(self) -> int:
        return sum(1 for n in self.notices if n.read_at is None)


async def _disclosures(
    db: AsyncSession, household_id: uuid.UUID, request_ids: set[uuid.UUID]
) -> dict[uuid.UUID, list[Disclosed]]:
    if not request_ids:
        return {}
    packages = (
        await db.scalars(
            select(Package).where(Package.request_id.in_(request_ids)).order_by(Package.created_at)
        )
    ).all()
    out: dict[uuid.UUID, list[Disclosed]] = {}
    for package in packages:
        rows = (
            await db.scalars(
                select(PackageClip.clip_id).where(
                    PackageClip.package_id == package.id,
                    PackageClip.household_id == household_id,
                )
            )
        ).all()
        if package.kind is PackageKind.subscriber:
            named = await db.scalar(
                select(Target.device_id).where(
                    Target.request_id == package.request_id,
                    Target.household_id == household_id,
                    Target.approved.is_(True),
                )
            )
            if named is None:
                continue
        elif not rows:
            continue
        clips = (
            await db.scalars(select(Clip).where(Clip.id.in_(rows)).order_by(Clip.start_at))
        ).all()
        out.setdefault(package.request_id, []).append(Disclosed(package, clips, len(rows)))
    return out


async def _holds(db: AsyncSession, household_id: uuid.UUID, now: datetime) -> list[HeldClip]:
    rows = (
        await db.execute(
            select(Clip, ClipHold)
            .join(ClipHold, ClipHold.clip_id == Clip.id)
            .where(
                Clip.household_id == household_id,
                active_holds(now),
                (ClipHold.hidden_until.is_(None)) | (ClipHold.hidden_until <= now),
            )
            .order_by(Clip.start_at)
        )
    ).all()
    return [HeldClip(clip, hold.expires_at, hold.request_id) for clip, hold in rows]


async def household_legal(
    db: AsyncSession, household_id: uuid.UUID, now: datetime
) -> HouseholdLegal:
    notices = await delivered(db, household_id)
    told = await told_requests(db, household_id)
    requests = (
        (
            await db.scalars(
                select(LegalRequest)
                .where(LegalRequest.id.in_(told))
                .order_by(LegalRequest.created_at.desc())
            )
        ).all()
        if told
        else []
    )
    asks = []
    received = await community.received(db, household_id)
    names = await agency_names(db, (r.agency_id for r in [*requests, *received]))
    for ask in received:
        asks.append(
            CommunityAsk(
                request=ask,
                agency_name=names.get(ask.agency_id, ""),
                clips=await community.shareable_clips(db, ask, household_id),
                shared=await community.shared_ids(db, ask.id, household_id),
            )
        )
    return HouseholdLegal(
        notices=notices,
        requests=[r for r in requests if r.kind is not RequestKind.community],
        agencies=names,
        disclosures=await _disclosures(db, household_id, told),
        holds=await _holds(db, household_id, now),
        community=asks,
    )


async def mark_read(db: AsyncSession, household_id: uuid.UUID, now: datetime) -> None:
    await db.execute(
        update(Notice)
        .where(
            Notice.household_id == household_id,
            Notice.delivered_at.is_not(None),
            Notice.read_at.is_(None),
        )
        .values(read_at=now)
    )


async def unread_notices(db: AsyncSession, household_id: uuid.UUID) -> int:
    """For the household page's link: notices delivered and not read yet."""
    count = await db.scalar(
        select(func.count()).where(
            Notice.household_id == household_id,
            Notice.delivered_at.is_not(None),
            Notice.read_at.is_(None),
        )
    )
    return int(count or 0)
