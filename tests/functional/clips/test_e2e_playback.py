"""What a member's browser fetches to open an end-to-end clip itself (clips/e2e/router.py):
the signed manifest as stored, the camera's key, the clip before it in the chain, and the
sealed bytes exactly as uploaded; fetching the bytes is a viewing, audited once."""

from __future__ import annotations

import uuid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from doorwarden.accounts.models import User
from doorwarden.audit.models import AuditEvent
from doorwarden.crypto.keys import RecipientKey, b64e
from doorwarden.crypto.manifest import GENESIS
from tests.factories import Factory, assert_error
from tests.sealed_clips import Sealed, seal_clip, upload


async def events(app: FastAPI, tag: str, clip_id: str) -> list[AuditEvent]:
    async with app.state.sessionmaker() as db:
        query = select(AuditEvent).where(AuditEvent.tag == tag, AuditEvent.target_id == clip_id)
        return list((await db.scalars(query)).all())


async def e2e_home(
    factory: Factory,
) -> tuple[uuid.UUID, User, httpx.AsyncClient, list[Sealed], dict[int, str]]:
    """An end-to-end household whose camera uploaded clips 0, 1 (linked) and 3 (a gap)."""
    owner = await factory.user()
    home = await factory.household(owner)
    camera = await factory.camera(owner, home)
    browser = await factory.signed_in(owner)
    member = RecipientKey.generate()
    registered = await browser.put(
        "/api/v1/account/e2e-key", json={"public_key": b64e(member.public)}
    )
    assert registered.status_code == 200, registered.text
    switched = await browser.put(f"/api/v1/households/{home}/encryption", json={"mode": "e2e"})
    assert switched.status_code == 200, switched.text
    sealed: list[Sealed] = []
    ids: dict[int, str] = {}
    previous = GENESIS
    for sequence in (0, 1, 3):
        one = seal_clip(
            camera.id, camera.key, [member.public], sequence,
            "cd" * 32 if sequence == 3 else previous, size=150_000, mode="e2e",
        )  # fmt: skip
        done = await upload(camera.client, one)
        assert done.status_code == 200 and done.json()["status"] == "verified", done.text
        sealed.append(one)
        ids[sequence] = str(done.json()["clip_id"])
        previous = one.digest
    return home, owner, browser, sealed, ids


async def test_the_page_gets_the_manifest_the_chain_and_the_sealed_bytes(
    factory: Factory, app: FastAPI
) -> None:
    home, _, browser, sealed, ids = await e2e_home(factory)
    api = f"/api/v1/households/{home}/clips"

    facts = (await browser.get(f"{api}/{ids[1]}/e2e")).json()
    assert facts["signed_manifest"] == sealed[1].manifest.decode()
    assert facts["sequence"] == 1
    assert facts["device"]["name"] == "Front door"
    assert facts["predecessor"] == {
        "sequence": 0,
        "deleted": False,
        "signed_manifest": sealed[0].manifest.decode(),
        "digest": sealed[0].digest,
    }
    assert (await browser.get(f"{api}/{ids[0]}/e2e")).json()["predecessor"] is None  # genesis
    assert (await browser.get(f"{api}/{ids[3]}/e2e")).json()["predecessor"] is None  # a gap

    whole = await browser.get(facts["ciphertext_url"])
    assert whole.status_code == 200 and whole.content == sealed[1].ciphertext
    assert whole.headers["cache-control"] == "private, no-store"
    part = await browser.get(facts["ciphertext_url"], headers={"range": "bytes=16-1000"})
    assert part.status_code == 206 and part.content == sealed[1].ciphertext[16:1001]
    thumb = await browser.get(facts["thumbnail_url"])
    assert thumb.status_code == 200 and thumb.content == sealed[1].thumbnail

    # Two requests of one viewing, one event; the thumbnail is its own kind.
    assert len(await events(app, "clip:view", ids[1])) == 1
    assert len(await events(app, "clip:thumbnail:view", ids[1])) == 1


async def test_a_deleted_predecessor_is_known_by_its_hash(factory: Factory) -> None:
    home, _, browser, sealed, ids = await e2e_home(factory)
    api = f"/api/v1/households/{home}/clips"
    assert (await browser.delete(f"{api}/{ids[0]}")).status_code == 204
    facts = (await browser.get(f"{api}/{ids[1]}/e2e")).json()
    assert facts["predecessor"] == {
        "sequence": 0,
        "deleted": True,
        "signed_manifest": None,
        "digest": sealed[0].digest,
    }


@pytest.mark.parametrize("path", ["e2e", "ciphertext", "sealed-thumbnail"])
async def test_a_standard_clip_and_a_stranger_are_refused(factory: Factory, path: str) -> None:
    owner = await factory.user()
    home = await factory.household(owner)
    camera = await factory.camera(owner, home)
    done = await upload(camera.client, seal_clip(camera.id, camera.key, camera.recipients, 0))
    clip_id = done.json()["clip_id"]
    browser = await factory.signed_in(owner)
    standard = await browser.get(f"/api/v1/households/{home}/clips/{clip_id}/{path}")
    assert_error(standard, 409, "not_end_to_end")

    e2e, _, _, _, ids = await e2e_home(factory)
    stranger = await factory.signed_in(await factory.user())
    assert_error(await stranger.get(f"/api/v1/households/{e2e}/clips/{ids[0]}/{path}"), 403)
    # Another household's clip through one's own household: no such clip.
    mine = await browser.get(f"/api/v1/households/{home}/clips/{ids[0]}/{path}")
    assert_error(mine, 404)
