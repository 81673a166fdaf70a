"""Upload staging shared between server instances: two apps on one database and one S3
bucket (moto's server on loopback), parts of one clip sent to either, completed by
either; the parts verified as they arrive where they arrive in order, by a full pass
otherwise; a tampered part caught on both paths; duplicates racing; the sweep of
abandoned S3 staging."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import func, select

from doorwarden.audit.models import AuditEvent
from doorwarden.clips.models import Clip, ClipStatus, IntegrityAlert
from doorwarden.clips.staging_s3 import PREFIX, S3Staging
from doorwarden.clips.sweep import sweep
from doorwarden.clock import ManualClock
from doorwarden.config import Settings
from doorwarden.main import create_app
from tests.factories import Camera, Factory, assert_error, make_client
from tests.sealed_clips import PART, Sealed, seal_clip
from tests.unit.storage.conftest import (
    ACCESS_KEY_ID,
    REGION,
    SECRET_ACCESS_KEY,
    S3Endpoint,
    s3_endpoint,  # noqa: F401 - the session fixture, shared with the storage tests
)

SIZE = 5 * PART + 1000  # six parts


@pytest.fixture
def settings(settings: Settings, s3_endpoint: S3Endpoint) -> Settings:  # noqa: F811
    return settings.model_copy(
        update={
            "storage_url": f"s3://{s3_endpoint.new_bucket()}",
            "s3_endpoint_url": s3_endpoint.url,
            "s3_region": REGION,
            "s3_access_key_id": ACCESS_KEY_ID,
            "s3_secret_access_key": SecretStr(SECRET_ACCESS_KEY),
            "s3_allow_http": True,
        }
    )


@pytest.fixture
async def other(settings: Settings, clock: ManualClock) -> AsyncIterator[FastAPI]:
    """A second instance: its own engine, staging object and verifiers; the same
    database and bucket."""
    application = create_app(settings, clock=clock)
    async with application.router.lifespan_context(application):
        yield application


async def _camera(factory: Factory) -> Camera:
    owner = await factory.user()
    home = await factory.household(owner)
    return await factory.camera(owner, home)


def _client_on(app: FastAPI, camera: Camera) -> httpx.AsyncClient:
    client = make_client(app, "203.0.113.50")
    client.headers["authorization"] = camera.client.headers["authorization"]
    return client


async def _part(client: httpx.AsyncClient, sealed: Sealed, offset: int) -> httpx.Response:
    total = len(sealed.ciphertext)
    part = sealed.ciphertext[offset : offset + PART]
    return await client.put(
        f"/api/v1/device/clips/{sealed.sequence}/data",
        content=part,
        headers={"content-range": f"bytes {offset}-{offset + len(part) - 1}/{total}"},
    )


async def _send(clients: list[httpx.AsyncClient], sealed: Sealed) -> None:
    """The manifest to the first client, then part i to client i % n, the thumbnail to
    the last."""
    base = f"/api/v1/device/clips/{sealed.sequence}"
    assert (await clients[0].put(base, content=sealed.manifest)).status_code == 201
    for i, offset in enumerate(range(0, len(sealed.ciphertext), PART)):
        response = await _part(clients[i % len(clients)], sealed, offset)
        assert response.status_code == 200, response.text
        assert response.json()["received"] == min(offset + PART, len(sealed.ciphertext))
    thumb = await clients[-1].put(f"{base}/thumbnail", content=sealed.thumbnail)
    assert thumb.status_code == 204


async def _verified_once(app: FastAPI, camera: Camera, sealed: Sealed) -> None:
    async with app.state.sessionmaker() as db:
        clip = await db.scalar(
            select(Clip).where(Clip.device_id == camera.id, Clip.sequence == sealed.sequence)
        )
        assert clip is not None and clip.status is ClipStatus.verified
        receipts = await db.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.tag == "clip:receive", AuditEvent.target_id == str(clip.id))
        )
        assert receipts == 1
        assert not list(await db.scalars(select(IntegrityAlert)))
    store = app.state.clip_store
    stored = await store.get_range(clip.object_key, 0, clip.ciphertext_size)
    assert stored == sealed.ciphertext
    assert clip.thumbnail_key is not None
    assert await store.get_range(clip.thumbnail_key, 0, len(sealed.thumbnail)) == sealed.thumbnail
    assert await store.list(PREFIX) == []  # staging removed after the commit


async def test_the_store_is_s3_so_the_staging_is_the_buckets(app: FastAPI, other: FastAPI) -> None:
    assert isinstance(app.state.staging, S3Staging)
    assert app.state.staging is not other.state.staging


async def test_parts_alternating_between_instances_complete_into_one_clip(
    factory: Factory, app: FastAPI, other: FastAPI
) -> None:
    camera = await _camera(factory)
    sealed = seal_clip(camera.id, camera.key, camera.recipients, 0, size=SIZE)
    async with _client_on(other, camera) as on_b:
        await _send([camera.client, on_b], sealed)
        # Neither instance saw every part: both dropped (or never had) a verifier.
        assert len(app.state.staging.verifiers) == len(other.state.staging.verifiers) == 0
        # The offer on either instance reports the same resume offset.
        again = await on_b.put("/api/v1/device/clips/0", content=sealed.manifest)
        assert again.json()["received"] == len(sealed.ciphertext)
        done = await on_b.post("/api/v1/device/clips/0/complete")
    assert done.status_code == 200 and done.json()["status"] == "verified", done.text
    await _verified_once(app, camera, sealed)


async def test_parts_on_one_instance_are_verified_as_they_arrive(
    factory: Factory, app: FastAPI, other: FastAPI
) -> None:
    camera = await _camera(factory)
    sealed = seal_clip(camera.id, camera.key, camera.recipients, 0, size=SIZE)
    await _send([camera.client], sealed)
    assert len(app.state.staging.verifiers) == 1
    done = await camera.client.post("/api/v1/device/clips/0/complete")
    assert done.status_code == 200 and done.json()["status"] == "verified", done.text
    assert len(app.state.staging.verifiers) == 0
    await _verified_once(app, camera, sealed)


async def test_a_resumed_upload_whose_verifier_was_lost_still_verifies(
    factory: Factory, app: FastAPI, other: FastAPI
) -> None:
    """All but the last parts reach A, which then loses its verifiers (a restart); the
    rest goes to B, and A completes it: the full pass over the staged parts."""
    camera = await _camera(factory)
    sealed = seal_clip(camera.id, camera.key, camera.recipients, 0, size=SIZE)
    base = "/api/v1/device/clips/0"
    assert (await camera.client.put(base, content=sealed.manifest)).status_code == 201
    for offset in range(0, 4 * PART, PART):
        assert (await _part(camera.client, sealed, offset)).status_code == 200
    app.state.staging.verifiers.drop(camera.id, 0)
    async with _client_on(other, camera) as on_b:
        resumed = await on_b.put(base, content=sealed.manifest)
        assert resumed.json()["received"] == 4 * PART
        for offset in range(4 * PART, len(sealed.ciphertext), PART):
            assert (await _part(on_b, sealed, offset)).status_code == 200
        assert (await on_b.put(f"{base}/thumbnail", content=sealed.thumbnail)).status_code == 204
    done = await camera.client.post(f"{base}/complete")
    assert done.status_code == 200 and done.json()["status"] == "verified", done.text
    await _verified_once(app, camera, sealed)


@pytest.mark.parametrize("path", ["streamed", "full pass"])
async def test_a_tampered_part_is_caught(
    factory: Factory, app: FastAPI, other: FastAPI, path: str
) -> None:
    camera = await _camera(factory)
    sealed = seal_clip(camera.id, camera.key, camera.recipients, 0, size=SIZE)
    tampered = bytearray(sealed.ciphertext)
    tampered[3 * PART + 100] ^= 0x01  # inside a chunk of the fourth part
    bad = Sealed(
        sealed.sequence, sealed.manifest, bytes(tampered), sealed.thumbnail, sealed.digest,
        sealed.plaintext,
    )  # fmt: skip
    async with _client_on(other, camera) as on_b:
        clients = [camera.client] if path == "streamed" else [camera.client, on_b]
        await _send(clients, bad)
        if path == "streamed":
            assert len(app.state.staging.verifiers) == 1
        done = await camera.client.post("/api/v1/device/clips/0/complete")
    assert_error(done, 422, "chunk_tampered")
    async with app.state.sessionmaker() as db:
        alerts = [str(a.kind) for a in await db.scalars(select(IntegrityAlert))]
        status = await db.scalar(select(Clip.status).where(Clip.device_id == camera.id))
    assert alerts == ["chunk_tampered"] and status is ClipStatus.receiving
    assert await app.state.clip_store.list("households") == []  # nothing stored
    assert await app.state.clip_store.list(PREFIX) == []  # discarded: resent from 0
    # The camera sends the real bytes again: verified.
    again = await camera.client.put("/api/v1/device/clips/0", content=sealed.manifest)
    assert again.json()["received"] == 0
    for offset in range(0, len(sealed.ciphertext), PART):
        assert (await _part(camera.client, sealed, offset)).status_code == 200
    thumb = await camera.client.put("/api/v1/device/clips/0/thumbnail", content=sealed.thumbnail)
    assert thumb.status_code == 204
    done = await camera.client.post("/api/v1/device/clips/0/complete")
    assert done.status_code == 200 and done.json()["status"] == "verified", done.text


async def test_duplicate_parts_racing_on_two_instances_stage_once(
    factory: Factory, app: FastAPI, other: FastAPI
) -> None:
    camera = await _camera(factory)
    sealed = seal_clip(camera.id, camera.key, camera.recipients, 0, size=SIZE)
    base = "/api/v1/device/clips/0"
    assert (await camera.client.put(base, content=sealed.manifest)).status_code == 201
    async with _client_on(other, camera) as on_b:
        for offset in range(0, len(sealed.ciphertext), PART):
            answers = await asyncio.gather(
                _part(camera.client, sealed, offset), _part(on_b, sealed, offset)
            )
            end = min(offset + PART, len(sealed.ciphertext))
            codes = sorted(r.status_code for r in answers)
            # One stages it; the other finds it staged: 409 with the new offset.
            assert codes == [200, 409], [r.text for r in answers]
            for response in answers:
                received = response.json()
                if response.status_code == 409:
                    received = received["error"]["details"]
                assert received["received"] == end
        assert (await on_b.put(f"{base}/thumbnail", content=sealed.thumbnail)).status_code == 204
        staged = await app.state.clip_store.list(PREFIX)
        assert len(staged) == 7  # six parts, one thumbnail: no duplicate
        done, again = await asyncio.gather(
            camera.client.post(f"{base}/complete"), on_b.post(f"{base}/complete")
        )
    for response in (done, again):
        assert response.status_code == 200 and response.json()["status"] == "verified"
    await _verified_once(app, camera, sealed)


async def test_the_sweep_removes_abandoned_and_finished_s3_staging(
    factory: Factory, app: FastAPI, other: FastAPI
) -> None:
    camera = await _camera(factory)
    staging: S3Staging = app.state.staging
    done_clip = seal_clip(camera.id, camera.key, camera.recipients, 0, size=SIZE)
    await _send([camera.client], done_clip)
    complete = await camera.client.post("/api/v1/device/clips/0/complete")
    assert complete.json()["status"] == "verified"
    await staging.write_thumbnail(camera.id, 0, b"left by a crash after the commit")
    await staging.write_thumbnail(uuid.uuid4(), 3, b"a device whose rows are gone")
    pending = seal_clip(camera.id, camera.key, camera.recipients, 1, done_clip.digest)
    base = "/api/v1/device/clips/1"
    assert (await camera.client.put(base, content=pending.manifest)).status_code == 201
    assert (await _part(camera.client, pending, 0)).status_code == 200

    async def run(abandon_s: float) -> tuple[int, int, int, int]:
        async with other.state.sessionmaker.begin() as db:
            result = await sweep(
                db,
                staging=other.state.staging,
                store=other.state.clip_store,
                temp_age_s=3600,
                abandon_s=abandon_s,
            )
        return result.verified, result.orphaned, result.abandoned, result.failed

    # The upload in progress is spared; what a crash left is removed, by either instance.
    assert await run(7 * 86400) == (1, 1, 0, 0)
    assert await staging.offset(camera.id, 1) == PART
    assert len(await app.state.clip_store.list(PREFIX)) == 1
    # Idle longer than the limit (0 here): abandoned, removed; the camera resends from 0.
    assert await run(0) == (0, 0, 1, 0)
    assert await app.state.clip_store.list(PREFIX) == []
    offered = await camera.client.put(base, content=pending.manifest)
    assert offered.json()["received"] == 0
