"""End-to-end clips sealed as fragmented MP4 play in chromium while they download.

The camera of test_e2e_clips.py's household uploads one more clip, clip 4: an 8 s H.264
recording with a keyframe every second, remuxed as the agent does for end-to-end clips
(agent/recording/fragment.py: ftyp, empty moov, sidx, one moof+mdat per keyframe) and sealed
in 8 KiB chunks, so it has a dozen chunks and eight fragments. The page must check the
signature, the chain and the key first, then stream the chunks into Media Source Extensions
(data-playback="stream"), saying "checking" until every chunk and both whole-clip hashes
matched, and "verified" only then (static/e2e/clipstream.js).

The ciphertext route is intercepted (page.route) to hold back the request that would
deliver the clip's last chunk, or the chunks of a fragment about to be sought: what the page
shows while they are held is what it shows before having them, with no timing involved.
"""

from __future__ import annotations

import contextlib
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import av
import cv2
import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, Route, expect

from doorwarden.agent.capture.synthetic import encode_h264
from doorwarden.agent.recording.fragment import write_fragmented
from doorwarden.crypto import stream
from tests.e2e import test_e2e_clips as sealed_clips
from tests.e2e.conftest import ConsoleLog, Server
from tests.e2e.test_clip_player import SCENE, upload
from tests.e2e.test_e2e_clips import (
    CHUNK,
    PROBE,
    E2EHome,
    home_digest,
    seal_e2e,
    signed_in_with_key,
    stored_clip,
)

pytestmark = pytest.mark.browser
# The household (clips 0, 1 and 3, faststart) and the page, as test_e2e_clips.py makes them.
home = sealed_clips.home
browser_page = sealed_clips.browser_page

LONG = SCENE.model_copy(update={"duration_s": 8})
STREAMED = 4  # the fragmented clip's sequence, after the household's clips 0, 1 and 3

# Every state the status line takes, from the page's first script on.
WATCH_STATES = """() => {
  window.__states = [];
  document.addEventListener("DOMContentLoaded", () => {
    const status = document.getElementById("e2e-status");
    if (!status) return;
    const note = () => window.__states.push(status.dataset.state);
    note();
    new MutationObserver(note).observe(status, {attributes: true, attributeFilter: ["data-state"]});
  });
}"""

FINAL = """() => ["verified", "warning", "refused"].includes(
  document.getElementById("e2e-status").dataset.state)"""

PLAYING_WHILE_CHECKING = """() => {
  const video = document.getElementById("clip-video");
  return document.getElementById("e2e-status").dataset.state === "checking"
    && video !== null && video.readyState >= 2 && video.videoWidth > 0;
}"""

# The video shows the frame at time t.
SETTLED_AT = """(t) => { const v = document.getElementById("clip-video");
  return Math.abs(v.currentTime - t) < 0.25 && !v.seeking && v.readyState >= 2; }"""

VIDEO = """() => {
  const video = document.getElementById("clip-video");
  const status = document.getElementById("e2e-status");
  return {state: status.dataset.state, text: status.textContent,
          playback: document.getElementById("e2e-player").dataset.playback || null,
          video: video !== null, readyState: video && video.readyState,
          width: video && video.videoWidth, time: video && video.currentTime,
          duration: video && video.duration, error: video && video.error && video.error.code};
}"""


@dataclass
class Fragment:
    offset: int  # in the MP4
    end: int
    start_s: float
    until_s: float


def fragments(mp4: bytes) -> list[Fragment]:
    """The fragments the MP4's sidx lists, found as the page finds them: ftyp, moov, sidx."""
    at = 0
    boxes = []
    while len(boxes) < 3:
        size, kind = struct.unpack(">I4s", mp4[at : at + 8])
        boxes.append((kind, at, at + size))
        at += size
    assert [kind for kind, _, _ in boxes] == [b"ftyp", b"moov", b"sidx"]
    _, start, end = boxes[2]
    body = mp4[start + 8 : end]
    assert body[0] == 1  # version 1: 64-bit times, as FFmpeg writes them
    timescale, earliest, first_offset, count = struct.unpack(">I QQ 2xH", body[8:32])
    offset, time, out = end + first_offset, earliest, []
    for i in range(count):
        word, duration, _ = struct.unpack(">III", body[32 + 12 * i : 44 + 12 * i])
        assert word >> 31 == 0
        size = word & 0x7FFFFFFF
        assert mp4[offset + 4 : offset + 8] == b"moof"
        out.append(Fragment(offset, offset + size, time / timescale, (time + duration) / timescale))
        offset, time = offset + size, time + duration
    return out


def fragmented_recording(folder: Path, *, audio: bool = False) -> tuple[bytes, bytes]:
    """An 8 s recording, a keyframe a second, as fragmented MP4; and a JPEG of a frame."""
    plain, fragmented = folder / "long.mp4", folder / "long-fragmented.mp4"
    encode_h264(LONG.model_copy(update={"audio": audio}), plain, gop_s=1.0)
    write_fragmented(plain, fragmented)
    with av.open(str(plain)) as container:
        frame = next(iter(container.decode(video=0))).to_ndarray(format="bgr24")
    ok, jpeg = cv2.imencode(".jpg", frame)
    assert ok
    return fragmented.read_bytes(), jpeg.tobytes()


def upload_fragmented(server: Server, home: E2EHome, folder: Path, *, audio: bool) -> bytes:
    """Clip 4 of the household's camera, fragmented, following clip 3. Its MP4."""
    mp4, jpeg = fragmented_recording(folder, audio=audio)
    assert len(fragments(mp4)) >= 6
    assert len(mp4) > 10 * CHUNK
    sealed = seal_e2e(home.camera, STREAMED, home_digest(home, server, 3), mp4, jpeg)
    home.clips[STREAMED] = upload(home.camera, sealed)
    home.plaintext[STREAMED] = mp4
    return mp4


@pytest.fixture
def streamed(server: Server, home: E2EHome, tmp_path: Path) -> bytes:
    return upload_fragmented(server, home, tmp_path, audio=False)


def chunk_of(offset: int) -> int:
    return offset // CHUNK


def span_start(index: int, mp4: bytes) -> int:
    return stream.sealed_span(index, len(mp4), CHUNK)[0]


@dataclass
class Gate:
    """The ciphertext route, intercepted: every Range asked for is noted; those `hold`
    says are kept waiting until `release`."""

    hold: Callable[[int, int], bool]
    asked: list[tuple[int, int]] = field(default_factory=list)
    held: list[Route] = field(default_factory=list)

    def __call__(self, route: Route) -> None:
        wanted = route.request.headers.get("range", "")
        match = re.fullmatch(r"bytes=(\d+)-(\d+)", wanted)
        assert match, f"the page asked for {wanted!r}, not one byte range"
        first, last = int(match[1]), int(match[2])
        self.asked.append((first, last + 1))
        if self.hold(first, last + 1):
            self.held.append(route)
        else:
            route.continue_()

    def wait_held(self, page: Page) -> None:
        """Until the page asks for something held (a wait on a condition, not a timing)."""
        for _ in range(400):
            if self.held:
                return
            page.wait_for_timeout(25)  # lets Playwright dispatch the route handler
        raise AssertionError(f"the page never asked for the held bytes: {self.asked}")

    def release(self) -> None:
        self.hold = lambda _a, _b: False
        for route in self.held:
            with contextlib.suppress(PlaywrightError):  # the page may have given up on it
                route.continue_()
        self.held.clear()


def open_gated(page: Page, server: Server, home: E2EHome, gate: Gate) -> None:
    page.add_init_script(script=f"({WATCH_STATES})()")
    page.route("**/clips/*/ciphertext", gate)
    signed_in_with_key(page, server, home, home.member)
    page.goto(home.url(server, STREAMED))


VERIFIED = (
    "Verified: signed by Front porch, chain intact (follows clip 3). Decrypted on this device."
)


def test_a_fragmented_clip_streams_into_media_source_and_ends_verified(
    browser_page: tuple[Page, ConsoleLog],
    server: Server,
    home: E2EHome,
    streamed: bytes,
) -> None:
    page, console = browser_page
    page.add_init_script(script=f"({WATCH_STATES})()")
    signed_in_with_key(page, server, home, home.member)
    page.goto(home.url(server, STREAMED))
    page.wait_for_function(FINAL, timeout=30_000)
    page.wait_for_function("() => document.getElementById('clip-video').readyState >= 2")
    result = page.evaluate(VIDEO)
    assert result["state"] == "verified", result["text"]
    assert result["text"] == VERIFIED  # the same words as a clip played whole
    assert result["playback"] == "stream"
    assert result["error"] is None and result["width"] == LONG.width
    assert result["duration"] == pytest.approx(fragments(streamed)[-1].until_s, abs=0.5)
    states = page.evaluate("() => window.__states")
    assert "checking" in states and states.index("checking") < states.index("verified")

    download = page.get_by_role("link", name="Download the decrypted MP4")
    expect(download).to_be_visible()
    with page.expect_download() as saved:
        download.click()
    assert Path(saved.value.path()).read_bytes() == streamed

    # It plays on: the frames at the end decode too.
    page.evaluate("() => { const v = document.getElementById('clip-video'); v.currentTime = 7.5; }")
    page.wait_for_function(SETTLED_AT, arg=7.5)
    assert console.errors == []


def test_playback_starts_before_the_last_chunk_arrives(
    browser_page: tuple[Page, ConsoleLog],
    server: Server,
    home: E2EHome,
    streamed: bytes,
) -> None:
    page, _ = browser_page
    size = stream.HEADER_BYTES + len(streamed) + stream.TAG_BYTES * -(-len(streamed) // CHUNK)
    gate = Gate(hold=lambda _start, end: end == size)  # whatever would bring the last chunk
    open_gated(page, server, home, gate)

    page.wait_for_function(PLAYING_WHILE_CHECKING, timeout=30_000)
    gate.wait_held(page)  # the request for the last chunk is out, and held
    playing = page.evaluate(VIDEO)
    assert playing["playback"] == "stream"
    counted = re.fullmatch(
        r"Playing while checking: signature and chain verified, (\d+) of (\d+) chunks checked\.",
        playing["text"],
    )
    assert counted, playing["text"]
    total = -(-len(streamed) // CHUNK)
    assert int(counted[2]) == total and int(counted[1]) < total
    expect(page.locator("#e2e-download-row")).to_be_hidden()
    assert "verified" not in page.evaluate("() => window.__states")

    gate.release()
    page.wait_for_function(FINAL, timeout=30_000)
    done = page.evaluate(VIDEO)
    assert done["state"] == "verified" and done["text"] == VERIFIED
    assert page.evaluate("() => window.__states").count("verified") == 1
    expect(page.locator("#e2e-download-row")).to_be_visible()


def test_a_seek_fetches_from_the_chunk_holding_the_fragment_and_still_verifies(
    browser_page: tuple[Page, ConsoleLog],
    server: Server,
    home: E2EHome,
    streamed: bytes,
) -> None:
    page, _ = browser_page
    target = fragments(streamed)[-1]  # the last second
    chunk = chunk_of(target.offset)
    start = span_start(chunk, streamed)
    # Nothing that reaches the fragment's first chunk gets through before the seek.
    gate = Gate(hold=lambda _first, end: end > start)
    open_gated(page, server, home, gate)
    page.wait_for_function(PLAYING_WHILE_CHECKING, timeout=30_000)
    gate.wait_held(page)  # the page is waiting for the rest of the clip
    before = len(gate.asked)
    gate.hold = lambda _a, _b: False  # from here on, everything goes through

    seek_to = (target.start_s + target.until_s) / 2
    page.evaluate("(t) => { document.getElementById('clip-video').currentTime = t; }", seek_to)
    page.wait_for_function(SETTLED_AT, arg=seek_to, timeout=30_000)
    after = gate.asked[before:]
    assert after, "the seek should have asked for the chunks it needs"
    assert after[0][0] == start, (after, start, chunk)

    gate.release()  # what the seek left behind: fetched in the background, then the hashes
    page.wait_for_function(FINAL, timeout=30_000)
    done = page.evaluate(VIDEO)
    assert done["state"] == "verified" and done["text"] == VERIFIED
    assert done["video"] and done["error"] is None
    states = page.evaluate("() => window.__states")
    assert states.count("verified") == 1 and states[-1] == "verified"


def test_a_tampered_chunk_in_the_middle_stops_the_playing_clip(
    browser_page: tuple[Page, ConsoleLog],
    server: Server,
    home: E2EHome,
    streamed: bytes,
) -> None:
    page, _ = browser_page
    tampered = chunk_of(len(streamed)) // 2 + 1
    path = stored_clip(server, home, STREAMED)
    data = bytearray(path.read_bytes())
    data[span_start(tampered, streamed) + 100] ^= 0x01
    path.write_bytes(bytes(data))

    # Held until the clip is seen playing, so the refusal stops a playing video.
    start = span_start(tampered, streamed)
    gate = Gate(hold=lambda _first, end: end > start)
    open_gated(page, server, home, gate)
    page.wait_for_function(PLAYING_WHILE_CHECKING, timeout=30_000)
    gate.wait_held(page)

    gate.release()
    page.wait_for_function(FINAL, timeout=30_000)
    result = page.evaluate(VIDEO)
    assert result["state"] == "refused"
    assert f"Refused: chunk {tampered} of this clip failed its check" in result["text"]
    assert result["video"] is False
    assert page.locator("video").count() == 0
    assert "verified" not in page.evaluate("() => window.__states")
    expect(page.locator("#e2e-download")).to_be_hidden()


def test_a_faststart_clip_still_plays_whole(
    browser_page: tuple[Page, ConsoleLog],
    server: Server,
    home: E2EHome,
) -> None:
    page, console = browser_page
    page.add_init_script(script=f"({WATCH_STATES})()")
    signed_in_with_key(page, server, home, home.member)
    page.goto(home.url(server, 1))
    result = page.evaluate(PROBE)
    assert result["state"] == "verified", result["text"]
    assert result["readyState"] >= 2 and result["width"] == SCENE.width
    assert page.locator("#e2e-player").get_attribute("data-playback") == "whole"
    assert "checking" not in page.evaluate("() => window.__states")
    assert console.errors == []


@pytest.fixture
def no_media_source(browser_page: tuple[Page, ConsoleLog]) -> None:
    page, _ = browser_page
    page.add_init_script(script="delete window.MediaSource; delete window.ManagedMediaSource;")


def test_without_media_source_a_fragmented_clip_plays_whole(
    browser_page: tuple[Page, ConsoleLog],
    server: Server,
    home: E2EHome,
    streamed: bytes,
    no_media_source: None,
) -> None:
    page, _ = browser_page
    signed_in_with_key(page, server, home, home.member)
    page.goto(home.url(server, STREAMED))
    result = page.evaluate(PROBE)
    assert result["state"] == "verified", result["text"]
    assert result["text"] == VERIFIED
    assert page.locator("#e2e-player").get_attribute("data-playback") == "whole"


def test_a_fragmented_clip_with_sound_streams_too(
    browser_page: tuple[Page, ConsoleLog], server: Server, home: E2EHome, tmp_path: Path
) -> None:
    """Two tracks: the type given to Media Source names both codecs (avc1 and mp4a), or
    the browser refuses the init segment."""
    mp4 = upload_fragmented(server, home, tmp_path, audio=True)
    assert b"mp4a" in mp4[: fragments(mp4)[0].offset]
    page, console = browser_page
    signed_in_with_key(page, server, home, home.member)
    page.goto(home.url(server, STREAMED))
    page.wait_for_function(FINAL, timeout=30_000)
    page.wait_for_function("() => document.getElementById('clip-video').readyState >= 2")
    result = page.evaluate(VIDEO)
    assert result["state"] == "verified", result["text"]
    assert result["playback"] == "stream" and result["width"] == LONG.width
    assert console.errors == []
