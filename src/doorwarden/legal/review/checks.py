"""The review checklist: what must hold before a request may be approved as asked, or as
narrowed. Computed checks (unexpired, within the jurisdiction, particular) are the
server's; `signed` (the document bears the named judge's signature) and `nondisclosure`
(the order is a court's, with that end date) are the reviewer's, attested by name.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden import geo
from doorwarden.agencies.models import Agency
from doorwarden.config import Settings
from doorwarden.households.models import Household
from doorwarden.legal.models import LegalRequest, RequestKind, ScopeItem, ScopeKind, Target

ATTESTABLE = ("signed", "nondisclosure")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Limits:
    devices: int
    hours: int | None  # None: the window does not matter (subpoenas: who, not when)


def limits(kind: RequestKind, settings: Settings) -> Limits:
    if kind is RequestKind.emergency:
        return Limits(settings.emergency_max_devices, settings.emergency_max_hours)
    if kind is RequestKind.subpoena:
        return Limits(settings.warrant_max_devices, None)
    return Limits(settings.warrant_max_devices, settings.warrant_max_hours)


def attestations_needed(request: LegalRequest) -> list[str]:
    needed = []
    if request.kind in (RequestKind.warrant, RequestKind.subpoena):
        needed.append("signed")
    if request.nondisclosure_until is not None:
        needed.append("nondisclosure")
    return needed


def _hours(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() / 3600


def particular(
    request: LegalRequest,
    items: Sequence[ScopeItem],
    devices: int,
    window: tuple[datetime, datetime],
    settings: Settings,
) -> Check:
    limit = limits(request.kind, settings)
    problems = []
    if any(i.kind is ScopeKind.area for i in items):
        problems.append("an area sweep is not a particular description")
    if devices > limit.devices:
        problems.append(f"{devices} cameras, at most {limit.devices}")
    hours = _hours(*window)
    if limit.hours is not None and hours > limit.hours:
        problems.append(f"a {hours:g} h window, at most {limit.hours} h")
    if problems:
        return Check("particular", False, "Overbroad: " + "; ".join(problems) + ".")
    span = "" if limit.hours is None else f" over {hours:g} h"
    return Check("particular", True, f"{devices} camera(s){span}, within the limits.")


async def in_jurisdiction(
    db: AsyncSession, agency: Agency, household_ids: Collection[uuid.UUID]
) -> Check:
    if agency.jurisdiction_area is None:
        return Check("in_jurisdiction", False, "The agency has no jurisdiction area on file.")
    if not household_ids:
        return Check("in_jurisdiction", True, "No camera of this instance is named.")
    area = geo.parse_area(agency.jurisdiction_area)
    rows = (
        await db.execute(
            select(Household.latitude, Household.longitude).where(
                Household.id.in_(list(household_ids))
            )
        )
    ).all()
    inside = geo.contained(area, [(lat, lng) for lat, lng in rows])
    outside = len(household_ids) - sum(inside)
    if outside:
        return Check(
            "in_jurisdiction",
            False,
            f"{outside} of {len(household_ids)} named home(s) lie outside {agency.jurisdiction} "
            "(or have no location on file).",
        )
    return Check("in_jurisdiction", True, f"Every named home lies within {agency.jurisdiction}.")


def unexpired(request: LegalRequest, now: datetime) -> Check | None:
    if request.kind not in (RequestKind.warrant, RequestKind.subpoena):
        return None
    if request.signed_on is not None and request.signed_on > now.date():
        return Check("unexpired", False, "Signed on a date still to come.")
    if request.expires_at is not None and request.expires_at <= now:
        return Check("unexpired", False, f"Expired at {request.expires_at:%Y-%m-%d %H:%M} UTC.")
    until = f" until {request.expires_at:%Y-%m-%d %H:%M} UTC" if request.expires_at else ""
    return Check("unexpired", True, f"Valid{until}.")


def attested(request: LegalRequest, attest: Collection[str], reviewer: str) -> list[Check]:
    checks = []
    for name in attestations_needed(request):
        what = {
            "signed": "The document bears the signature of the judge or authority named",
            "nondisclosure": "The non-disclosure order is a court's, ending on the date given",
        }[name]
        if name in attest:
            checks.append(Check(name, True, f"{what}: attested by reviewer {reviewer}."))
        else:
            checks.append(Check(name, False, f"{what}: not attested by the reviewer."))
    return checks


async def checklist(
    db: AsyncSession,
    request: LegalRequest,
    *,
    agency: Agency,
    items: Sequence[ScopeItem],
    targets: Sequence[Target],
    window: tuple[datetime, datetime],
    attest: Collection[str],
    reviewer: str,
    settings: Settings,
    now: datetime,
) -> list[Check]:
    """Every check for the scope `targets` (all, or those a narrowing keeps) and `window`."""
    checks = attested(request, attest, reviewer)
    expiry = unexpired(request, now)
    if expiry is not None:
        checks.append(expiry)
    if request.kind is RequestKind.emergency:
        checks.append(Check("attested_emergency", True, "The officer attested an imminent danger."))
    checks.append(await in_jurisdiction(db, agency, {t.household_id for t in targets}))
    checks.append(particular(request, items, len(targets), window, settings))
    return checks
