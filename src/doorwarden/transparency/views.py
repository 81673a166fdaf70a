"""The public transparency pages.

* The coverage map: the totals are in the HTML (readable without scripts); coverage.js
  draws the map from the JSON API, on tiles from `map_tile_url` if one is set, otherwise
  on a plain background with no request leaving this instance.
* The transparency report: every figure in tables, and charts drawn here as inline SVG
  (no script, no style attribute: the CSP allows neither), each with a text description.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from doorwarden.deps import ClockDep, SessionDep, SettingsDep, authorize
from doorwarden.legal.models import RequestKind
from doorwarden.legal.requests.schemas import NONDISCLOSURE_MAX
from doorwarden.policy import Action, Principal
from doorwarden.transparency.http import (
    COVERAGE_PATH,
    LOG_CHECKPOINT_PATH,
    REPORT_CSV_PATH,
    REPORT_PATH,
    CoverageDep,
    ProgrammesDep,
    count_report,
)
from doorwarden.transparency.report_figures import as_dict, figures
from doorwarden.transparency.report_model import (
    COMMUNITY_RULE,
    MIN_HOUSEHOLDS_FOR_RATE,
    InvalidPeriod,
    Report,
    RequestCounts,
)
from doorwarden.web.forms import with_map_csp
from doorwarden.web.render import render

router = APIRouter(include_in_schema=False)

TABLE_ROWS = 100  # the largest cells; all of them are in the JSON


@router.get("/transparency/coverage")
async def coverage_page(
    request: Request,
    _p: Annotated[Principal, authorize(Action.page_public)],
    counted: CoverageDep,
    programmes: ProgrammesDep,
    settings: SettingsDep,
) -> Response:
    context = {
        "coverage": counted,
        "cells": counted.cells[:TABLE_ROWS],
        "data_url": COVERAGE_PATH,
        "tile_url": settings.map_tile_url or "",
        "tile_attribution": settings.map_tile_attribution,
        "refresh_minutes": round(settings.coverage_interval_s / 60),
        # Per agency and programme, not per place: the cell rule does not apply to them.
        "programmes": programmes,
        "report_url": "/transparency/report",
    }
    # Only this page may load images from the tile server; every other page keeps the
    # default policy (middleware.py).
    return with_map_csp(render(request, "transparency/coverage.html", context), settings)


# -- the transparency report page --------------------------------------------------------

ROW_PX = 46  # one bar: its label (16 px), the bar (18 px) and the gap below
BAR_TOP_PX = 20
BAR_PX = 18
SCALE = 86.0  # the longest bar's share of the width, leaving room for its total after it
MIN_SEGMENT = 0.6  # % of the width: a segment of 1 beside thousands stays visible
CHART_AGENCIES = 30  # the agencies with most requests; every one is in the tables


@dataclass(frozen=True)
class Segment:
    series: str  # a CSS class (the colour) and the key of its name in SERIES
    value: int
    x: float  # % of the chart's width
    width: float


@dataclass(frozen=True)
class Bar:
    label: str
    total: int
    y: int
    end: float  # % of the width where the bar ends
    segments: list[Segment]


@dataclass(frozen=True)
class Chart:
    id: str
    title: str
    summary: str  # what a screen reader reads for the picture; the table follows it
    height: int
    bars: list[Bar]
    series: list[str]  # the series drawn, in order, for the legend


SERIES = {
    "pending": "pending",
    "approved": "approved",
    "narrowed": "narrowed",
    "rejected": "rejected",
    "withdrawn": "withdrawn",
    "open": "open",
    "closed": "closed",
    "awaiting_proof": "awaiting proof",
    "ratified": "ratified",
    "unratified": "unratified",
    "with_content": "with content",
    "without_content": "end-to-end encrypted (no content)",
    "delivered": "delivered",
    "delayed_pending": "delayed, not delivered yet",
    "delayed_delivered": "delayed, delivered since",
    "asked": "households asked",
    "shared": "households that shared",
}
OUTCOME_SERIES = ("pending", "approved", "narrowed", "rejected", "withdrawn", "open", "closed")
KIND_NAMES = {
    RequestKind.warrant: "Warrants",
    RequestKind.subpoena: "Subpoenas",
    RequestKind.preservation: "Preservation requests",
    RequestKind.emergency: "Emergency requests",
    RequestKind.community: "Community requests",
}


def stacked(
    chart_id: str, title: str, rows: Sequence[tuple[str, Sequence[tuple[str, int]]]]
) -> Chart | None:
    """Horizontal stacked bars, one per row of (series, value): None if all are 0."""
    top = max((sum(v for _, v in series) for _, series in rows), default=0)
    if top == 0:
        return None
    bars, drawn, lines = [], [], []
    for index, (label, series) in enumerate(rows):
        x, segments = 0.0, []
        for name, value in series:
            if value <= 0:
                continue
            width = max(value / top * SCALE, MIN_SEGMENT)
            segments.append(Segment(name, value, round(x, 3), round(width, 3)))
            x += width
            if name not in drawn:
                drawn.append(name)
        total = sum(v for _, v in series)
        parts = ", ".join(f"{s.value} {SERIES[s.series]}" for s in segments)
        lines.append(f"{label}: {total}" + (f" ({parts})" if parts else ""))
        bars.append(Bar(label, total, index * ROW_PX, round(x, 3), segments))
    order = [s for s in SERIES if s in drawn]
    return Chart(chart_id, title, "; ".join(lines) + ".", len(rows) * ROW_PX, bars, order)


def _outcomes(counts: RequestCounts) -> list[tuple[str, int]]:
    return [(name, getattr(counts, name)) for name in OUTCOME_SERIES]


def charts(r: Report) -> dict[str, Chart | None]:
    emergency = r.requests[RequestKind.emergency]
    agencies = sorted(
        (a for a in r.agencies if any(c.total for c in a.requests.values())),
        key=lambda a: (-sum(c.total for c in a.requests.values()), a.name),
    )[:CHART_AGENCIES]
    notices = r.notices
    c = r.community
    return {
        "requests": stacked(
            "chart-requests",
            "Requests by type and outcome",
            [(KIND_NAMES[k], _outcomes(counts)) for k, counts in r.requests.items()],
        ),
        "emergencies": stacked(
            "chart-emergencies",
            "Emergency requests granted: proven afterwards or not",
            [
                (
                    "Emergency requests granted",
                    [
                        ("awaiting_proof", emergency.awaiting_proof),
                        ("ratified", emergency.ratified),
                        ("unratified", emergency.unratified),
                    ],
                )
            ],
        ),
        "agencies": stacked(
            "chart-agencies",
            "Requests per agency, by outcome",
            [
                (
                    a.name,
                    [(n, sum(getattr(k, n) for k in a.requests.values())) for n in OUTCOME_SERIES],
                )
                for a in agencies
            ],
        ),
        "disclosures": stacked(
            "chart-disclosures",
            "Clips disclosed, by package kind",
            [
                (
                    f"{k.kind.value.title()} packages",
                    [
                        ("with_content", k.clips - k.clips_without_content),
                        ("without_content", k.clips_without_content),
                    ],
                )
                for k in r.packages
            ],
        ),
        "notices": stacked(
            "chart-notices",
            "Notices to households",
            [
                ("Delivered in the period", [("delivered", notices.delivered)]),
                (
                    "Delayed by a court order",
                    [
                        ("delayed_delivered", notices.delayed - notices.delayed_pending),
                        ("delayed_pending", notices.delayed_pending),
                    ],
                ),
            ],
        ),
        "community": stacked(
            "chart-community",
            "Community requests: households asked and households that shared",
            [
                ("Households asked", [("asked", c.households_asked)]),
                ("Households that shared", [("shared", c.households_shared or 0)]),
            ],
        )
        if c.rate_shown
        else None,
    }


def _day(value: str, name: str, errors: list[str]) -> date | None:
    text = value.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        errors.append(f"{name}: write a date as YYYY-MM-DD.")
        return None


@router.get("/transparency/report")
async def report_page(
    request: Request,
    _p: Annotated[Principal, authorize(Action.page_public)],
    db: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    from_: Annotated[str, Query(alias="from", max_length=32)] = "",
    to: Annotated[str, Query(max_length=32)] = "",
) -> Response:
    now = clock.now()
    errors: list[str] = []
    first, last = _day(from_, "From", errors), _day(to, "To", errors)
    counted = None
    if not errors:
        try:
            counted = await count_report(request, db, settings, now, first, last)
        except InvalidPeriod as exc:
            errors.append(exc.message)
    today = now.date()
    context: dict[str, Any] = {
        "error": " ".join(errors),
        "typed": {"from": from_, "to": to},
        "today": today,
        "this_year": date(today.year, 1, 1),
        "last_year": (date(today.year - 1, 1, 1), date(today.year - 1, 12, 31)),
        "report": counted,
        "log_checkpoint_url": LOG_CHECKPOINT_PATH,
        "kind_names": KIND_NAMES,
        "series_names": SERIES,
        "outcome_series": OUTCOME_SERIES,
        "min_households_for_rate": MIN_HOUSEHOLDS_FOR_RATE,
        "community_rule": COMMUNITY_RULE,
        "nondisclosure_max_days": NONDISCLOSURE_MAX.days,
    }
    if counted is not None:
        query = urlencode({"from": counted.period.first, "to": counted.period.last})
        context |= {
            "figures": as_dict(figures(counted)),
            "charts": charts(counted),
            "json_url": f"{REPORT_PATH}?{query}",
            "csv_url": f"{REPORT_CSV_PATH}?{query}",
        }
    return render(request, "transparency/report.html", context, status_code=400 if errors else 200)
