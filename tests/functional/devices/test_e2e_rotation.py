"""Rotation of an end-to-end household's recipients on membership change (docs/e2e.md):
the set a camera is told (signed by the server) follows the members; a removed member's
key opens the clips recorded before the removal and none after; a manifest wrapped to a
key that was no member's when the clip was recorded is refused (clips/ingest.py); a
clip recorded before a removal and uploaded after is still accepted."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from doorwarden.crypto.errors import NotARecipientError, SignatureError
from doorwarden.crypto.keys import RecipientKey, b64d, b64e, key_id
from doorwarden.crypto.manifest import SignedManifest
from doorwarden.crypto.member_set import open_member_set
from doorwarden.crypto.seal import clip_key, open_clip
from doorwarden.crypto.wrap import unwrap_key
from tests.factories import Camera, Factory, assert_error
from tests.sealed_clips import Sealed, seal_clip, upload


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds")


async def _register(client: httpx.AsyncClient) -> RecipientKey:
    key = RecipientKey.generate()
    done = await client.put("/api/v1/account/e2e-key", json={"public_key": b64e(key.public)})
    assert done.status_code == 200, done.text
    return key


async def _told(camera: Camera) -> list[bytes]:
    """The recipients the device endpoint gives the camera, from the signed set."""
    state = (await camera.client.get("/api/v1/device")).json()
    settings_key = b64d(state["settings_key"], what="k", length=32)
    members = open_member_set(
        settings_key, state["member_set"]["document"], state["member_set"]["signature"]
    )
    assert members.device_id == str(camera.id) and members.mode == state["mode"] == "e2e"
    # The plain fields (older agents) say the same as the signed document.
    assert [r["key_id"] for r in state["recipients"]] == [k for k, _ in members.recipients]
    return [public for _, public in members.recipients]


def _opens(sealed: Sealed, camera: Camera, key: RecipientKey) -> bool:
    signed = SignedManifest.loads(sealed.manifest)
    try:
        plain = b"".join(open_clip(signed, camera.key.public, [sealed.ciphertext], key))
    except NotARecipientError:
        return False
    assert plain == sealed.plaintext
    return True


async def test_a_removed_member_cannot_open_clips_recorded_after_removal(factory: Factory) -> None:
    owner, partner, lodger = await factory.user(), await factory.user(), await factory.user()
    home = await factory.household(owner)
    await factory.share(home, owner, partner)
    await factory.share(home, owner, lodger)
    browser = await factory.signed_in(owner)
    keys = {
        "owner": await _register(browser),
        "partner": await _register(await factory.signed_in(partner)),
        "lodger": await _register(await factory.signed_in(lodger)),
    }
    switched = await browser.put(f"/api/v1/households/{home}/encryption", json={"mode": "e2e"})
    assert switched.status_code == 200, switched.text
    camera = await factory.camera(owner, home)

    everyone = await _told(camera)
    assert {key_id(k) for k in everyone} == {key_id(k.public) for k in keys.values()}
    before = datetime.now(UTC) - timedelta(hours=1)
    first = seal_clip(
        camera.id, camera.key, everyone, 0, size=90_000, start=_iso(before), mode="e2e"
    )
    assert (await upload(camera.client, first)).json()["status"] == "verified"

    removed = await browser.delete(f"/api/v1/households/{home}/members/{partner.id}")
    assert removed.status_code == 204, removed.text
    removed_at = datetime.now(UTC)

    # The camera's next fetch: the signed set without the partner.
    remaining = await _told(camera)
    assert {key_id(k) for k in remaining} == {
        key_id(keys["owner"].public),
        key_id(keys["lodger"].public),
    }
    after = removed_at + timedelta(minutes=10)
    second = seal_clip(
        camera.id, camera.key, remaining, 1, first.digest, size=90_000, start=_iso(after),
        mode="e2e",
    )  # fmt: skip
    done = await upload(camera.client, second)
    assert done.json()["status"] == "verified", done.text

    # The removed member's key opens the clip from before, not the one from after.
    assert _opens(first, camera, keys["partner"])
    assert not _opens(second, camera, keys["partner"])
    wrapped = SignedManifest.loads(second.manifest).manifest.recipients
    with pytest.raises(NotARecipientError):
        unwrap_key(wrapped[0], keys["partner"])
    with pytest.raises(NotARecipientError):
        clip_key(SignedManifest.loads(second.manifest), camera.key.public, keys["partner"])
    assert _opens(second, camera, keys["owner"]) and _opens(second, camera, keys["lodger"])

    # A camera still sealing to the old set, for a clip recorded well after the removal:
    # refused, as is a clip wrapped to a stranger's key.
    stale = seal_clip(
        camera.id, camera.key, everyone, 2, second.digest, start=_iso(after), mode="e2e"
    )
    refused = assert_error(await upload(camera.client, stale), 422, "not_a_member")
    assert refused["details"]["key_ids"] == [key_id(keys["partner"].public)]
    outsider = RecipientKey.generate()
    strange = seal_clip(
        camera.id, camera.key, [*remaining, outsider.public], 2, second.digest,
        start=_iso(after), mode="e2e",
    )  # fmt: skip
    assert_error(await upload(camera.client, strange), 422, "not_a_member")

    # A clip recorded before the removal, uploaded only now (the camera was offline):
    # its recipients were the members then; accepted.
    late = seal_clip(
        camera.id, camera.key, everyone, 2, second.digest,
        start=_iso(removed_at - timedelta(minutes=5)), mode="e2e",
    )  # fmt: skip
    done = await upload(camera.client, late)
    assert done.json()["status"] == "verified", done.text
    assert _opens(late, camera, keys["partner"])


async def test_a_replaced_key_stops_being_a_recipient_and_old_clips_stay_accepted(
    factory: Factory,
) -> None:
    """A lost device: the member registers a new key; the old one is no recipient of
    clips recorded after that, and clips sealed to it before still arrive."""
    owner = await factory.user()
    home = await factory.household(owner)
    browser = await factory.signed_in(owner)
    old = await _register(browser)
    assert (
        await browser.put(f"/api/v1/households/{home}/encryption", json={"mode": "e2e"})
    ).status_code == 200
    camera = await factory.camera(owner, home)
    assert [key_id(k) for k in await _told(camera)] == [key_id(old.public)]

    factory.app.state.clock.advance(timedelta(minutes=1))  # the loss is noticed later
    new = await _register(browser)
    replaced_at = datetime.now(UTC) + timedelta(minutes=1)
    assert [key_id(k) for k in await _told(camera)] == [key_id(new.public)]

    earlier = seal_clip(
        camera.id, camera.key, [old.public], 0,
        start=_iso(replaced_at - timedelta(minutes=30)), mode="e2e",
    )  # fmt: skip
    assert (await upload(camera.client, earlier)).json()["status"] == "verified"
    later = seal_clip(
        camera.id, camera.key, [new.public, old.public], 1, earlier.digest,
        start=_iso(replaced_at + timedelta(minutes=10)), mode="e2e",
    )  # fmt: skip
    assert_error(await upload(camera.client, later), 422, "not_a_member")


async def test_a_member_added_becomes_a_recipient(factory: Factory) -> None:
    owner, newcomer = await factory.user(), await factory.user()
    home = await factory.household(owner)
    browser = await factory.signed_in(owner)
    await _register(browser)
    newcomer_key = await _register(await factory.signed_in(newcomer))
    assert (
        await browser.put(f"/api/v1/households/{home}/encryption", json={"mode": "e2e"})
    ).status_code == 200
    camera = await factory.camera(owner, home)
    assert key_id(newcomer_key.public) not in {key_id(k) for k in await _told(camera)}
    # Before they join, a clip wrapped to their key is wrapped to a stranger.
    start = _iso(datetime.now(UTC) - timedelta(hours=2))
    wrapped_to = [*await _told(camera), newcomer_key.public]
    early = seal_clip(camera.id, camera.key, wrapped_to, 0, start=start, mode="e2e")
    assert_error(await upload(camera.client, early), 422, "not_a_member")
    await factory.share(home, owner, newcomer)
    told = await _told(camera)
    assert key_id(newcomer_key.public) in {key_id(k) for k in told}
    now = _iso(datetime.now(UTC) + timedelta(seconds=1))
    sealed = seal_clip(camera.id, camera.key, told, 0, start=now, mode="e2e")
    assert (await upload(camera.client, sealed)).json()["status"] == "verified"
    assert _opens(sealed, camera, newcomer_key)


async def test_a_member_set_signed_for_another_device_or_tampered_does_not_open(
    factory: Factory,
) -> None:
    owner = await factory.user()
    home = await factory.household(owner)
    browser = await factory.signed_in(owner)
    await _register(browser)
    await browser.put(f"/api/v1/households/{home}/encryption", json={"mode": "e2e"})
    camera = await factory.camera(owner, home)
    state = (await camera.client.get("/api/v1/device")).json()
    key = b64d(state["settings_key"], what="k", length=32)
    document, signature = state["member_set"]["document"], state["member_set"]["signature"]
    outsider = b64e(RecipientKey.generate().public)
    tampered = document.replace(state["recipients"][0]["public_key"], outsider)
    with pytest.raises(SignatureError):
        open_member_set(key, tampered, signature)
    assert open_member_set(key, document, signature).household_id == str(home)
    assert uuid.UUID(open_member_set(key, document, signature).device_id) == camera.id


async def test_a_camera_offline_across_a_removal_loses_no_clip(factory: Factory) -> None:
    """The camera sealed to the set it last heard of while it could not hear of the
    removal: its clip is accepted, not refused for ever; once it has been given the new
    set, a clip sealed to the old one is refused."""
    owner, partner = await factory.user(), await factory.user()
    home = await factory.household(owner)
    await factory.share(home, owner, partner)
    browser = await factory.signed_in(owner)
    mine, theirs = await _register(browser), await _register(await factory.signed_in(partner))
    switched = await browser.put(f"/api/v1/households/{home}/encryption", json={"mode": "e2e"})
    assert switched.status_code == 200, switched.text
    camera = await factory.camera(owner, home)
    clock = factory.app.state.clock

    both = await _told(camera)  # the last set it hears of before going offline
    assert len(both) == 2
    removed = await browser.delete(f"/api/v1/households/{home}/members/{partner.id}")
    assert removed.status_code == 204, removed.text
    offline = clock.now() + timedelta(minutes=5)  # recorded while it hears nothing
    kept = seal_clip(camera.id, camera.key, both, 0, start=_iso(offline), mode="e2e")

    clock.advance(timedelta(minutes=20))  # back online: it hears of the removal first
    assert {key_id(k) for k in await _told(camera)} == {key_id(mine.public)}
    done = await upload(camera.client, kept)
    assert done.json()["status"] == "verified", done.text
    assert _opens(kept, camera, mine) and _opens(kept, camera, theirs)

    # Recorded after it was given the new set (beyond the clocks' grace), yet sealed to
    # the old one: refused.
    later = clock.now() + timedelta(minutes=5)
    stale = seal_clip(camera.id, camera.key, both, 1, kept.digest, start=_iso(later), mode="e2e")
    refused = assert_error(await upload(camera.client, stale), 422, "not_a_member")
    assert refused["details"]["key_ids"] == [key_id(theirs.public)]
