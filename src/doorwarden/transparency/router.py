"""The public transparency API: the coverage map's data, for anyone, signed in or not.

It takes no parameters on purpose (see coverage.py): what it shows is the instance's
settings' choice, never the caller's.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from doorwarden.deps import ClockDep, SessionDep, SettingsDep, authorize
from doorwarden.policy import Action, Principal
from doorwarden.transparency.coverage import Coverage, CoverageCache, coverage
from doorwarden.transparency.schemas import CoverageOut

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


@router.get("/coverage", response_model=CoverageOut)
async def coverage_map(
    _p: Annotated[Principal, authorize(Action.page_public)], counted: CoverageDep
) -> CoverageOut:
    """Cameras per H3 cell as GeoJSON, with cells of too few cameras or households left
    out (counted only in the totals), and subsidised-camera programmes per agency."""
    return CoverageOut.of(counted)
