"""The server's storage failing under an upload is the server's fault: a real full
filesystem answers 507 `storage_full` (a damaged staged copy 503 `storage_unavailable`),
with Retry-After, no integrity alert and nothing lost: once room is made the same upload
completes and the clip is verified exactly once. And the sweep removes what interrupted
uploads left, sparing what is still in use."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from doorwarden.audit.models import AuditEvent
from doorwarden.clips.models import Clip, ClipStatus, IntegrityAlert
from doorwarden.clips.sweep import sweep_job
from doorwarden.clock import ManualClock
from doorwarden.config import Settings
from doorwarden.main import create_app
from doorwarden.scheduler import run_now
from doorwarden.storage.local import TEMP_PREFIX
from tests.factories import Camera, Factory, assert_error
from tests.sealed_clips import PART, Sealed, chain_of, seal_clip, send_data, upload
from tests.tmpfs import fill, release, small_tmpfs

DISK_BYTES = 8 * 1024 * 1024


@pytest.fixture
def settings(
    settings: Settings, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Settings]:
    """Tests that take `disk` get the app's data directory (staging and clip store) on a
    small tmpfs of their own, mounted before the app starts and unmounted after."""
    if "disk" not in request.fixturenames:
        yield settings
        return
    with small_tmpfs(tmp_path / "disk", DISK_BYTES) as mount:
        yield settings.model_copy(update={"data_dir": mount})


@pytest.fixture
def disk(settings: Settings) -> Path:
    return settings.data_dir


async def _camera(factory: Factory) -> tuple[uuid.UUID, Camera]:
    owner = await factory.user()
    home = await factory.household(owner)
    return home, await factory.camera(owner, home)


def _retry_later(response: httpx.Response, status: int, code: str, seconds: int) -> None:
    error = assert_error(response, status, code)
    assert response.headers["retry-after"] == str(seconds)
    details = error["details"]
    assert isinstance(details, dict) and details["retry_after"] == seconds


async def _alerts(app: FastAPI) -> list[tuple[str, int]]:
    async with app.state.sessionmaker() as db:
        rows = await db.scalars(select(IntegrityAlert))
        return [(str(a.kind), a.sequence) for a in rows]


async def _verified_once(app: FastAPI, camera: Camera, sequence: int) -> None:
    async with app.state.sessionmaker() as db:
        clip = await db.scalar(
            select(Clip).where(Clip.device_id == camera.id, Clip.sequence == sequence)
        )
        assert clip is not None and clip.status is ClipStatus.verified
        received = await db.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.tag == "clip:receive", AuditEvent.target_id == str(clip.id))
        )
        assert received == 1
    assert await app.state.clip_store.size(clip.object_key) == clip.ciphertext_size


async def _status(app: FastAPI, camera: Camera, sequence: int) -> ClipStatus | None:
    async with app.state.sessionmaker() as db:
        status: ClipStatus | None = await db.scalar(
            select(Clip.status).where(Clip.device_id == camera.id, Clip.sequence == sequence)
        )
        return status


def _store_temps(app: FastAPI) -> list[Path]:
    root: Path = app.state.clip_store.root
    return list(root.rglob(f"{TEMP_PREFIX}*")) if root.exists() else []


async def test_a_full_disk_refuses_parts_and_thumbnails_with_507_and_loses_nothing(
    factory: Factory, app: FastAPI, disk: Path
) -> None:
    _, camera = await _camera(factory)
    sealed = seal_clip(camera.id, camera.key, camera.recipients, 0)
    base = "/api/v1/device/clips/0"
    assert (await camera.client.put(base, content=sealed.manifest)).status_code == 201
    assert (await send_data(camera.client, sealed, 0, PART)).json()["received"] == PART
    # Room for less than a part: the next one fails part-way through its write.
    fill(disk, leave_bytes=100_000)
    _retry_later(await send_data(camera.client, sealed, PART), 507, "storage_full", 60)
    # Back at the part boundary: the resume offset is where the camera must go on.
    again = await camera.client.put(base, content=sealed.manifest)
    assert again.status_code == 200 and again.json()["received"] == PART
    assert app.state.staging.clip_path(camera.id, 0).stat().st_size == PART
    # Quite full: not even the thumbnail fits.
    fill(disk, leave_bytes=0)
    thumb = await camera.client.put(f"{base}/thumbnail", content=sealed.thumbnail)
    _retry_later(thumb, 507, "storage_full", 60)
    assert not list(app.state.staging.root.rglob("*.tmp"))
    assert await _alerts(app) == []
    assert await _status(app, camera, 0) is ClipStatus.receiving
    # Room again: the camera's retry of the same upload completes it.
    release(disk)
    done = await upload(camera.client, sealed)
    assert done.status_code == 200 and done.json()["status"] == "verified", done.text
    await _verified_once(app, camera, 0)
    assert await _alerts(app) == []


async def test_a_full_disk_at_completion_still_stores_the_clip_by_adopting_the_staging(
    factory: Factory, app: FastAPI, disk: Path
) -> None:
    """The local store adopts the verified staged file (fsync + hard link): storing it
    takes no new room, so a disk that filled up while the clip arrived does not hold it
    back (it answered 507 when the store wrote a second copy)."""
    _, camera = await _camera(factory)
    sealed = seal_clip(camera.id, camera.key, camera.recipients, 0)
    base = "/api/v1/device/clips/0"
    assert (await camera.client.put(base, content=sealed.manifest)).status_code == 201
    assert (await send_data(camera.client, sealed)).status_code == 200
    assert (
        await camera.client.put(f"{base}/thumbnail", content=sealed.thumbnail)
    ).status_code == 204
    fill(disk, leave_bytes=0)
    done = await camera.client.post(f"{base}/complete")
    assert done.status_code == 200 and done.json()["status"] == "verified", done.text
    await _verified_once(app, camera, 0)
    assert _store_temps(app) == []
    assert not list(app.state.staging.root.rglob("*.part*"))
    assert await _alerts(app) == []
    release(disk)


@pytest.mark.parametrize("where", ["data", "thumbnail"])
async def test_a_staged_copy_damaged_on_disk_is_503_and_resent(
    factory: Factory, app: FastAPI, where: str
) -> None:
    """The bytes the camera sent were right; the server's disk changed them since. The
    server's fault: 503 with no alert, the staging discarded, the resend verifies."""
    _, camera = await _camera(factory)
    sealed = seal_clip(camera.id, camera.key, camera.recipients, 0)
    base = "/api/v1/device/clips/0"
    assert (await camera.client.put(base, content=sealed.manifest)).status_code == 201
    assert (await send_data(camera.client, sealed)).status_code == 200
    assert (
        await camera.client.put(f"{base}/thumbnail", content=sealed.thumbnail)
    ).status_code == 204
    staging = app.state.staging
    path = staging.clip_path(camera.id, 0) if where == "data" else staging.thumb_path(camera.id, 0)
    damaged = bytearray(path.read_bytes())
    damaged[len(damaged) // 2] ^= 0x01
    path.write_bytes(bytes(damaged))
    _retry_later(await camera.client.post(f"{base}/complete"), 503, "storage_unavailable", 30)
    assert await _alerts(app) == []
    assert await _status(app, camera, 0) is ClipStatus.receiving
    # Discarded: the camera is told to send from the start, and that completes the clip.
    again = await camera.client.put(base, content=sealed.manifest)
    assert again.status_code == 200 and again.json()["received"] == 0
    done = await upload(camera.client, sealed)
    assert done.status_code == 200 and done.json()["status"] == "verified", done.text
    await _verified_once(app, camera, 0)
    assert await _alerts(app) == []


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def _stage_files(app: FastAPI, device: uuid.UUID, sequence: int) -> list[Path]:
    """Staging files as a crash would leave them (data, journal, thumbnail)."""
    staging = app.state.staging
    paths = [
        staging.clip_path(device, sequence),
        staging.journal_path(device, sequence),
        staging.thumb_path(device, sequence),
    ]
    paths[0].parent.mkdir(parents=True, exist_ok=True)
    for path in paths:
        path.write_bytes(b"left over")
    return paths


async def _partial(camera: Camera, sealed: Sealed, end: int) -> None:
    base = f"/api/v1/device/clips/{sealed.sequence}"
    assert (await camera.client.put(base, content=sealed.manifest)).status_code == 201
    if end:
        assert (await send_data(camera.client, sealed, 0, end)).json()["received"] == end


async def test_the_sweep_removes_leftovers_and_spares_uploads_in_progress(
    factory: Factory, app: FastAPI, settings: Settings, clock: ManualClock
) -> None:
    _, camera = await _camera(factory)
    chain = chain_of(camera.id, camera.key, camera.recipients, 4)
    staging, store = app.state.staging, app.state.clip_store
    hour, week = 3600.0, 7 * 86400.0
    # 0: verified, its staging left by a crash after the commit: removed at once.
    assert (await upload(camera.client, chain[0])).json()["status"] == "verified"
    verified_leftovers = _stage_files(app, camera.id, 0)
    # 1: in progress, written just now: spared.
    await _partial(camera, chain[1], 20_000)
    # 2: abandoned, nothing received for over a week: removed (the camera resends).
    await _partial(camera, chain[2], 20_000)
    for path in staging.files(camera.id, 2):
        if path.exists():
            _age(path, week + hour)
    # 3: offered, only a journal left (its data gone): removed once older than an hour.
    await _partial(camera, chain[3], 0)
    journal_only = staging.journal_path(camera.id, 3)
    journal_only.write_bytes(b"")
    _age(journal_only, 2 * hour)
    # A device whose rows are gone: removed at once.
    orphans = _stage_files(app, uuid.uuid4(), 5)
    # Temporary thumbnails: old ones removed, a fresh one (a write in progress) spared.
    device_dir = staging.clip_path(camera.id, 1).parent
    old_tmp = device_dir / f"000000000001.thumb.part.{uuid.uuid4().hex}.tmp"
    fresh_tmp = device_dir / f"000000000001.thumb.part.{uuid.uuid4().hex}.tmp"
    for path in (old_tmp, fresh_tmp):
        path.write_bytes(b"half a thumbnail")
    _age(old_tmp, 2 * hour)
    stray = device_dir / "notes.txt"  # not ours: left alone
    stray.write_text("kept")
    # The clip store's temporary files of interrupted puts.
    store_dir = store.root / "households"
    store_dir.mkdir(parents=True, exist_ok=True)
    old_put, fresh_put = store_dir / f"{TEMP_PREFIX}old", store_dir / f"{TEMP_PREFIX}fresh"
    for path in (old_put, fresh_put):
        path.write_bytes(b"half a clip")
    _age(old_put, 2 * hour)

    result = await run_now(app.state.sessionmaker, sweep_job(settings, staging, store))

    assert (result.store_temps, result.staging_temps) == (1, 1)
    assert (result.verified, result.orphaned, result.abandoned, result.journals) == (1, 1, 1, 1)
    assert result.failed == 0
    gone = [*verified_leftovers, *orphans, old_tmp, old_put, journal_only]
    gone += staging.files(camera.id, 2)
    assert [p for p in gone if p.exists()] == []
    assert fresh_tmp.exists() and fresh_put.exists() and stray.read_text() == "kept"
    assert staging.received(camera.id, 1) == 20_000
    # Nothing was lost: every clip completes, the abandoned one from the start.
    offered = await camera.client.put("/api/v1/device/clips/2", content=chain[2].manifest)
    assert offered.json()["received"] == 0
    for sealed in chain[1:]:
        done = await upload(camera.client, sealed)
        assert done.status_code == 200 and done.json()["status"] == "verified", done.text
    assert await _alerts(app) == []


async def test_the_server_sweeps_before_serving(
    factory: Factory, app: FastAPI, settings: Settings, clock: ManualClock
) -> None:
    _, camera = await _camera(factory)
    sealed = seal_clip(camera.id, camera.key, camera.recipients, 0)
    assert (await upload(camera.client, sealed)).json()["status"] == "verified"
    leftovers = _stage_files(app, camera.id, 0)
    root = app.state.clip_store.root
    old_put = next(root.rglob("*.clip.dws")).parent / f"{TEMP_PREFIX}crashed"
    old_put.write_bytes(b"half a clip")
    _age(old_put, 2 * 3600)
    restarted = create_app(settings, clock=clock)
    async with restarted.router.lifespan_context(restarted):
        assert [p for p in (*leftovers, old_put) if p.exists()] == []
