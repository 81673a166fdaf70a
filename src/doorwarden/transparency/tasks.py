"""The coverage map's scheduled count (issue 16 item 4).

The map is published, not counted on demand: this job records where each household is
and since when (CoveragePlace), counts the homes that have stood long enough
(coverage.Standing), rounds the figures, and stores them as the one snapshot every
server instance serves (CoverageSnapshot). A request reads the snapshot and never
counts, so a caller can neither time its own changes against a recount nor load the
database by asking.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, insert, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.config import Settings
from doorwarden.households.models import Household
from doorwarden.scheduler import Job
from doorwarden.transparency.coverage import Cell, Coverage, Standing, coverage, ring
from doorwarden.transparency.models import CoveragePlace, CoverageSnapshot

SNAPSHOT_ID = 1


async def track_places(db: AsyncSession, now: datetime) -> None:
    """A household seen for the first time, or somewhere else than last time, is placed
    there from now: it counts in that place only after coverage_move_days. Two
    statements, whatever the number of households, the same on SQLite and PostgreSQL."""
    current = select(Household).where(Household.id == CoveragePlace.household_id)
    moved = exists(
        current.where(
            or_(
                Household.latitude.is_distinct_from(CoveragePlace.latitude),
                Household.longitude.is_distinct_from(CoveragePlace.longitude),
            )
        )
    )
    await db.execute(
        update(CoveragePlace)
        .where(moved)
        .values(
            latitude=current.with_only_columns(Household.latitude).scalar_subquery(),
            longitude=current.with_only_columns(Household.longitude).scalar_subquery(),
            since=now,
        )
        .execution_options(synchronize_session=False)
    )
    unseen = select(
        Household.id,
        Household.latitude,
        Household.longitude,
        literal(now, CoveragePlace.__table__.c.since.type),
    ).where(~exists().where(CoveragePlace.household_id == Household.id))
    await db.execute(
        insert(CoveragePlace).from_select(
            ["household_id", "latitude", "longitude", "since"], unseen
        )
    )


def standing(settings: Settings, now: datetime) -> Standing:
    return Standing(
        settled_before=now - timedelta(days=settings.coverage_min_age_days),
        placed_before=now - timedelta(days=settings.coverage_move_days),
    )


def to_json(counted: Coverage) -> dict[str, Any]:
    return {
        "resolution": counted.resolution,
        "min_cameras": counted.min_cameras,
        "min_households": counted.min_households,
        "cells": [[c.id, c.cameras] for c in counted.cells],
        "cells_suppressed": counted.cells_suppressed,
        "cameras_suppressed": counted.cameras_suppressed,
        "cameras_unlocated": counted.cameras_unlocated,
    }


def from_json(body: dict[str, Any], generated_at: datetime) -> Coverage:
    return Coverage(
        resolution=int(body["resolution"]),
        min_cameras=int(body["min_cameras"]),
        min_households=int(body["min_households"]),
        generated_at=generated_at,
        cells=[Cell(id=str(c), cameras=int(n), ring=ring(str(c))) for c, n in body["cells"]],
        cells_suppressed=int(body["cells_suppressed"]),
        cameras_suppressed=int(body["cameras_suppressed"]),
        cameras_unlocated=int(body["cameras_unlocated"]),
    )


async def publish(db: AsyncSession, settings: Settings, now: datetime) -> Coverage:
    """One scheduled count: places tracked, homes counted, the snapshot replaced."""
    await track_places(db, now)
    counted = await coverage(
        db,
        resolution=settings.coverage_h3_resolution,
        min_cameras=settings.coverage_min_cameras,
        min_households=settings.coverage_min_households,
        now=now,
        standing=standing(settings, now),
        round_to=settings.coverage_round_to,
    )
    snapshot = await db.get(CoverageSnapshot, SNAPSHOT_ID)
    if snapshot is None:
        db.add(CoverageSnapshot(id=SNAPSHOT_ID, generated_at=now, body=to_json(counted)))
    else:
        snapshot.generated_at, snapshot.body = now, to_json(counted)
    return counted


async def published(db: AsyncSession, settings: Settings, now: datetime) -> Coverage:
    """The snapshot every instance serves; before the job's first run, an empty map of
    the settings in force (the job runs when the server starts)."""
    snapshot = await db.get(CoverageSnapshot, SNAPSHOT_ID)
    if snapshot is None:
        return Coverage(
            resolution=settings.coverage_h3_resolution,
            min_cameras=settings.coverage_min_cameras,
            min_households=settings.coverage_min_households,
            generated_at=now,
        )
    return from_json(snapshot.body, snapshot.generated_at)


def coverage_job(
    settings: Settings, now: Callable[[], datetime], interval_s: float
) -> Job[Coverage]:
    async def body(db: AsyncSession) -> Coverage:
        return await publish(db, settings, now())

    return Job("transparency.coverage", interval_s, body)
