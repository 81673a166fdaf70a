"""The public transparency report: what legal process this instance received in a period,
how each request was decided, and what left because of it. Counts only.

* A request counts in the period it was submitted in (`created_at`), with the outcome it
  has now; a package, a notice or a hold counts in the period it was made (or delivered)
  in. So a request filed on 31 December and decided on 2 January is in one year's
  requests and the next year's disclosures, as the events happened.
* Nothing here names a household, a person, a camera or an address: every query below
  returns counts grouped by agency, kind, status or outcome, never an id of theirs.
* A community request's response rate is shown only over at least
  `MIN_HOUSEHOLDS_FOR_RATE` households asked: over a handful of homes a rate (or the
  number who shared) would tell the neighbours who answered.
* The same SQL on SQLite and PostgreSQL: grouped counts, `count(DISTINCT ...)` and
  `CASE`, nothing dialect-specific.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, date, datetime

from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.agencies.governance import service as governance
from doorwarden.agencies.governance.models import MunicipalApproval
from doorwarden.agencies.models import Agency
from doorwarden.clips.models import ClipHold
from doorwarden.config import Settings
from doorwarden.legal.community.models import CommunityRecipient, CommunityShare
from doorwarden.legal.disclosure.models import Package, PackageClip, PackageKind
from doorwarden.legal.models import LegalRequest, Notice, RequestKind, Target
from doorwarden.transparency.report_model import (
    AgencyReport,
    ApprovalRow,
    CommunityCounts,
    DelayedEnd,
    DisclosureCounts,
    HoldCounts,
    NoticeCounts,
    PackageKindCounts,
    Period,
    PolicyFacts,
    ProgrammeRow,
    Report,
    RequestCounts,
    by_kind,
)


async def _agencies(db: AsyncSession) -> dict[uuid.UUID, AgencyReport]:
    rows = await db.execute(
        select(
            Agency.id,
            Agency.name,
            Agency.kind,
            Agency.verified_at,
            Agency.flagged_at,
            Agency.flag_reason,
        )
    )
    return {
        agency_id: AgencyReport(agency_id, name, kind, verified is not None, flagged, reason)
        for agency_id, name, kind, verified, flagged, reason in rows
    }


async def _count_requests(
    db: AsyncSession,
    p: Period,
    overall: dict[RequestKind, RequestCounts],
    agencies: dict[uuid.UUID, AgencyReport],
) -> None:
    columns = (LegalRequest.agency_id, LegalRequest.kind, LegalRequest.status, LegalRequest.outcome)
    rows = await db.execute(
        select(*columns, func.count()).where(p.holds(LegalRequest.created_at)).group_by(*columns)
    )
    for agency_id, kind, status, outcome, n in rows:
        overall[kind].add(kind, status, outcome, n)
        agencies[agency_id].requests[kind].add(kind, status, outcome, n)


def _ones(condition: ColumnElement[bool]) -> ColumnElement[int]:
    """How many rows meet `condition`: SUM(CASE ...), 0 over no rows."""
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


WITHOUT_CONTENT = PackageClip.content_available.is_(False)
# Over the clips of packages: distinct cameras, households, and requests with a clip whose
# content the provider could not read (end-to-end encrypted).
DEVICES = func.count(PackageClip.device_id.distinct())
HOUSEHOLDS = func.count(PackageClip.household_id.distinct())
E2E_REQUESTS = func.count(case((WITHOUT_CONTENT, Package.request_id)).distinct())


async def _count_packages(
    db: AsyncSession, built: ColumnElement[bool], agencies: dict[uuid.UUID, AgencyReport]
) -> list[PackageKindCounts]:
    """Packages and their clips, per kind (returned) and per agency (in `agencies`)."""
    kinds = {kind: PackageKindCounts(kind) for kind in PackageKind}
    packages = await db.execute(
        select(Package.agency_id, Package.kind, func.count(), _ones(Package.provisional.is_(True)))
        .where(built)
        .group_by(Package.agency_id, Package.kind)
    )
    for agency_id, kind, n, provisional in packages:
        kinds[kind].packages += n
        kinds[kind].provisional += provisional
        agencies[agency_id].disclosures.packages += n
        agencies[agency_id].disclosures.provisional += provisional
    clips = await db.execute(
        select(Package.agency_id, Package.kind, func.count(), _ones(WITHOUT_CONTENT))
        .join(PackageClip, PackageClip.package_id == Package.id)
        .where(built)
        .group_by(Package.agency_id, Package.kind)
    )
    for agency_id, kind, n, without in clips:
        kinds[kind].clips += n
        kinds[kind].clips_without_content += without
        agencies[agency_id].disclosures.clips += n
        agencies[agency_id].disclosures.clips_without_content += without
    return list(kinds.values())


async def _count_disclosed(
    db: AsyncSession,
    built: ColumnElement[bool],
    totals: DisclosureCounts,
    agencies: dict[uuid.UUID, AgencyReport],
) -> None:
    """Distinct cameras, households and requests disclosed about: per agency, then over
    all agencies (a camera disclosed to two agencies counts once there)."""
    in_packages = (
        select(DEVICES, HOUSEHOLDS, E2E_REQUESTS)
        .select_from(Package)
        .join(PackageClip, PackageClip.package_id == Package.id)
        .where(built)
    )
    per_agency = await db.execute(
        in_packages.add_columns(Package.agency_id).group_by(Package.agency_id)
    )
    for devices, households, e2e_requests, agency_id in per_agency:
        counts = agencies[agency_id].disclosures
        counts.devices, counts.households = devices, households
        counts.requests_with_e2e_content = e2e_requests
    devices, households, e2e_requests = (await db.execute(in_packages)).one()
    totals.devices, totals.households = devices, households
    totals.requests_with_e2e_content = e2e_requests
    # Subscriber packages carry no clip: their households are the request's approved targets.
    subscribers = (
        select(func.count(Target.household_id.distinct()))
        .select_from(Package)
        .join(Target, and_(Target.request_id == Package.request_id, Target.approved.is_(True)))
        .where(built, Package.kind == PackageKind.subscriber)
    )
    grouped = await db.execute(
        subscribers.add_columns(Package.agency_id).group_by(Package.agency_id)
    )
    for n, agency_id in grouped:
        agencies[agency_id].disclosures.subscriber_households = n
    totals.subscriber_households = int(await db.scalar(subscribers) or 0)


async def _count_notices(db: AsyncSession, p: Period) -> NoticeCounts:
    delivered = await db.scalar(
        select(func.count()).select_from(Notice).where(p.holds(Notice.delivered_at))
    )
    delayed, pending = (
        await db.execute(
            select(func.count(), _ones(Notice.delivered_at.is_(None))).where(
                p.holds(Notice.created_at), Notice.deliver_after.is_not(None)
            )
        )
    ).one()
    return NoticeCounts(int(delivered or 0), delayed, pending)


async def _delayed_ends(db: AsyncSession, p: Period) -> list[DelayedEnd]:
    """Every delayed notice of the period, as counts by the day its order ends (issue 16:
    a gag is public in number and length, never in whom it covers)."""
    ends = await db.scalars(
        select(Notice.deliver_after).where(
            p.holds(Notice.created_at), Notice.deliver_after.is_not(None)
        )
    )
    by_day = Counter(end.astimezone(UTC).date() for end in ends if end is not None)
    return [DelayedEnd(day, n) for day, n in sorted(by_day.items())]


async def _count_holds(db: AsyncSession, p: Period, now: datetime, granted: int) -> HoldCounts:
    in_force = and_(
        ClipHold.released_at.is_(None),
        (ClipHold.expires_at.is_(None)) | (ClipHold.expires_at > now),
    )
    placed, current = (
        await db.execute(
            select(func.count(), _ones(in_force)).where(
                ClipHold.request_id.is_not(None), p.holds(ClipHold.created_at)
            )
        )
    ).one()
    return HoldCounts(granted, placed, current)


async def _count_community(db: AsyncSession, p: Period, requests: int) -> CommunityCounts:
    asked, responded = (
        await db.execute(
            select(func.count(), _ones(CommunityRecipient.responded_at.is_not(None)))
            .select_from(CommunityRecipient)
            .join(LegalRequest, LegalRequest.id == CommunityRecipient.request_id)
            .where(p.holds(LegalRequest.created_at))
        )
    ).one()
    shared = await db.scalar(
        select(func.count())
        .select_from(CommunityShare)
        .join(LegalRequest, LegalRequest.id == CommunityShare.request_id)
        .where(p.holds(LegalRequest.created_at))
    )
    return CommunityCounts(requests, asked, responded, int(shared or 0))


async def policy_facts(db: AsyncSession, settings: Settings) -> PolicyFacts:
    row = await governance.instance_policy(db)
    return PolicyFacts(
        community_requests_enabled=row.community_requests_enabled,
        require_municipal_approval=settings.legal_require_municipal_approval,
        warrant_max_devices=settings.warrant_max_devices,
        warrant_max_hours=settings.warrant_max_hours,
        emergency_max_devices=settings.emergency_max_devices,
        emergency_max_hours=settings.emergency_max_hours,
        emergency_proof_hours=settings.emergency_proof_hours,
        preservation_days=settings.preservation_days,
        community_max_square_miles=settings.community_max_square_miles,
        community_max_hours=settings.community_max_hours,
        community_open_days=settings.community_open_days,
        package_link_days=settings.package_link_days,
    )


async def approvals_on_file(db: AsyncSession, today: date) -> list[ApprovalRow]:
    rows = await db.execute(
        select(MunicipalApproval, Agency.name)
        .join(Agency, Agency.id == MunicipalApproval.agency_id)
        .order_by(Agency.name, MunicipalApproval.approved_on.desc(), MunicipalApproval.id)
    )
    return [
        ApprovalRow(
            agency=name,
            approving_body=a.approving_body,
            reference=a.reference,
            approved_on=a.approved_on,
            expires_on=a.expires_on,
            revoked_at=a.revoked_at,
            in_force=a.revoked_at is None and (a.expires_on is None or a.expires_on >= today),
        )
        for a, name in rows
    ]


async def programme_rows(db: AsyncSession) -> list[ProgrammeRow]:
    """Every subsidised-camera programme with its cameras in service enrolled, per agency.
    Counts per agency are not places, so the coverage map's cell rule does not apply."""
    counted = await governance.programmes(db)
    if not counted:
        return []
    agency_ids = {p.agency_id for p, _ in counted}
    found = await db.execute(select(Agency.id, Agency.name).where(Agency.id.in_(agency_ids)))
    names = {row.id: row.name for row in found}
    approval_ids = {p.approval_id for p, _ in counted}
    approvals = {
        a.id: a
        for a in await db.scalars(
            select(MunicipalApproval).where(MunicipalApproval.id.in_(approval_ids))
        )
    }
    rows = []
    for programme, cameras in counted:
        approval = approvals.get(programme.approval_id)
        rows.append(
            ProgrammeRow(
                agency=names.get(programme.agency_id, ""),
                name=programme.name,
                kind=str(programme.kind),
                funding_source=programme.funding_source,
                approving_body=approval.approving_body if approval else "",
                approval_reference=approval.reference if approval else "",
                cameras=cameras,
                ended_at=programme.ended_at,
            )
        )
    rows.sort(key=lambda r: (r.agency, r.name))
    return rows


async def report(db: AsyncSession, *, p: Period, settings: Settings, now: datetime) -> Report:
    agencies = await _agencies(db)
    requests = by_kind()
    await _count_requests(db, p, requests, agencies)
    built = p.holds(Package.created_at)
    packages = await _count_packages(db, built, agencies)
    disclosures = DisclosureCounts(
        packages=sum(k.packages for k in packages),
        provisional=sum(k.provisional for k in packages),
        clips=sum(k.clips for k in packages),
        clips_without_content=sum(k.clips_without_content for k in packages),
    )
    await _count_disclosed(db, built, disclosures, agencies)
    preservations = requests[RequestKind.preservation]
    return Report(
        period=p,
        generated_at=now,
        requests=requests,
        agencies=sorted((a for a in agencies.values() if a.listed), key=lambda a: a.name),
        packages=packages,
        disclosures=disclosures,
        notices=await _count_notices(db, p),
        holds=await _count_holds(db, p, now, preservations.approved + preservations.narrowed),
        community=await _count_community(db, p, requests[RequestKind.community].total),
        policy=await policy_facts(db, settings),
        approvals=await approvals_on_file(db, now.date()),
        programmes=await programme_rows(db),
        delayed_until=await _delayed_ends(db, p),
    )
