"""Receiving sealed clips: exactly once, provably unaltered, visible only when verified;
every tampering refused with a specific error and an alert for the owner."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from doorwarden.audit.models import AuditEvent
from doorwarden.crypto.keys import SigningKey
from doorwarden.crypto.manifest import GENESIS
from tests.factories import Camera, Factory, assert_error
from tests.sealed_clips import Sealed, chain_of, seal_clip, send_data, upload


async def setup(factory: Factory) -> tuple[object, Camera, object]:
    owner = await factory.user()
    home = await factory.household(owner)
    camera = await factory.camera(owner, home)
    browser = await factory.signed_in(owner)
    return home, camera, browser


def first_clip(camera: Camera, **kw: object) -> Sealed:
    return seal_clip(camera.id, camera.key, camera.recipients, 0, **kw)  # type: ignore[arg-type]


async def alerts(browser: object, home: object) -> list[tuple[str, int]]:
    response = await browser.get(f"/api/v1/households/{home}/integrity-alerts")  # type: ignore[attr-defined]
    assert response.status_code == 200, response.text
    return [(a["kind"], a["sequence"]) for a in response.json()]


async def clips(browser: object, home: object, **params: str) -> list[dict[str, object]]:
    response = await browser.get(f"/api/v1/households/{home}/clips", params=params)  # type: ignore[attr-defined]
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_a_clip_arrives_is_verified_stored_and_listed(factory: Factory, app: FastAPI) -> None:
    home, camera, browser = await setup(factory)
    sealed = first_clip(camera)
    offered = await camera.client.put("/api/v1/device/clips/0", content=sealed.manifest)
    assert offered.status_code == 201 and offered.json()["received"] == 0
    assert await clips(browser, home) == []  # offered, not yet visible
    assert (await send_data(camera.client, sealed)).json()["received"] == len(sealed.ciphertext)
    assert await clips(browser, home) == []  # all bytes in, still not verified
    thumb = await camera.client.put("/api/v1/device/clips/0/thumbnail", content=sealed.thumbnail)
    assert thumb.status_code == 204
    done = await camera.client.post("/api/v1/device/clips/0/complete")
    assert done.status_code == 200 and done.json()["status"] == "verified", done.text
    [listed] = await clips(browser, home)
    assert listed["sequence"] == 0 and listed["labels"] == ["motion", "person"]
    assert listed["device_id"] == str(camera.id)
    store = app.state.clip_store
    keys = await store.list(f"households/{home}/devices/{camera.id}/")
    assert sorted(k.rsplit("/", 1)[1] for k in keys) == [
        "000000000000.clip.dws",
        "000000000000.thumb.dws",
    ]
    assert await store.get_range(keys[0], 0, 16) in (sealed.ciphertext[:16], sealed.thumbnail[:16])
    # The staged copy is gone once the clip is stored.
    assert not list((app.state.staging.root).rglob("*.part"))
    assert await alerts(browser, home) == []
    device = (await camera.client.get("/api/v1/device")).json()
    assert device["last_sequence"] == 0 and device["plan"]["kind"] == "recording"


async def test_offering_again_is_idempotent_and_resumes(factory: Factory) -> None:
    home, camera, browser = await setup(factory)
    sealed = first_clip(camera, size=900_000)
    assert (
        await camera.client.put("/api/v1/device/clips/0", content=sealed.manifest)
    ).status_code == 201
    half = 300_000
    assert (await send_data(camera.client, sealed, 0, half)).json()["received"] == half
    # The agent restarted: it offers the same manifest and learns where to resume.
    again = await camera.client.put("/api/v1/device/clips/0", content=sealed.manifest)
    assert again.status_code == 200 and again.json()["received"] == half
    # A part from the wrong offset is refused with the right one.
    wrong = await send_data(camera.client, sealed, 0, 1000)
    details = assert_error(wrong, 409, "wrong_offset")["details"]
    assert details == {"received": half}
    done = await upload(camera.client, sealed)
    assert done.json()["status"] == "verified"
    # And after verification: offered again, it is already there (no duplicate).
    replay = await upload(camera.client, sealed)
    assert replay.status_code == 200 and replay.json()["status"] == "verified"
    assert len(await clips(browser, home)) == 1


async def test_concurrent_duplicate_uploads_store_one_clip(factory: Factory) -> None:
    home, camera, browser = await setup(factory)
    sealed = first_clip(camera)
    results = await asyncio.gather(*(upload(camera.client, sealed) for _ in range(4)))
    statuses = sorted(r.status_code for r in results)
    # A duplicate racing the completion may also be told to send again (503
    # storage_unavailable, seen once on PostgreSQL in CI): a retry, never a loss, never a
    # second clip, never an alert (checked below).
    retried = [r for r in results if r.status_code == 503]
    assert all(r.json()["error"]["code"] == "storage_unavailable" for r in retried)
    assert 200 in statuses and all(s in (200, 201, 409, 503) for s in statuses), [
        r.text for r in results
    ]
    # Whatever interleaving happened, completing now yields exactly one verified clip.
    final = await upload(camera.client, sealed)
    assert final.json()["status"] == "verified"
    assert len(await clips(browser, home)) == 1
    assert await alerts(browser, home) == []


async def test_concurrent_completions_verify_once_and_never_fail(
    factory: Factory, app: FastAPI
) -> None:
    """Retried `complete` calls racing each other (on PostgreSQL they truly overlap): one
    verifies, the others wait and find the clip verified. None may see the staged files
    vanish under it (a 500), and the clip is received exactly once."""
    home, camera, browser = await setup(factory)
    for sealed in chain_of(camera.id, camera.key, camera.recipients, 3):
        base = f"/api/v1/device/clips/{sealed.sequence}"
        assert (await camera.client.put(base, content=sealed.manifest)).status_code == 201
        assert (await send_data(camera.client, sealed)).status_code == 200
        thumb = await camera.client.put(f"{base}/thumbnail", content=sealed.thumbnail)
        assert thumb.status_code == 204
        results = await asyncio.gather(*(camera.client.post(f"{base}/complete") for _ in range(8)))
        assert [r.status_code for r in results] == [200] * 8, [r.text for r in results]
        assert {r.json()["status"] for r in results} == {"verified"}
    assert len(await clips(browser, home)) == 3
    async with app.state.sessionmaker() as db:
        received = await db.scalars(select(AuditEvent).where(AuditEvent.tag == "clip:receive"))
        assert sorted(e.extra["sequence"] for e in received) == [0, 1, 2]


async def test_a_chain_is_accepted_in_order(factory: Factory) -> None:
    home, camera, browser = await setup(factory)
    for sealed in chain_of(camera.id, camera.key, camera.recipients, 4):
        assert (await upload(camera.client, sealed)).json()["status"] == "verified"
    assert [c["sequence"] for c in await clips(browser, home)] == [3, 2, 1, 0]
    assert await alerts(browser, home) == []


async def test_a_gap_is_accepted_and_the_owner_is_alerted(factory: Factory) -> None:
    home, camera, browser = await setup(factory)
    chain = chain_of(camera.id, camera.key, camera.recipients, 4)
    for sealed in (chain[0], chain[3]):  # 1 and 2 held back (a slow or evicting camera)
        assert (await upload(camera.client, sealed)).json()["status"] == "verified"
    assert await alerts(browser, home) == [("gap", 3)]
    # Late clips that fit the chain on both sides fill the gap.
    for sealed in (chain[1], chain[2]):
        assert (await upload(camera.client, sealed)).json()["status"] == "verified"
    assert [c["sequence"] for c in await clips(browser, home)] == [3, 2, 1, 0]
    assert await alerts(browser, home) == [("gap", 3)]  # the history stays


async def test_a_late_clip_that_does_not_fit_the_next_one_is_refused(factory: Factory) -> None:
    home, camera, browser = await setup(factory)
    chain = chain_of(camera.id, camera.key, camera.recipients, 3)
    for sealed in (chain[0], chain[2]):
        assert (await upload(camera.client, sealed)).json()["status"] == "verified"
    impostor = seal_clip(camera.id, camera.key, camera.recipients, 1, chain[0].digest)
    assert_error(await upload(camera.client, impostor), 409, "chain_broken")
    assert ("broken_link", 1) in await alerts(browser, home)


async def test_deleted_clips_stay_in_the_chain_and_are_not_accepted_again(
    factory: Factory,
) -> None:
    home, camera, browser = await setup(factory)
    chain = chain_of(camera.id, camera.key, camera.recipients, 3)
    ids = [(await upload(camera.client, s)).json()["clip_id"] for s in chain[:2]]
    assert (await browser.delete(f"/api/v1/households/{home}/clips/{ids[1]}")).status_code == 204
    # The replayed upload of the deleted clip is recognised, not stored again.
    assert_error(await upload(camera.client, chain[1]), 409, "replayed")
    # The next clip still links to the deleted one: no false gap, no broken link.
    assert (await upload(camera.client, chain[2])).json()["status"] == "verified"
    assert await alerts(browser, home) == []
    assert [c["sequence"] for c in await clips(browser, home)] == [2, 0]


async def test_a_fork_is_refused_and_alerted(factory: Factory) -> None:
    home, camera, browser = await setup(factory)
    assert (await upload(camera.client, first_clip(camera))).json()["status"] == "verified"
    other = first_clip(camera)  # another clip claiming sequence 0
    assert_error(await upload(camera.client, other), 409, "chain_fork")
    assert await alerts(browser, home) == [("fork", 0)]


async def test_a_broken_link_is_refused_and_alerted(factory: Factory) -> None:
    home, camera, browser = await setup(factory)
    assert (await upload(camera.client, first_clip(camera))).json()["status"] == "verified"
    stray = seal_clip(camera.id, camera.key, camera.recipients, 1, "ab" * 32)
    assert_error(await upload(camera.client, stray), 409, "chain_broken")
    assert await alerts(browser, home) == [("broken_link", 1)]
    # A camera's first clip must start its chain.
    fresh = await factory.camera(
        await factory.user(), await factory.household(await factory.user())
    )
    not_first = seal_clip(fresh.id, fresh.key, fresh.recipients, 0, "cd" * 32)
    assert_error(await upload(fresh.client, not_first), 409, "chain_broken")


async def test_a_forged_clip_is_refused(factory: Factory) -> None:
    home, camera, browser = await setup(factory)
    forger = SigningKey.generate()
    forged = seal_clip(camera.id, forger, camera.recipients, 0)
    assert_error(await upload(camera.client, forged), 422, "bad_signature")
    assert await alerts(browser, home) == [("bad_signature", 0)]
    assert await clips(browser, home) == []


async def test_another_cameras_clip_is_refused(factory: Factory) -> None:
    _, camera, _ = await setup(factory)
    other = await factory.camera(
        await factory.user(), await factory.household(await factory.user())
    )
    theirs = seal_clip(other.id, other.key, other.recipients, 0)
    # Sent with this camera's token: signed by another key and naming another device.
    assert_error(await upload(camera.client, theirs), 422, "bad_signature")
    # Signed with this camera's key but naming the other device.
    mislabelled = seal_clip(other.id, camera.key, camera.recipients, 0)
    assert_error(await upload(camera.client, mislabelled), 422, "wrong_device")


@pytest.mark.parametrize("where", ["first chunk", "middle", "last byte"])
async def test_a_flipped_byte_is_refused_then_the_good_copy_arrives(
    factory: Factory, where: str
) -> None:
    home, camera, browser = await setup(factory)
    sealed = first_clip(camera)
    position = {"first chunk": 40, "middle": len(sealed.ciphertext) // 2, "last byte": -1}[where]
    bad = bytearray(sealed.ciphertext)
    bad[position] ^= 0x01
    tampered = replace(sealed, ciphertext=bytes(bad))
    assert_error(await upload(camera.client, tampered), 422, "chunk_tampered")
    assert await clips(browser, home) == []
    assert await alerts(browser, home) == [("chunk_tampered", 0)]
    # Staging was discarded: the camera resends from the start and the clip is accepted.
    assert (await upload(camera.client, sealed)).json()["status"] == "verified"


async def test_swapped_truncated_and_reordered_data_are_refused(factory: Factory) -> None:
    home, camera, browser = await setup(factory)
    sealed = first_clip(camera)
    other = first_clip(camera)
    swapped = replace(sealed, ciphertext=other.ciphertext)
    assert_error(await upload(camera.client, swapped), 422, "chunk_tampered")
    # Two chunks (64 KiB + tag each, after the 16-byte header) exchanged.
    size, ct = 64 * 1024 + 16, sealed.ciphertext
    second, third = ct[16 + size : 16 + 2 * size], ct[16 + 2 * size : 16 + 3 * size]
    reordered = ct[: 16 + size] + third + second + ct[16 + 3 * size :]
    assert len(reordered) == len(ct)
    refused = await upload(camera.client, replace(sealed, ciphertext=reordered))
    assert "chunk 1" in str(assert_error(refused, 422, "chunk_tampered")["message"])
    # A short body can never complete: the server waits for the rest.
    offered = await camera.client.put("/api/v1/device/clips/0", content=sealed.manifest)
    assert offered.status_code == 200
    await send_data(camera.client, sealed, 0, 100_000)
    assert_error(await camera.client.post("/api/v1/device/clips/0/complete"), 409, "incomplete")
    assert await clips(browser, home) == []


async def test_a_thumbnail_that_does_not_match_is_refused(factory: Factory) -> None:
    _, camera, _ = await setup(factory)
    sealed = first_clip(camera)
    await camera.client.put("/api/v1/device/clips/0", content=sealed.manifest)
    wrong = await camera.client.put("/api/v1/device/clips/0/thumbnail", content=b"x" * 100)
    assert_error(wrong, 422, "hash_mismatch")


@pytest.mark.parametrize(
    "body", [b"", b"not json", b"[]", b'{"manifest": {}, "signature": "x"}', b"\x00" * 100]
)
async def test_malformed_manifests_are_refused(factory: Factory, body: bytes) -> None:
    _, camera, _ = await setup(factory)
    assert_error(
        await camera.client.put("/api/v1/device/clips/0", content=body), 422, "malformed_manifest"
    )


async def test_bad_ranges_are_refused(factory: Factory) -> None:
    _, camera, _ = await setup(factory)
    sealed = first_clip(camera)
    await camera.client.put("/api/v1/device/clips/0", content=sealed.manifest)
    url = "/api/v1/device/clips/0/data"
    total = len(sealed.ciphertext)
    for header, body in [
        (None, b"abc"),
        ("bytes 0-2/5", b"abc"),  # wrong total
        ("bytes 0-9/" + str(total), b"abc"),  # length mismatch
        ("bytes 5-2/" + str(total), b""),
        ("items 0-2/" + str(total), b"abc"),
    ]:
        headers = {"content-range": header} if header else {}
        assert_error(
            await camera.client.put(url, content=body, headers=headers), 400, "invalid_input"
        )
    # Data for a clip never offered.
    assert_error(
        await camera.client.put(
            "/api/v1/device/clips/7/data", content=b"a", headers={"content-range": "bytes 0-0/1"}
        ),
        404,
    )
    # An oversized part is refused before it is read.
    big = await camera.client.put(
        url,
        content=b"x" * (9 * 1024 * 1024),
        headers={"content-range": f"bytes 0-{9 * 1024 * 1024 - 1}/{total}"},
    )
    assert big.status_code == 413


async def test_a_revoked_camera_is_told_and_uploads_nothing(factory: Factory) -> None:
    owner = await factory.user()
    home = await factory.household(owner)
    camera = await factory.camera(owner, home)
    browser = await factory.signed_in(owner)
    assert (
        await browser.delete(f"/api/v1/households/{home}/devices/{camera.id}")
    ).status_code == 204
    refused = await camera.client.put("/api/v1/device/clips/0", content=first_clip(camera).manifest)
    error = assert_error(refused, 401, "device_revoked")
    assert "pair it again" in str(error["message"])
    assert_error(await camera.client.get("/api/v1/device"), 401, "device_revoked")


async def test_a_live_only_plan_refuses_recordings(factory: Factory, app: FastAPI) -> None:
    home, camera, browser = await setup(factory)
    changed = await browser.put(f"/api/v1/households/{home}/plan", json={"kind": "live_only"})
    assert changed.status_code == 200, changed.text
    assert (await camera.client.get("/api/v1/device")).json()["plan"]["kind"] == "live_only"
    assert_error(await upload(camera.client, first_clip(camera)), 403, "live_only")


async def test_user_credentials_cannot_upload_and_device_tokens_cannot_read(
    factory: Factory,
) -> None:
    home, camera, browser = await setup(factory)
    sealed = first_clip(camera)
    # The owner's own session is not a camera: refused, nothing created.
    refused = await browser.put("/api/v1/device/clips/0", content=sealed.manifest)
    assert "only a paired camera" in str(assert_error(refused, 403, "forbidden")["details"])
    # The camera's token reads no household data, its own household's included.
    for path in (
        f"/api/v1/households/{home}",
        f"/api/v1/households/{home}/clips",
        "/api/v1/account",
    ):
        assert_error(await camera.client.get(path), 401)


async def test_gap_at_the_start_and_label_and_day_filters(factory: Factory) -> None:
    home, camera, browser = await setup(factory)
    a = seal_clip(camera.id, camera.key, camera.recipients, 0, labels=("motion",))
    b = seal_clip(
        camera.id, camera.key, camera.recipients, 1, a.digest,
        labels=("motion", "person"), start="2026-11-26T08:00:00.000+00:00",
    )  # fmt: skip
    for sealed in (a, b):
        assert (await upload(camera.client, sealed)).json()["status"] == "verified"
    assert [c["sequence"] for c in await clips(browser, home, label="person")] == [1]
    assert [c["sequence"] for c in await clips(browser, home, label="motion")] == [1, 0]
    assert [c["sequence"] for c in await clips(browser, home, day="2026-11-25")] == [0]
    assert await clips(browser, home, label="pers") == []
    # A camera whose first upload is not sequence 0 (spool evicted before pairing):
    late = await factory.camera(await factory.user(), home)
    first = seal_clip(late.id, late.key, late.recipients, 5, GENESIS)
    assert (await upload(late.client, first)).json()["status"] == "verified"
    assert ("gap", 5) in await alerts(browser, home)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("0001-01-01T00:00:00+00:00", "0001-01-01T00:00:10+00:00"),
        ("2026-11-25T10:00:00", "2026-11-25T10:00:10"),  # no zone
        ("2026-11-25T10:00:10+00:00", "2026-11-25T10:00:00+00:00"),  # ends before it starts
        ("yesterday", "today"),
    ],
)
async def test_impossible_times_are_refused(factory: Factory, start: str, end: str) -> None:
    from doorwarden.crypto.manifest import sign
    from doorwarden.crypto.seal import ClipFacts, ClipSeal

    _, camera, _ = await setup(factory)
    sealer = ClipSeal(camera.recipients, mode="standard")
    b"".join(sealer.encrypt([b"clip"]))
    facts = ClipFacts(
        device=str(camera.id), sequence=0, previous=GENESIS, start_utc=start, end_utc=end,
        duration_ms=10_000, labels=(), motion_score=0, codec="h264", width=1, height=1,
    )  # fmt: skip
    manifest = sign(sealer.manifest(facts), camera.key).to_bytes()
    refused = await camera.client.put("/api/v1/device/clips/0", content=manifest)
    assert_error(refused, 422, "malformed_manifest")
