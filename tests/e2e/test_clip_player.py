"""A resident pairs a camera from the Cameras page, the camera uploads a real H.264 clip
through the real protocol, and chromium finds it on the timeline and plays it.

The player's <video> talks to the API same-origin with the session cookie; loading its
metadata, reaching its frames and seeking to 3 s in a real browser is the proof that
Range requests, decryption on the fly and the CSP all agree.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import av
import cv2
import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from doorwarden.agent.capture.synthetic import encode_h264
from doorwarden.agent.config.models import SyntheticSource
from doorwarden.crypto.keys import SigningKey, b64d, b64e
from doorwarden.crypto.manifest import GENESIS, sign
from doorwarden.crypto.seal import ClipFacts, ClipSeal
from tests.e2e.conftest import SCREENSHOTS, ConsoleLog, Server, open_page
from tests.e2e.helpers import sign_in
from tests.sealed_clips import PART, Sealed

SCENE = SyntheticSource(
    kind="synthetic", width=320, height=192, fps=10, duration_s=4, scene="object"
)
THUMBNAIL_FRAME = 35  # 3.5 s: the walker has entered (at 3 s), as an agent's thumbnail shows
CHUNK = 64 * 1024
MIN_SCREENSHOT_BYTES = 8_000  # as in test_quality: a blank page compresses far below this

# Waits for the metadata, seeks to 3 s and waits for the frame there; reports what the
# element saw. Every wait fails on the element's error event, or after 10 s (evaluate
# itself would wait for ever).
PROBE = """async () => {
  const video = document.getElementById("clip-video");
  const until = (name) => new Promise((ok, fail) => {
    if (video.error) { fail(new Error("video error " + video.error.code)); return; }
    video.addEventListener(name, ok, {once: true});
    video.addEventListener("error",
      () => fail(new Error("video error " + (video.error && video.error.code))), {once: true});
    setTimeout(() => fail(new Error("no " + name + " event in 10 s")), 10000);
  });
  if (video.readyState < 1) await until("loadedmetadata");
  const metadata = {duration: video.duration, width: video.videoWidth,
                    height: video.videoHeight};
  const seeked = until("seeked");
  video.currentTime = 3;
  await seeked;
  for (let i = 0; i < 100 && video.readyState < 2; i++) {
    await new Promise((ok) => setTimeout(ok, 50));
  }
  return {...metadata, readyState: video.readyState, time: video.currentTime,
          error: video.error && video.error.code};
}"""


@dataclass
class PairedCamera:
    """The agent's side: its key, the keys its clips are wrapped to, its token."""

    id: str
    key: SigningKey
    recipients: list[bytes]
    client: httpx.Client


def pair(client: httpx.Client, code: str, name: str) -> PairedCamera:
    """What `doorwarden agent pair` does: a fresh key, redeemed with the code."""
    key = SigningKey.generate()
    response = client.post(
        "/api/v1/devices/pair", json={"code": code, "name": name, "public_key": b64e(key.public)}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    client.headers["authorization"] = f"Bearer {body['token']}"
    recipients = [b64d(r["public_key"], what="key", length=32) for r in body["recipients"]]
    return PairedCamera(body["device_id"], key, recipients, client)


def record(path: Path) -> tuple[bytes, bytes]:
    """A real MP4 of the scripted scene and a real JPEG thumbnail of one of its frames."""
    encode_h264(SCENE, path)
    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index == THUMBNAIL_FRAME:
                picture = frame.to_ndarray(format="bgr24")
                break
    ok, jpeg = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return path.read_bytes(), jpeg.tobytes()


def seal_recording(
    camera: PairedCamera, sequence: int, mp4: bytes, jpeg: bytes, start: datetime
) -> Sealed:
    """tests/sealed_clips.seal_clip, for given plaintext and thumbnail bytes."""
    sealer = ClipSeal(camera.recipients, mode="standard", chunk_size=CHUNK)
    ciphertext = b"".join(sealer.encrypt([mp4[i : i + CHUNK] for i in range(0, len(mp4), CHUNK)]))
    thumbnail = sealer.seal_thumbnail(jpeg)
    duration_ms = round(SCENE.duration_s * 1000)
    facts = ClipFacts(
        device=camera.id, sequence=sequence, previous=GENESIS,
        start_utc=start.isoformat(timespec="milliseconds"),
        end_utc=(start + timedelta(milliseconds=duration_ms)).isoformat(timespec="milliseconds"),
        duration_ms=duration_ms, labels=("motion", "person"), motion_score=180, codec="h264",
        width=SCENE.width, height=SCENE.height,
    )  # fmt: skip
    signed = sign(sealer.manifest(facts), camera.key)
    return Sealed(sequence, signed.to_bytes(), ciphertext, thumbnail, signed.manifest.digest, mp4)


def upload(camera: PairedCamera, sealed: Sealed) -> str:
    """tests/sealed_clips.upload over real HTTP (sync: Playwright's loop owns this thread)."""
    base = f"/api/v1/device/clips/{sealed.sequence}"
    offered = camera.client.put(base, content=sealed.manifest)
    assert offered.status_code == 201, offered.text
    total = len(sealed.ciphertext)
    for offset in range(0, total, PART):
        part = sealed.ciphertext[offset : offset + PART]
        sent = camera.client.put(
            f"{base}/data",
            content=part,
            headers={"content-range": f"bytes {offset}-{offset + len(part) - 1}/{total}"},
        )
        assert sent.status_code == 200, sent.text
    assert camera.client.put(f"{base}/thumbnail", content=sealed.thumbnail).status_code == 204
    done = camera.client.post(f"{base}/complete")
    assert done.status_code == 200, done.text
    return str(done.json()["clip_id"])


def camera_records_a_clip(server: Server, code: str, workdir: Path) -> str:
    """The camera's side of the journey: pair with the code, then record, seal and upload
    one clip that started half a minute ago; its clip id."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        camera = pair(client, code, "Front porch")
        mp4, jpeg = record(workdir / "clip.mp4")
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
        return upload(camera, seal_recording(camera, 0, mp4, jpeg, start))


def shoot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > MIN_SCREENSHOT_BYTES, f"{path} looks empty"


@pytest.mark.browser
def test_pair_a_camera_then_find_and_play_its_clip(
    browser: Browser, server: Server, new_resident: Callable[[], str], tmp_path: Path
) -> None:
    email = new_resident()
    api = server.api(email)
    household = api.post(
        "/api/v1/households", {"name": "Porch house", "time_zone": "America/Chicago"}
    )
    api.close()
    home = f"{server.url}/households/{household['id']}"
    console = ConsoleLog()
    page = open_page(browser, console)
    video_statuses: list[int] = []
    page.on(
        "response",
        lambda r: video_statuses.append(r.status) if r.url.endswith("/video") else None,
    )
    try:
        sign_in(page, server.url, email)
        page.goto(home)
        page.get_by_role("link", name="Cameras").click()
        expect(page).to_have_url(f"{home}/cameras")
        page.get_by_role("button", name="Pair a new camera").click()
        code = page.locator("#pairing-code-value").inner_text()
        expect(page.locator("#pair-command")).to_have_text(
            f"doorwarden agent pair --server {server.url} --code {code}"
        )
        shoot(page, "camera-pairing-desktop")

        clip_id = camera_records_a_clip(server, code, tmp_path)

        page.goto(f"{home}/cameras")
        row = page.get_by_role("row", name=re.compile("Front porch"))
        expect(row).to_contain_text("online")
        expect(row).to_contain_text("person")
        shoot(page, "cameras-desktop")

        page.get_by_role("link", name="See today's clips").click()
        clips = page.locator("ol.timeline li")
        expect(clips).to_have_count(1)
        expect(clips).to_contain_text("Front porch · 4 s")
        thumbnail = clips.locator("img")
        page.wait_for_function(
            "img => img.complete && img.naturalWidth === 320", arg=thumbnail.element_handle()
        )
        shoot(page, "clips-desktop")

        clips.get_by_role("link", name=re.compile("Front porch")).click()
        expect(page).to_have_url(f"{home}/clips/{clip_id}")
        result = page.evaluate(PROBE)
        assert result["error"] is None
        assert result["readyState"] >= 2
        assert result["duration"] == pytest.approx(SCENE.duration_s, abs=0.25)
        assert (result["width"], result["height"]) == (SCENE.width, SCENE.height)
        assert result["time"] == pytest.approx(3, abs=0.01)
        assert 206 in video_statuses, video_statuses  # the browser asked with Range
        shoot(page, "clip-player-desktop")
    finally:
        page.context.close()
    assert console.errors == []
