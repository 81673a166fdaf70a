"""Sweeping what interrupted writes left behind, at start-up (before serving) and then on
the scheduler every `sweep_interval_s`:

- temporary files of the local clip store (`.tmp-*`, a kill -9 between write and
  rename) and of staged thumbnails (`*.tmp`), once older than `sweep_temp_age_s`;
- the staging of clips already verified (or deleted since) and of clips whose row is
  gone (a device removed): the clip is safe in the store, or nobody can complete it;
- the staging of abandoned uploads, which received nothing for `staging_abandon_days`:
  the camera keeps its copy until the clip is verified and sends it again from 0;
- a journal without data older than `sweep_temp_age_s` (nothing it records is held).

With S3 staging (the bucket's `staging/`, clips/staging_s3.py) the same rules hold for
its objects: staging of verified, deleted or row-less clips goes at once, that of uploads
idle for `staging_abandon_days` goes too (parts have no temporary files to sweep).

Ages are file (object) modification times against the wall clock (what the files
carry), not the app's clock. A staged clip is removed under its staging lock, and an
abandoned one is re-checked under it, so an upload in this process is never swept mid-write; across
processes the ages are far longer than any request.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from doorwarden.clips.completion import AnyStaging
from doorwarden.clips.models import Clip, ClipStatus
from doorwarden.clips.staging import Staging
from doorwarden.clips.staging_s3 import S3Staging
from doorwarden.config import Settings
from doorwarden.errors import DomainError
from doorwarden.scheduler import Job, run_now
from doorwarden.storage.base import ClipStore, StorageError
from doorwarden.storage.local import LocalClipStore

log = structlog.get_logger("doorwarden.clips.sweep")

_STAGED = re.compile(r"^(\d{12})\.(?:clip\.part|clip\.parts|thumb\.part)$")
_TEMP = re.compile(r"^\d{12}\.thumb\.part\.[0-9a-f]{32}\.tmp$")
_BATCH = 500  # sequences per IN (...) query


@dataclass
class SweepResult:
    store_temps: int = 0  # `.tmp-*` files of the local clip store
    staging_temps: int = 0  # `*.tmp` files of staged thumbnails
    verified: int = 0  # staged clips already verified or deleted
    orphaned: int = 0  # staged clips without a clip row
    abandoned: int = 0  # uploads idle for staging_abandon_days
    journals: int = 0  # journals without data
    failed: int = 0  # staged clips that could not be removed (retried next time)


@dataclass
class _Scan:
    clips: dict[tuple[uuid.UUID, int], list[Path]] = field(default_factory=dict)
    temps: list[Path] = field(default_factory=list)


def _scan(root: Path) -> _Scan:
    """Our files under the staging root, by clip; anything else is left alone."""
    found = _Scan()
    try:
        devices = [p for p in root.iterdir() if p.is_dir()]
    except FileNotFoundError:
        return found  # nothing was ever staged
    for directory in devices:
        try:
            device_id = uuid.UUID(directory.name)
        except ValueError:
            continue
        for path in directory.iterdir():
            if _TEMP.match(path.name):
                found.temps.append(path)
            elif match := _STAGED.match(path.name):
                found.clips.setdefault((device_id, int(match[1])), []).append(path)
    return found


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return None


def _newest(paths: Iterable[Path]) -> float | None:
    times = [t for t in map(_mtime, paths) if t is not None]
    return max(times) if times else None


def _remove_older(paths: list[Path], cutoff: float) -> int:
    removed = 0
    for path in paths:
        written = _mtime(path)
        if written is not None and written <= cutoff:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


async def _statuses(
    db: AsyncSession, keys: Iterable[tuple[uuid.UUID, int]]
) -> dict[tuple[uuid.UUID, int], ClipStatus]:
    by_device: dict[uuid.UUID, list[int]] = defaultdict(list)
    for device_id, sequence in keys:
        by_device[device_id].append(sequence)
    statuses: dict[tuple[uuid.UUID, int], ClipStatus] = {}
    for device_id, sequences in by_device.items():
        for at in range(0, len(sequences), _BATCH):
            rows = await db.execute(
                select(Clip.sequence, Clip.status).where(
                    Clip.device_id == device_id, Clip.sequence.in_(sequences[at : at + _BATCH])
                )
            )
            statuses.update({(device_id, seq): status for seq, status in rows})
    return statuses


async def sweep(
    db: AsyncSession,
    *,
    staging: AnyStaging,
    store: ClipStore,
    temp_age_s: float,
    abandon_s: float,
) -> SweepResult:
    result = SweepResult()
    if isinstance(store, LocalClipStore):
        result.store_temps = await store.cleanup_partial(older_than_s=temp_age_s)
    if isinstance(staging, S3Staging):
        await _sweep_s3(db, staging, abandon_s, result)
    else:
        await _sweep_local(db, staging, temp_age_s, abandon_s, result)
    return result


async def _sweep_s3(
    db: AsyncSession, staging: S3Staging, abandon_s: float, result: SweepResult
) -> None:
    now = time.time()
    try:
        newest = await staging.staged()
    except StorageError as exc:
        log.warning("clips.sweep_unavailable", reason=str(exc))
        result.failed += 1
        return
    # Read after the listing, as for local files: a staged part exists only once its
    # clip's row is committed.
    statuses = await _statuses(db, newest)
    for (device_id, sequence), written in newest.items():
        status = statuses.get((device_id, sequence))
        abandoned = written.timestamp() <= now - abandon_s
        if status is ClipStatus.receiving and not abandoned:
            continue
        async with staging.lock(device_id, sequence):
            if not await staging.remove_quietly(device_id, sequence):
                result.failed += 1
            elif status is None:
                result.orphaned += 1
            elif status is ClipStatus.receiving:
                result.abandoned += 1
            else:
                result.verified += 1


async def _sweep_local(
    db: AsyncSession, staging: Staging, temp_age_s: float, abandon_s: float, result: SweepResult
) -> None:
    now = time.time()
    found = await asyncio.to_thread(_scan, staging.root)
    result.staging_temps = await asyncio.to_thread(_remove_older, found.temps, now - temp_age_s)
    # Read after the scan: a staged file exists only once its clip's row is committed,
    # so a clip found on disk and not in the database has no row (not one in flight).
    statuses = await _statuses(db, found.clips)
    for (device_id, sequence), paths in found.clips.items():
        status = statuses.get((device_id, sequence))
        async with staging.lock(device_id, sequence):
            try:
                if status is None or status is not ClipStatus.receiving:
                    staging.discard(device_id, sequence)
                    if status is None:
                        result.orphaned += 1
                    else:
                        result.verified += 1
                    continue
                files = staging.files(device_id, sequence)
                newest = await asyncio.to_thread(_newest, files)
                if newest is not None and newest <= now - abandon_s:
                    staging.discard(device_id, sequence)
                    result.abandoned += 1
                elif not any(p.name.endswith(".clip.part") for p in paths):
                    journal = [staging.journal_path(device_id, sequence)]
                    cutoff = now - temp_age_s
                    result.journals += await asyncio.to_thread(_remove_older, journal, cutoff)
            except (DomainError, OSError):
                result.failed += 1  # logged by staging; the next sweep tries again


def sweep_job(settings: Settings, staging: AnyStaging, store: ClipStore) -> Job[SweepResult]:
    async def body(db: AsyncSession) -> SweepResult:
        return await sweep(
            db,
            staging=staging,
            store=store,
            temp_age_s=settings.sweep_temp_age_s,
            abandon_s=settings.staging_abandon_days * 86400,
        )

    async def report(result: SweepResult) -> None:
        log.info("clips.sweep", **asdict(result))

    return Job("clips.sweep", settings.sweep_interval_s, body, after_commit=report)


async def sweep_at_startup(
    sessionmaker: async_sessionmaker[AsyncSession], job: Job[SweepResult]
) -> SweepResult | None:
    """One sweep before serving. A failure is logged, not fatal: serving matters more,
    and the scheduler sweeps again."""
    try:
        return await run_now(sessionmaker, job)
    except (OSError, StorageError) as exc:
        log.warning("clips.sweep_failed", reason=str(exc) or type(exc).__name__)
        return None
