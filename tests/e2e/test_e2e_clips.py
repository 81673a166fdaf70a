"""End-to-end clips open in chromium, with the member's own key, and nowhere else.

A household switches to end-to-end mode through the JSON API with a member key made here
(as `doorwarden keys new` makes one); a paired camera uploads real H.264 clips sealed only
to that key. The member's private key is put into the page's keystore as the key pages
leave it (static/e2e/keystore.js saveMember), and the clip page must check the camera's
signature, the chain and every chunk before it plays anything (static/e2e/clips.js).
Then a byte of the stored ciphertext is flipped on the server's disk: the page must refuse,
naming the chunk, and play nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import re
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from doorwarden.crypto import stream
from doorwarden.crypto.canonical import canonical_json
from doorwarden.crypto.keys import RecipientKey, SigningKey, b64d, b64e, key_id
from doorwarden.crypto.manifest import GENESIS, sign
from doorwarden.crypto.seal import ClipFacts, ClipSeal
from tests.e2e.conftest import ConsoleLog, Server, open_page
from tests.e2e.helpers import sign_in
from tests.e2e.test_clip_player import SCENE, PairedCamera, pair, record, shoot, upload
from tests.sealed_clips import Sealed

pytestmark = pytest.mark.browser
# The 4 s test clip is about 28 KB: small chunks give it several, so one can be tampered.
CHUNK = 8 * 1024

# Waits for the verified video's metadata and first frame, or for a refusal.
PROBE = """async () => {
  const status = document.getElementById("e2e-status");
  for (let i = 0; i < 300 && status.dataset.state === "working"; i++) {
    await new Promise((ok) => setTimeout(ok, 50));
  }
  const video = document.getElementById("clip-video");
  if (!video) return {state: status.dataset.state, text: status.textContent, video: false};
  for (let i = 0; i < 200 && video.readyState < 2 && !video.error; i++) {
    await new Promise((ok) => setTimeout(ok, 50));
  }
  return {state: status.dataset.state, text: status.textContent, video: true,
          readyState: video.readyState, duration: video.duration, width: video.videoWidth,
          error: video.error && video.error.code, poster: video.poster.slice(0, 23),
          src: video.src.slice(0, 5)};
}"""

SAVE_KEY = """async ([userId, key]) => {
  const P = await import("/static/e2e/primitives.js");
  const K = await import("/static/e2e/keystore.js");
  return (await K.saveMember(userId, P.b64d(key))).keyId;
}"""


@dataclass
class E2EHome:
    email: str
    household_id: str
    member: RecipientKey
    camera: PairedCamera
    clips: dict[int, str]  # sequence -> clip id
    plaintext: dict[int, bytes]

    def url(self, server: Server, sequence: int) -> str:
        return f"{server.url}/households/{self.household_id}/clips/{self.clips[sequence]}"


def seal_e2e(camera: PairedCamera, sequence: int, previous: str, mp4: bytes, jpeg: bytes) -> Sealed:
    """What the agent does in an end-to-end household: sealed only to the members' keys."""
    sealer = ClipSeal(camera.recipients, mode="e2e", chunk_size=CHUNK)
    ciphertext = b"".join(sealer.encrypt([mp4[i : i + CHUNK] for i in range(0, len(mp4), CHUNK)]))
    thumbnail = sealer.seal_thumbnail(jpeg)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30 - sequence)
    duration_ms = round(SCENE.duration_s * 1000)
    facts = ClipFacts(
        device=camera.id, sequence=sequence, previous=previous,
        start_utc=start.isoformat(timespec="milliseconds"),
        end_utc=(start + timedelta(milliseconds=duration_ms)).isoformat(timespec="milliseconds"),
        duration_ms=duration_ms, labels=("motion", "person"), motion_score=180, codec="h264",
        width=SCENE.width, height=SCENE.height,
    )  # fmt: skip
    signed = sign(sealer.manifest(facts), camera.key)
    return Sealed(sequence, signed.to_bytes(), ciphertext, thumbnail, signed.manifest.digest, mp4)


@pytest.fixture
def home(server: Server, new_resident: Callable[[], str], tmp_path: Path) -> Iterator[E2EHome]:
    """An end-to-end household with clips 0 and 1 (linked) and 3 (after a gap)."""
    email = new_resident()
    api = server.api(email)
    member = RecipientKey.generate()
    try:
        household = api.post("/api/v1/households", {"name": "Sealed house", "time_zone": "UTC"})
        home_id = str(household["id"])
        registered = api.client.put(
            "/api/v1/account/e2e-key", json={"public_key": b64e(member.public)}
        )
        assert registered.status_code == 200, registered.text
        switched = api.client.put(f"/api/v1/households/{home_id}/encryption", json={"mode": "e2e"})
        assert switched.status_code == 200, switched.text
        code = str(api.post(f"/api/v1/households/{home_id}/pairing-codes", {})["code"])
    finally:
        api.close()
    mp4, jpeg = record(tmp_path / "clip.mp4")
    with httpx.Client(base_url=server.url, timeout=30) as client:
        camera = pair(client, code, "Front porch")
        # The server tells an end-to-end camera the members' keys, never its own.
        assert [key_id(r) for r in camera.recipients] == [key_id(member.public)]
        clips: dict[int, str] = {}
        previous = GENESIS
        for sequence in (0, 1, 3):
            if sequence == 3:
                previous = "ab" * 32  # clip 2 never reached the server
            sealed = seal_e2e(camera, sequence, previous, mp4, jpeg)
            clips[sequence] = upload(camera, sealed)
            previous = sealed.digest
        yield E2EHome(email, home_id, member, camera, clips, dict.fromkeys(clips, mp4))


def signed_in_with_key(page: Page, server: Server, home: E2EHome, key: RecipientKey | None) -> str:
    """Sign in; put `key` in this browser's keystore as the key pages do. The user id."""
    sign_in(page, server.url, home.email)
    expect(page).not_to_have_url(re.compile(r"/login"))
    user_id = page.locator("body").get_attribute("data-user-id")
    assert user_id
    if key is not None:
        saved = page.evaluate(SAVE_KEY, [user_id, b64e(key.private_bytes())])
        assert saved == key_id(key.public)
    return user_id


def stored_clip(server: Server, home: E2EHome, sequence: int) -> Path:
    """The sealed clip in the server's clip store (local storage under the data dir)."""
    name = f"{sequence:012d}.clip.dws"
    [path] = [
        p for p in Path(server.env["DOORWARDEN_DATA_DIR"]).rglob(name) if home.camera.id in p.parts
    ]
    return path


@pytest.fixture
def browser_page(browser: Browser) -> Iterator[tuple[Page, ConsoleLog]]:
    console = ConsoleLog()
    page = open_page(browser, console)
    try:
        yield page, console
    finally:
        page.context.close()


def test_an_end_to_end_clip_plays_verified_in_the_page(
    browser_page: tuple[Page, ConsoleLog], server: Server, home: E2EHome
) -> None:
    page, console = browser_page
    signed_in_with_key(page, server, home, home.member)
    page.goto(home.url(server, 1))
    result = page.evaluate(PROBE)
    assert result["state"] == "verified", result["text"]
    assert "Verified: signed by Front porch, chain intact (follows clip 0)" in result["text"]
    assert result["error"] is None and result["readyState"] >= 2
    assert result["duration"] == pytest.approx(SCENE.duration_s, abs=0.25)
    assert result["width"] == SCENE.width
    assert result["src"] == "blob:"  # the verified MP4, decrypted in the page
    assert result["poster"] == "data:image/jpeg;base64,"  # the sealed thumbnail, opened here
    shoot(page, "e2e-clip-verified-desktop")

    download = page.get_by_role("link", name="Download the decrypted MP4")
    expect(download).to_be_visible()
    with page.expect_download() as saved:
        download.click()
    assert Path(saved.value.path()).read_bytes() == home.plaintext[1]

    page.goto(home.url(server, 0))
    first = page.evaluate(PROBE)
    assert first["state"] == "verified"
    assert "chain intact (the first clip of this camera)" in first["text"]

    page.goto(home.url(server, 3))
    gap = page.evaluate(PROBE)
    assert gap["state"] == "warning" and gap["video"] is True
    assert "the chain has a gap: clip 2 of this camera is not on the server" in gap["text"]
    assert "Verified" not in gap["text"]

    # The day's timeline: each sealed thumbnail opened in the page, after its checks.
    page.get_by_role("link", name="All clips this day").click()
    expect(page.locator("[data-e2e-thumb]")).to_have_count(0)
    thumbs = page.locator("ol.timeline img")
    expect(thumbs.first).to_have_attribute("src", re.compile(r"^data:image/jpeg;base64,"))
    page.wait_for_function(
        "img => img.complete && img.naturalWidth === 320", arg=thumbs.first.element_handle()
    )
    assert console.errors == []


def test_a_tampered_chunk_is_refused_and_nothing_plays(
    browser_page: tuple[Page, ConsoleLog], server: Server, home: E2EHome
) -> None:
    page, _ = browser_page
    signed_in_with_key(page, server, home, home.member)
    page.goto(home.url(server, 0))
    assert page.evaluate(PROBE)["state"] == "verified"

    path = stored_clip(server, home, 0)
    data = bytearray(path.read_bytes())
    data[stream.HEADER_BYTES + 2 * (CHUNK + stream.TAG_BYTES) + 100] ^= 0x01  # in chunk 2
    path.write_bytes(bytes(data))

    page.reload()
    result = page.evaluate(PROBE)
    assert result["state"] == "refused"
    assert "Refused: chunk 2 of this clip failed its check" in result["text"]
    assert result["video"] is False
    assert page.locator("video").count() == 0
    shoot(page, "e2e-clip-tampered-desktop")
    expect(page.locator("#e2e-download")).to_be_hidden()


def test_a_member_without_the_key_is_told_why(
    browser_page: tuple[Page, ConsoleLog], server: Server, home: E2EHome
) -> None:
    page, _ = browser_page
    user_id = signed_in_with_key(page, server, home, None)
    page.goto(home.url(server, 0))
    none = page.evaluate(PROBE)
    assert none["state"] == "refused" and none["video"] is False
    expect(page.locator("#e2e-download")).to_be_hidden()
    assert "This device has no end-to-end key for your account" in none["text"]
    expect(page.get_by_role("link", name="Go to your key page")).to_have_attribute(
        "href", "/account/keyring"
    )

    page.evaluate(SAVE_KEY, [user_id, b64e(RecipientKey.generate().private_bytes())])
    page.reload()
    wrong = page.evaluate(PROBE)
    assert wrong["state"] == "refused" and wrong["video"] is False
    assert "This clip was not encrypted to your key" in wrong["text"]
    assert "recorded before your key was added" in wrong["text"]


def test_a_retired_key_still_opens_the_clips_it_was_given(
    browser_page: tuple[Page, ConsoleLog], server: Server, home: E2EHome
) -> None:
    page, _ = browser_page
    user_id = signed_in_with_key(page, server, home, home.member)
    # A new key (rotation): the old one is kept on this device, retired.
    page.evaluate(SAVE_KEY, [user_id, b64e(RecipientKey.generate().private_bytes())])
    page.goto(home.url(server, 0))
    assert page.evaluate(PROBE)["state"] == "verified"


def alter_manifest(server: Server, clip_id: str) -> None:
    """What a server that alters what it stores would do: change a signed fact (the motion
    score) of a clip's manifest in the database, leaving its signature as it was."""
    database = Path(server.env["DOORWARDEN_DATA_DIR"]) / "doorwarden.db"
    with contextlib.closing(sqlite3.connect(database, timeout=30)) as db, db:
        changed = db.execute(
            "UPDATE clips SET manifest = replace(manifest, '\"motion_score\":180', "
            "'\"motion_score\":999') WHERE id IN (?, ?)",
            (uuid.UUID(clip_id).hex, clip_id),
        ).rowcount
    assert changed == 1


def test_an_altered_manifest_is_refused_and_breaks_the_chain(
    browser_page: tuple[Page, ConsoleLog], server: Server, home: E2EHome
) -> None:
    page, _ = browser_page
    signed_in_with_key(page, server, home, home.member)
    alter_manifest(server, home.clips[0])

    page.goto(home.url(server, 0))
    result = page.evaluate(PROBE)
    assert result["state"] == "refused" and result["video"] is False
    assert "Refused: the camera's signature does not match this clip" in result["text"]

    page.goto(home.url(server, 1))  # clip 1 itself is intact, but what it follows is not
    after = page.evaluate(PROBE)
    assert after["state"] == "warning"
    assert "the chain is broken: clip 0's signature does not match" in after["text"]
    assert "Verified" not in after["text"]


def substitute_camera_key(server: Server, home: E2EHome) -> None:
    """What a server that forges footage would do: give the camera a key of its own and
    re-sign the camera's first clip with it, so the signature checks out on its own."""
    forger = SigningKey.generate()
    database = Path(server.env["DOORWARDEN_DATA_DIR"]) / "doorwarden.db"
    clip_id = home.clips[0]
    with contextlib.closing(sqlite3.connect(database, timeout=30)) as db, db:
        ids = (uuid.UUID(clip_id).hex, clip_id)
        [(text,)] = db.execute("SELECT manifest FROM clips WHERE id IN (?, ?)", ids).fetchall()
        signed = json.loads(text)
        signed["signature"] = b64e(forger.sign(canonical_json(signed["manifest"])))
        db.execute("UPDATE clips SET manifest = ? WHERE id IN (?, ?)", (json.dumps(signed), *ids))
        device = (uuid.UUID(home.camera.id).hex, home.camera.id)
        changed = db.execute(
            "UPDATE devices SET public_key = ? WHERE id IN (?, ?)", (b64e(forger.public), *device)
        ).rowcount
    assert changed == 1


def test_a_camera_key_swapped_by_the_server_is_refused_where_the_camera_was_seen(
    browser: Browser, server: Server, home: E2EHome
) -> None:
    seen, fresh = open_page(browser, ConsoleLog()), open_page(browser, ConsoleLog())
    try:
        signed_in_with_key(seen, server, home, home.member)
        seen.goto(home.url(server, 0))
        assert seen.evaluate(PROBE)["state"] == "verified"  # the camera's key, pinned here

        substitute_camera_key(server, home)
        seen.reload()
        refused = seen.evaluate(PROBE)
        assert refused["state"] == "refused" and refused["video"] is False
        assert "this camera now presents another signing key" in refused["text"]

        # Trust on first use has its limit, said in docs/e2e.md: a browser that never saw
        # the camera has nothing to compare with, and the forged signature checks out.
        signed_in_with_key(fresh, server, home, home.member)
        fresh.goto(home.url(server, 0))
        assert fresh.evaluate(PROBE)["state"] == "verified"
    finally:
        seen.context.close()
        fresh.context.close()


def current_recipients(camera: PairedCamera) -> list[bytes]:
    """What the camera seals its next clip to: the member set the server gives it now."""
    response = camera.client.get("/api/v1/device")
    assert response.status_code == 200, response.text
    return [b64d(r["public_key"], what="key", length=32) for r in response.json()["recipients"]]


def test_a_removed_member_is_locked_out_of_the_clips_recorded_while_away(
    browser: Browser, server: Server, home: E2EHome, new_resident: Callable[[], str]
) -> None:
    """Clip 4 is recorded while a member is out of the household: back in, their page
    opens the clips from before and after, never that one."""
    partner_email, partner_key = new_resident(), RecipientKey.generate()
    partner = server.api(partner_email)
    owner = server.api(home.email)
    page = open_page(browser, ConsoleLog())
    try:
        registered = partner.client.put(
            "/api/v1/account/e2e-key", json={"public_key": b64e(partner_key.public)}
        )
        assert registered.status_code == 200, registered.text
        partner_id = owner.post(f"/api/v1/households/{home.household_id}/members",
                                {"email": partner_email})["user_id"]  # fmt: skip
        mp4 = home.plaintext[0]
        jpeg = record(Path(server.env["DOORWARDEN_DATA_DIR"]) / "lockout.mp4")[1]
        previous = home_digest(home, server, 3)
        for sequence, present in ((4, True), (5, False), (6, True)):
            if not present:
                removed = owner.client.delete(
                    f"/api/v1/households/{home.household_id}/members/{partner_id}"
                )
                assert removed.status_code == 204, removed.text
            elif sequence == 6:
                owner.post(f"/api/v1/households/{home.household_id}/members",
                           {"email": partner_email})  # fmt: skip
            home.camera.recipients = current_recipients(home.camera)
            assert (key_id(partner_key.public) in map(key_id, home.camera.recipients)) is present
            sealed = seal_e2e(home.camera, sequence, previous, mp4, jpeg)
            home.clips[sequence] = upload(home.camera, sealed)
            previous = sealed.digest

        as_partner = dataclasses.replace(home, email=partner_email, member=partner_key)
        signed_in_with_key(page, server, as_partner, partner_key)
        for sequence, opens in ((4, True), (5, False), (6, True)):
            page.goto(home.url(server, sequence))
            result = page.evaluate(PROBE)
            if opens:
                assert result["state"] == "verified", (sequence, result["text"])
            else:
                assert result["state"] == "refused" and result["video"] is False
                assert "This clip was not encrypted to your key" in result["text"]
    finally:
        page.context.close()
        partner.close()
        owner.close()


def home_digest(home: E2EHome, server: Server, sequence: int) -> str:
    """The hash of a stored clip's manifest: what the camera's next clip names as previous."""
    database = Path(server.env["DOORWARDEN_DATA_DIR"]) / "doorwarden.db"
    clip_id = home.clips[sequence]
    with contextlib.closing(sqlite3.connect(database, timeout=30)) as db:
        ids = (uuid.UUID(clip_id).hex, clip_id)
        [(text,)] = db.execute("SELECT manifest FROM clips WHERE id IN (?, ?)", ids).fetchall()
    return hashlib.sha256(canonical_json(json.loads(text)["manifest"])).hexdigest()
