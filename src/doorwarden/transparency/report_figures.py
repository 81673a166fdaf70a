"""The report as one flat list of figures (section, agency, kind, measure, value): the
CSV's rows, and the key each figure carries on the page, so the three forms agree. And the
reuse of a recent count."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from typing import Generic, TypeVar

from doorwarden.transparency.report_model import MEASURES, MIN_HOUSEHOLDS_SHOWN, Report


@dataclass(frozen=True)
class Figure:
    section: str
    agency: str
    kind: str
    measure: str
    value: str

    @property
    def key(self) -> str:
        return "|".join((self.section, self.agency, self.kind, self.measure))


TOO_FEW = "too few to show"
FEWER = f"fewer than {MIN_HOUSEHOLDS_SHOWN}"  # households asked, under the threshold


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _counted(section: str, agency: str, kind: str, counts: object) -> Iterator[Figure]:
    """Every int field of a counts dataclass (its `kind`, if any, is the row's kind)."""
    for f in fields(counts):  # type: ignore[arg-type]
        if f.name != "kind":
            yield Figure(section, agency, kind, f.name, _text(getattr(counts, f.name)))


def _facts(
    section: str, agency: str, kind: str, facts: Iterable[tuple[str, object]]
) -> Iterator[Figure]:
    for measure, value in facts:
        yield Figure(section, agency, kind, measure, _text(value))


def _agency_figures(r: Report) -> Iterator[Figure]:
    for a in r.agencies:
        yield from _facts(
            "agencies",
            a.name,
            "",
            (
                ("agency_kind", a.kind.value),
                ("verified", a.verified),
                ("flagged", a.flagged_at is not None),
                ("flagged_at", a.flagged_at),
                ("flag_reason", a.flag_reason),
            ),
        )
        for kind, counts in a.requests.items():
            facts = ((m, getattr(counts, m)) for m in MEASURES[kind])
            yield from _facts("agency_requests", a.name, kind.value, facts)
        yield from _counted("agency_disclosures", a.name, "all", a.disclosures)


def _listed_figures(r: Report) -> Iterator[Figure]:
    for approval in r.approvals:
        yield from _facts(
            "approvals",
            approval.agency,
            approval.reference,
            (
                ("approving_body", approval.approving_body),
                ("approved_on", approval.approved_on),
                ("expires_on", approval.expires_on),
                ("revoked_at", approval.revoked_at),
                ("in_force", approval.in_force),
            ),
        )
    for programme in r.programmes:
        yield from _facts(
            "programmes",
            programme.agency,
            programme.name,
            (
                ("programme_kind", programme.kind),
                ("funding_source", programme.funding_source),
                ("approving_body", programme.approving_body),
                ("approval_reference", programme.approval_reference),
                ("cameras_enrolled", programme.cameras),
                ("ended_at", programme.ended_at),
            ),
        )


def figures(r: Report) -> Iterator[Figure]:
    """Every figure of the report, in the order the CSV lists them."""
    yield from _facts(
        "period",
        "",
        "",
        (("from", r.period.first), ("to", r.period.last), ("generated_at", r.generated_at)),
    )
    yield Figure("requests", "", "all", "total", _text(r.requests_total))
    for kind, counts in r.requests.items():
        facts = ((m, getattr(counts, m)) for m in MEASURES[kind])
        yield from _facts("requests", "", kind.value, facts)
    yield from _agency_figures(r)
    for package_kind in r.packages:
        yield from _counted("disclosures", "", package_kind.kind.value, package_kind)
    yield from _counted("disclosures", "", "all", r.disclosures)
    yield from _counted("notices", "", "", r.notices)
    for end in r.delayed_until:
        yield Figure("notices", "", "delayed_until", end.ends_on.isoformat(), str(end.notices))
    yield from _counted("holds", "", "preservation", r.holds)
    c = r.community
    yield from _facts(
        "community",
        "",
        "community",
        (
            ("requests", c.requests),
            ("households_asked", FEWER if c.households_asked_shown is None else c.households_asked),
            ("households_shared", TOO_FEW if c.households_shared is None else c.households_shared),
            ("response_rate", TOO_FEW if c.response_rate is None else c.response_rate),
            ("clips_shared", c.clips_shared),
        ),
    )
    yield from _counted("policy", "", "", r.policy)
    yield from _listed_figures(r)


# -- reuse -------------------------------------------------------------------------------

T = TypeVar("T")


class Recount(Generic[T]):
    """The last count for a key, reused for `max_age_s`; one count at a time, the others
    wait for it (the report's figures; the coverage map is a published snapshot instead)."""

    def __init__(self, size: int = 16) -> None:
        self._lock = asyncio.Lock()
        self._size = size
        self._values: dict[Hashable, tuple[datetime, T]] = {}

    async def get(
        self,
        key: Hashable,
        *,
        now: datetime,
        max_age_s: float,
        count: Callable[[], Awaitable[T]],
    ) -> T:
        async with self._lock:
            found = self._values.get(key)
            if found is not None and timedelta(0) <= now - found[0] < timedelta(seconds=max_age_s):
                return found[1]
            value = await count()
            self._values.pop(key, None)
            self._values[key] = (now, value)
            while len(self._values) > self._size:
                del self._values[next(iter(self._values))]
            return value


def csv_safe(text: str) -> str:
    """A cell a spreadsheet will not run as a formula (agency names, references are typed
    by people): a leading = + - @ or control character gets a quote before it."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_rows(r: Report) -> Iterator[tuple[str, str, str, str, str]]:
    yield ("section", "agency", "kind", "measure", "value")
    for f in figures(r):
        yield (f.section, csv_safe(f.agency), csv_safe(f.kind), f.measure, csv_safe(f.value))


def as_dict(items: Iterable[Figure]) -> dict[str, str]:
    return {f.key: f.value for f in items}
