"""Watching, downloading and deleting clips; retention and legal holds; the plan."""

from __future__ import annotations

import io
import uuid
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from doorwarden.audit.models import AuditEvent
from doorwarden.clips.models import Clip, ClipHold
from doorwarden.clips.tasks import run_retention
from doorwarden.clock import ManualClock
from doorwarden.roles import Role
from doorwarden.verify.clips import Options, verify_path
from tests.factories import Factory, assert_error
from tests.sealed_clips import Sealed, chain_of, seal_clip, upload


async def home_with_clip(
    factory: Factory, size: int = 700_000
) -> tuple[object, object, Sealed, str]:
    owner = await factory.user()
    home = await factory.household(owner)
    camera = await factory.camera(owner, home)
    sealed = seal_clip(camera.id, camera.key, camera.recipients, 0, size=size)
    done = await upload(camera.client, sealed)
    assert done.status_code == 200, done.text
    browser = await factory.signed_in(owner)
    return home, browser, sealed, done.json()["clip_id"]


async def tags(app: FastAPI, prefix: str) -> list[str]:
    async with app.state.sessionmaker() as db:
        rows = await db.scalars(select(AuditEvent.tag).where(AuditEvent.tag.startswith(prefix)))
        return list(rows)


async def test_the_whole_clip_and_any_range_decrypt_to_the_original(
    factory: Factory, app: FastAPI
) -> None:
    home, browser, sealed, clip_id = await home_with_clip(factory)
    url = f"/api/v1/households/{home}/clips/{clip_id}/video"
    whole = await browser.get(url)
    assert whole.status_code == 200 and whole.content == sealed.plaintext
    assert whole.headers["content-type"] == "video/mp4"
    assert whole.headers["accept-ranges"] == "bytes"
    assert "no-store" in whole.headers["cache-control"]
    size = len(sealed.plaintext)
    for header, (start, end) in [
        ("bytes=0-0", (0, 1)),
        ("bytes=100-70000", (100, 70001)),  # across chunk boundaries (64 KiB chunks)
        ("bytes=65536-131071", (65536, 131072)),  # exactly one chunk
        ("bytes=600000-", (600000, size)),
        ("bytes=-1000", (size - 1000, size)),
        (f"bytes=0-{size + 500}", (0, size)),  # clamped
    ]:
        part = await browser.get(url, headers={"range": header})
        assert part.status_code == 206, (header, part.text)
        assert part.content == sealed.plaintext[start:end], header
        assert part.headers["content-range"] == f"bytes {start}-{end - 1}/{size}"
    for bad in (f"bytes={size}-", "bytes=500-100", "bytes=-0"):
        assert_error(await browser.get(url, headers={"range": bad}), 416, "range_not_satisfiable")
    # Not understood or several ranges: the whole body, as RFC 9110 allows.
    for ignored in ("items=0-5", "bytes=0-1,5-9"):
        assert (await browser.get(url, headers={"range": ignored})).status_code == 200
    # One viewing, one event, however many ranges it fetched (test_viewing_audit.py).
    assert len(await tags(app, "clip:view")) == 1


async def test_download_and_thumbnail(factory: Factory, app: FastAPI) -> None:
    home, browser, sealed, clip_id = await home_with_clip(factory, size=5000)
    download = await browser.get(f"/api/v1/households/{home}/clips/{clip_id}/download")
    assert download.content == sealed.plaintext
    assert download.headers["content-disposition"].startswith('attachment; filename="clip-')
    thumb = await browser.get(f"/api/v1/households/{home}/clips/{clip_id}/thumbnail")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert thumb.content.startswith(b"\xff\xd8 thumbnail ")
    assert await tags(app, "clip:download") == ["clip:download"]
    assert await tags(app, "clip:thumbnail") == ["clip:thumbnail:view"]


async def test_nobody_outside_the_household_reaches_the_footage(factory: Factory) -> None:
    home, _, _, clip_id = await home_with_clip(factory)

    stranger = await factory.signed_in(await factory.user())
    admin = await factory.signed_in(await factory.user(Role.operator_admin))
    other_home = await factory.household(user := await factory.user())
    other_owner = await factory.signed_in(user)
    for path in ("video", "download", "thumbnail", "sealed"):
        url = f"/api/v1/households/{home}/clips/{clip_id}/{path}"
        assert_error(await stranger.get(url), 403)
        assert_error(await admin.get(url), 403)
        # Naming their own household does not reach another household's clip.
        assert_error(
            await other_owner.get(f"/api/v1/households/{other_home}/clips/{clip_id}/{path}"), 404
        )


async def test_shared_users_watch_but_do_not_delete(factory: Factory) -> None:
    owner, partner = await factory.user(), await factory.user()
    home = await factory.household(owner)
    await factory.share(home, owner, partner)
    camera = await factory.camera(owner, home)
    sealed = seal_clip(camera.id, camera.key, camera.recipients, 0, size=3000)
    clip_id = (await upload(camera.client, sealed)).json()["clip_id"]
    shared = await factory.signed_in(partner)
    video = await shared.get(f"/api/v1/households/{home}/clips/{clip_id}/video")
    assert video.content == sealed.plaintext
    assert_error(await shared.delete(f"/api/v1/households/{home}/clips/{clip_id}"), 403)


async def test_owner_deletes_a_clip_and_its_objects(factory: Factory, app: FastAPI) -> None:
    home, browser, _, clip_id = await home_with_clip(factory, size=3000)
    store = app.state.clip_store
    assert len(await store.list(f"households/{home}/")) == 2
    assert (await browser.delete(f"/api/v1/households/{home}/clips/{clip_id}")).status_code == 204
    assert await store.list(f"households/{home}/") == []
    assert_error(await browser.get(f"/api/v1/households/{home}/clips/{clip_id}/video"), 404)
    assert_error(await browser.delete(f"/api/v1/households/{home}/clips/{clip_id}"), 404)
    assert await tags(app, "clip:delete") == ["clip:delete"]


async def test_a_held_clip_is_neither_deleted_nor_expired(
    factory: Factory, app: FastAPI, clock: ManualClock
) -> None:
    home, browser, _, clip_id = await home_with_clip(factory, size=3000)
    async with app.state.sessionmaker.begin() as db:
        db.add(ClipHold(clip_id=uuid.UUID(clip_id), reason="preservation request 2026-17"))
    refused = await browser.delete(f"/api/v1/households/{home}/clips/{clip_id}")
    assert "legal hold" in str(assert_error(refused, 409, "legal_hold")["message"])
    clock.advance(timedelta(days=400))
    result = await run_retention(app.state.sessionmaker, app.state.clip_store, clock.now())
    assert (result.expired, result.held) == (0, 1)
    assert len(await app.state.clip_store.list(f"households/{home}/")) == 2  # still stored
    async with app.state.sessionmaker() as db:
        assert await db.get(Clip, uuid.UUID(clip_id)) is not None


async def test_retention_expires_old_clips_only(factory: Factory, app: FastAPI) -> None:
    owner = await factory.user()
    home = await factory.household(owner)
    camera = await factory.camera(owner, home)
    old = seal_clip(
        camera.id,
        camera.key,
        camera.recipients,
        0,
        size=2000,
        start="2026-10-01T10:00:00.000+00:00",
    )
    new = seal_clip(
        camera.id,
        camera.key,
        camera.recipients,
        1,
        old.digest,
        size=2000,
        start="2026-11-25T10:00:00.000+00:00",
    )
    for sealed in (old, new):
        assert (await upload(camera.client, sealed)).status_code == 200
    browser = await factory.signed_in(owner)
    plan = await browser.put(
        f"/api/v1/households/{home}/plan", json={"kind": "recording", "retention_days": 30}
    )
    assert plan.status_code == 200, plan.text

    now = datetime(2026, 11, 26, tzinfo=UTC)
    result = await run_retention(app.state.sessionmaker, app.state.clip_store, now)
    assert result.expired == 1
    listed = (await browser.get(f"/api/v1/households/{home}/clips")).json()
    assert [c["sequence"] for c in listed] == [1]
    assert len(await app.state.clip_store.list(f"households/{home}/")) == 2  # clip + thumb of #1
    assert await tags(app, "clip:expire") == ["clip:expire"]
    # Going live-only stores nothing more and keeps nothing.
    await browser.put(f"/api/v1/households/{home}/plan", json={"kind": "live_only"})
    assert (await run_retention(app.state.sessionmaker, app.state.clip_store, now)).expired == 1
    assert (await browser.get(f"/api/v1/households/{home}/clips")).json() == []
    async with app.state.sessionmaker() as db:
        # Tombstones remain (sequence and hash only), nothing else of the clips.
        rows = (await db.scalars(select(Clip))).all()
        assert [(r.status, r.manifest, r.labels) for r in rows] == [("deleted", "", [])] * 2


@pytest.mark.parametrize(
    "body",
    [{"kind": "forever"}, {"kind": "recording", "retention_days": 0},
     {"kind": "recording", "retention_days": 366}, {"kind": "recording", "x": 1}, {}],
)  # fmt: skip
async def test_bad_plans_are_refused(factory: Factory, body: dict[str, object]) -> None:
    owner = await factory.user()
    home = await factory.household(owner)
    browser = await factory.signed_in(owner)
    assert_error(await browser.put(f"/api/v1/households/{home}/plan", json=body), 422)


async def test_sealed_exports_verify_offline_and_tampering_is_caught(
    factory: Factory, tmp_path: Path
) -> None:
    owner = await factory.user()
    home = await factory.household(owner)
    camera = await factory.camera(owner, home)
    browser = await factory.signed_in(owner)
    ids = []
    for sealed in chain_of(camera.id, camera.key, camera.recipients, 3):
        ids.append((await upload(camera.client, sealed)).json()["clip_id"])
    folder = tmp_path / "export"
    for clip_id in ids:
        response = await browser.get(f"/api/v1/households/{home}/clips/{clip_id}/sealed")
        assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
        with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
            archive.extractall(folder)
    pinned = Options(device_keys={str(camera.id): camera.key.public}, from_start=True)
    report = verify_path(folder, pinned)
    assert report.ok, report
    assert len(report.clips) == 3
    # One flipped byte in the middle clip: caught offline, by the hash in its signed manifest.
    target = folder / "000000000001.clip.dws"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    assert not verify_path(folder, pinned).ok
    # A clip removed from the export breaks the chain.
    target.unlink()
    (folder / "000000000001.manifest.json").unlink()
    (folder / "000000000001.thumb.dws").unlink()
    assert not verify_path(folder, pinned).ok
