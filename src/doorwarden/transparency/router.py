"""The public transparency API, for anyone, signed in or not: the coverage map's data, and
the transparency report as JSON and CSV.

The coverage map takes no parameters on purpose (see coverage.py): what it shows is the
instance's settings' choice, never the caller's. The report takes a period: its figures
are counts of legal process, never places, so no period can be subtracted from another
to find a household.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from doorwarden.config import Settings
from doorwarden.deps import ClockDep, SessionDep, SettingsDep, authorize
from doorwarden.policy import Action, Principal
from doorwarden.transparency.coverage import Coverage, CoverageCache, coverage
from doorwarden.transparency.report import programme_rows, report
from doorwarden.transparency.report_figures import Recount, csv_rows
from doorwarden.transparency.report_model import ProgrammeRow, Report, period
from doorwarden.transparency.schemas import CoverageOut, ReportOut

router = APIRouter(prefix="/api/v1/transparency", tags=["transparency"])
COVERAGE_PATH = "/api/v1/transparency/coverage"


def _cache(request: Request) -> CoverageCache:
    # Made on first use rather than in create_app: only this domain knows about it.
    state = request.app.state
    cache: CoverageCache | None = getattr(state, "coverage_cache", None)
    if cache is None:
        cache = state.coverage_cache = CoverageCache()
    return cache


async def current_coverage(
    request: Request, db: SessionDep, settings: SettingsDep, clock: ClockDep
) -> Coverage:
    """The instance's coverage counts, counted at most once per `coverage_cache_s`."""
    key = (
        settings.coverage_h3_resolution,
        settings.coverage_min_cameras,
        settings.coverage_min_households,
    )
    now = clock.now()

    async def count() -> Coverage:
        return await coverage(
            db,
            resolution=key[0],
            min_cameras=key[1],
            min_households=key[2],
            now=now,
        )

    return await _cache(request).get(key, now=now, max_age_s=settings.coverage_cache_s, count=count)


CoverageDep = Annotated[Coverage, Depends(current_coverage)]


# -- subsidised-camera programmes (on the coverage map) ----------------------------------


def _programme_cache(request: Request) -> Recount[list[ProgrammeRow]]:
    state = request.app.state
    cache: Recount[list[ProgrammeRow]] | None = getattr(state, "programme_cache", None)
    if cache is None:
        cache = state.programme_cache = Recount()
    return cache


async def current_programmes(
    request: Request, db: SessionDep, settings: SettingsDep, clock: ClockDep
) -> list[ProgrammeRow]:
    """Programmes and their enrolled cameras, recounted as often as the coverage map."""

    async def count() -> list[ProgrammeRow]:
        return await programme_rows(db)

    return await _programme_cache(request).get(
        "programmes", now=clock.now(), max_age_s=settings.coverage_cache_s, count=count
    )


ProgrammesDep = Annotated[list[ProgrammeRow], Depends(current_programmes)]


@router.get("/coverage", response_model=CoverageOut)
async def coverage_map(
    _p: Annotated[Principal, authorize(Action.page_public)],
    counted: CoverageDep,
    programmes: ProgrammesDep,
) -> CoverageOut:
    """Cameras per H3 cell as GeoJSON, with cells of too few cameras or households left
    out (counted only in the totals), and subsidised-camera programmes per agency."""
    return CoverageOut.of(counted, programmes)


# -- the transparency report -------------------------------------------------------------

REPORT_PATH = "/api/v1/transparency/report"
REPORT_CSV_PATH = REPORT_PATH + ".csv"
LOG_CHECKPOINT_PATH = "/api/v1/log/checkpoint"
REPORT_PERIODS_KEPT = 16  # the last periods asked whose counts are reused
FromQuery = Annotated[
    date | None,
    Query(
        alias="from",
        description="First day counted (YYYY-MM-DD, UTC), from 2000-01-01; by default "
        "1 January of the year of `to`.",
    ),
]
ToQuery = Annotated[
    date | None,
    Query(
        description="Last day counted, included (YYYY-MM-DD, UTC), at most 10 years after "
        "`from` and not after this year; by default today.",
    ),
]


def _report_cache(request: Request) -> Recount[Report]:
    state = request.app.state
    cache: Recount[Report] | None = getattr(state, "report_cache", None)
    if cache is None:
        cache = state.report_cache = Recount(size=REPORT_PERIODS_KEPT)
    return cache


async def count_report(
    request: Request,
    db: AsyncSession,
    settings: Settings,
    now: datetime,
    first: date | None,
    last: date | None,
) -> Report:
    """The report for the period asked (InvalidPeriod, 400, for a period not allowed),
    counted at most once per `coverage_cache_s` for each of the last periods asked, one
    count at a time: over years of a large instance a count reads every package clip,
    notice and community recipient of those years, and anyone may ask."""
    asked = period(first, last, today=now.date())

    async def count() -> Report:
        return await report(db, p=asked, settings=settings, now=now)

    return await _report_cache(request).get(
        asked, now=now, max_age_s=settings.coverage_cache_s, count=count
    )


async def asked_report(
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    from_: FromQuery = None,
    to: ToQuery = None,
) -> Report:
    return await count_report(request, db, settings, clock.now(), from_, to)


ReportDep = Annotated[Report, Depends(asked_report)]


@router.get(REPORT_PATH.removeprefix(router.prefix), response_model=ReportOut)
async def transparency_report(
    _p: Annotated[Principal, authorize(Action.page_public)], counted: ReportDep
) -> ReportOut:
    """Legal requests submitted in the period by kind and outcome, per agency; what was
    disclosed, the notices sent and delayed, holds, community requests; the instance's
    policy, the approvals on file and the subsidised-camera programmes. Counts only."""
    return ReportOut.of(counted, log_checkpoint_url=LOG_CHECKPOINT_PATH)


class CSVResponse(Response):
    media_type = "text/csv"


def csv_text(counted: Report) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(csv_rows(counted))
    return out.getvalue()


@router.get(
    REPORT_CSV_PATH.removeprefix(router.prefix),
    response_class=CSVResponse,
    responses={200: {"description": "One row per figure: section, agency, kind, measure, value."}},
)
async def transparency_report_csv(
    _p: Annotated[Principal, authorize(Action.page_public)], counted: ReportDep
) -> CSVResponse:
    """The same figures as the JSON report, one per row (RFC 4180, with a header row)."""
    name = f"doorwarden-transparency-{counted.period.first}-to-{counted.period.last}.csv"
    return CSVResponse(
        csv_text(counted), headers={"content-disposition": f'attachment; filename="{name}"'}
    )
