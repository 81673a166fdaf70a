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
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from doorwarden.deps import ClockDep, SessionDep, SettingsDep, authorize
from doorwarden.policy import Action, Principal
from doorwarden.transparency.http import (
    LOG_CHECKPOINT_PATH,
    REPORT_CSV_PATH,
    REPORT_PATH,
    CoverageDep,
    ProgrammesDep,
    count_report,
)
from doorwarden.transparency.report_figures import csv_rows
from doorwarden.transparency.report_model import Report
from doorwarden.transparency.schemas import CoverageOut, ReportOut

router = APIRouter(prefix="/api/v1/transparency", tags=["transparency"])


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
