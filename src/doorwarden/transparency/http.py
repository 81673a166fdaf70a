"""What the transparency API and pages share: their paths, and the counts each serves.
The coverage map is the snapshot the scheduler publishes (transparency/tasks.py), never
counted on demand; the report and the programmes are recounted at most once per
`coverage_cache_s` (anyone may ask, signed in or not, and a count can read years of
records)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.config import Settings
from doorwarden.deps import ClockDep, SessionDep, SettingsDep
from doorwarden.transparency.coverage import Coverage
from doorwarden.transparency.report import programme_rows, report
from doorwarden.transparency.report_figures import Recount
from doorwarden.transparency.report_model import ProgrammeRow, Report, period
from doorwarden.transparency.tasks import published

COVERAGE_PATH = "/api/v1/transparency/coverage"


async def current_coverage(db: SessionDep, settings: SettingsDep, clock: ClockDep) -> Coverage:
    """The published coverage snapshot: the same on every server instance; read, never
    recounted, so no request chooses the moment of a count."""
    return await published(db, settings, clock.now())


CoverageDep = Annotated[Coverage, Depends(current_coverage)]


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


REPORT_PATH = "/api/v1/transparency/report"
REPORT_CSV_PATH = REPORT_PATH + ".csv"
LOG_CHECKPOINT_PATH = "/api/v1/log/checkpoint"
REPORT_PERIODS_KEPT = 16  # the last periods asked whose counts are reused


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
