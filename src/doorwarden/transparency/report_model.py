"""What the transparency report holds (report.py counts it): the period, and per request
kind, per agency, disclosures, notices, holds, community requests, the instance policy,
approvals and programmes. Each class says exactly what its figures count."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_

from doorwarden.agencies.models import AgencyKind
from doorwarden.errors import InvalidInput
from doorwarden.legal.disclosure.models import PackageKind
from doorwarden.legal.models import Outcome, RequestKind, RequestStatus

EARLIEST = date(2000, 1, 1)
MAX_YEARS = 10
MIN_HOUSEHOLDS_FOR_RATE = 10
# Households asked are shown only from this many (the floor of community_min_households):
# "1 asked" after a request around one door said that house has a camera.
MIN_HOUSEHOLDS_SHOWN = 5
COMMUNITY_RULE = (
    f"A response rate is shown only when at least {MIN_HOUSEHOLDS_FOR_RATE} households "
    "were asked in the period: a rate over a handful of homes would tell who answered. "
    f"Fewer than {MIN_HOUSEHOLDS_SHOWN} households asked is shown as such, not counted: "
    "the number would tell which homes near a place have cameras."
)


class InvalidPeriod(InvalidInput):
    code = "invalid_period"


@dataclass(frozen=True)
class Period:
    first: date  # the first day counted
    last: date  # the last day counted (inclusive)

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time.min, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """Exclusive: midnight (UTC) after the last day."""
        return datetime.combine(self.last + timedelta(days=1), time.min, tzinfo=UTC)

    def holds(self, column: Any) -> ColumnElement[bool]:
        return and_(column >= self.start, column < self.end)


def _years_after(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February into a year without one
        return date(day.year + years, 3, 1)


def period(first: date | None, last: date | None, *, today: date) -> Period:
    """The period asked for; by default the current calendar year up to today."""
    last = last or (today if first is None or first <= today else first)
    first = first or date(last.year, 1, 1)
    if first < EARLIEST:
        raise InvalidPeriod(f"A period may not start before {EARLIEST.isoformat()}.")
    if last > date(today.year, 12, 31):
        raise InvalidPeriod("A period may not end after the end of the current year.")
    if first > last:
        raise InvalidPeriod("The period's first day ('from') is after its last ('to').")
    if last >= _years_after(first, MAX_YEARS):
        raise InvalidPeriod(f"A period may be at most {MAX_YEARS} years long.")
    return Period(first, last)


@dataclass
class RequestCounts:
    """Requests of one kind: `total` = pending + approved + narrowed + rejected + withdrawn
    (reviewed kinds) or open + closed (community). An emergency granted (approved or
    narrowed) is then awaiting proof, ratified or unratified."""

    total: int = 0
    pending: int = 0
    approved: int = 0
    narrowed: int = 0
    rejected: int = 0
    withdrawn: int = 0
    awaiting_proof: int = 0
    ratified: int = 0
    unratified: int = 0
    open: int = 0
    closed: int = 0

    def add(
        self, kind: RequestKind, status: RequestStatus, outcome: Outcome | None, n: int
    ) -> None:
        for measure in measures_of(kind, status, outcome):
            setattr(self, measure, getattr(self, measure) + n)


DECIDED = {RequestStatus.approved, RequestStatus.narrowed, RequestStatus.rejected}
GRANTED = {RequestStatus.approved, RequestStatus.narrowed}


def measures_of(kind: RequestKind, status: RequestStatus, outcome: Outcome | None) -> list[str]:
    """Which figures one request adds to: its group, and an emergency's proof."""
    found = ["total"]
    if kind is RequestKind.community:
        found.append("open" if status is RequestStatus.open else "closed")
        return found
    if outcome is not None:
        found.append(outcome.value)  # kept through later states: ratified, closed...
    elif status in DECIDED:
        found.append(status.value)
    elif status is RequestStatus.withdrawn:
        found.append("withdrawn")
    else:
        found.append("pending")
    if kind is RequestKind.emergency:
        if status is RequestStatus.ratified:
            found.append("ratified")
        elif status is RequestStatus.unratified:
            found.append("unratified")
        elif status in GRANTED:
            found.append("awaiting_proof")
    return found


# The figures that mean something for each kind (the others are always 0).
REVIEWED = ("total", "pending", "approved", "narrowed", "rejected", "withdrawn")
MEASURES: dict[RequestKind, tuple[str, ...]] = {
    RequestKind.warrant: REVIEWED,
    RequestKind.subpoena: REVIEWED,
    RequestKind.preservation: REVIEWED,
    RequestKind.emergency: (*REVIEWED, "awaiting_proof", "ratified", "unratified"),
    RequestKind.community: ("total", "open", "closed"),
}


def by_kind() -> dict[RequestKind, RequestCounts]:
    return {kind: RequestCounts() for kind in RequestKind}


@dataclass
class DisclosureCounts:
    packages: int = 0
    provisional: int = 0  # emergency packages, standing only if proven
    clips: int = 0  # clips in those packages (a clip in two packages counts twice)
    clips_without_content: int = 0  # end-to-end encrypted: ciphertext and metadata only
    devices: int = 0  # distinct cameras with a clip disclosed
    households: int = 0  # distinct households with a clip disclosed
    requests_with_e2e_content: int = 0  # requests with at least one such clip
    subscriber_households: int = 0  # distinct households whose subscriber data left


@dataclass
class PackageKindCounts:
    kind: PackageKind
    packages: int = 0
    provisional: int = 0
    clips: int = 0
    clips_without_content: int = 0


@dataclass
class AgencyReport:
    id: uuid.UUID  # internal: joins the counts, never shown
    name: str
    kind: AgencyKind
    verified: bool
    flagged_at: datetime | None
    flag_reason: str | None
    requests: dict[RequestKind, RequestCounts] = field(default_factory=by_kind)
    disclosures: DisclosureCounts = field(default_factory=DisclosureCounts)

    @property
    def listed(self) -> bool:
        """In the report: it asked or received something in the period, or is flagged."""
        return (
            any(c.total for c in self.requests.values())
            or self.disclosures.packages > 0
            or self.flagged_at is not None
        )


@dataclass
class NoticeCounts:
    delivered: int = 0  # delivered in the period (at once, or when an order ended)
    delayed: int = 0  # made in the period but held back by a court's non-disclosure order
    delayed_pending: int = 0  # of those, not delivered yet


@dataclass(frozen=True)
class DelayedEnd:
    """Notices made in the period and held back by a non-disclosure order, by the day
    the order ends (UTC): a count and a date, never a household."""

    ends_on: date
    notices: int


@dataclass
class HoldCounts:
    preservations_granted: int = 0  # preservation requests of the period, approved/narrowed
    clips_held: int = 0  # holds placed in the period by legal process
    clips_held_now: int = 0  # of those, still in force


@dataclass
class CommunityCounts:
    requests: int = 0
    households_asked: int = 0  # per request: a home asked twice counts twice
    responded: int = 0  # never shown below MIN_HOUSEHOLDS_FOR_RATE asked
    clips_shared: int = 0

    @property
    def rate_shown(self) -> bool:
        return self.households_asked >= MIN_HOUSEHOLDS_FOR_RATE

    @property
    def households_asked_shown(self) -> int | None:
        """The count, or None for "fewer than MIN_HOUSEHOLDS_SHOWN" (0 too, once a request
        was made: none asked says the area had no camera)."""
        few = self.households_asked < MIN_HOUSEHOLDS_SHOWN and self.requests > 0
        return None if few else self.households_asked

    @property
    def households_shared(self) -> int | None:
        return self.responded if self.rate_shown else None

    @property
    def response_rate(self) -> float | None:
        return round(self.responded / self.households_asked, 4) if self.rate_shown else None


@dataclass(frozen=True)
class PolicyFacts:
    community_requests_enabled: bool
    require_municipal_approval: bool
    warrant_max_devices: int
    warrant_max_hours: int
    emergency_max_devices: int
    emergency_max_hours: int
    emergency_proof_hours: int
    preservation_days: int
    community_max_square_miles: float
    community_max_hours: int
    community_open_days: int
    package_link_days: int


@dataclass(frozen=True)
class ApprovalRow:
    agency: str
    approving_body: str
    reference: str
    approved_on: date
    expires_on: date | None
    revoked_at: datetime | None
    in_force: bool


@dataclass(frozen=True)
class ProgrammeRow:
    agency: str
    name: str
    kind: str
    funding_source: str
    approving_body: str
    approval_reference: str
    cameras: int  # cameras in service enrolled in it now
    ended_at: datetime | None


@dataclass
class Report:
    period: Period
    generated_at: datetime
    requests: dict[RequestKind, RequestCounts]
    agencies: list[AgencyReport]  # those with a request or package in the period, or flagged
    packages: list[PackageKindCounts]
    disclosures: DisclosureCounts
    notices: NoticeCounts
    holds: HoldCounts
    community: CommunityCounts
    policy: PolicyFacts
    approvals: list[ApprovalRow]
    programmes: list[ProgrammeRow]
    delayed_until: list[DelayedEnd] = field(default_factory=list)

    @property
    def requests_total(self) -> int:
        return sum(c.total for c in self.requests.values())

    @property
    def unratified_emergencies(self) -> int:
        return self.requests[RequestKind.emergency].unratified
