"""Live view with the camera's sound, in chromium: a real agent whose synthetic camera has
`audio: true` (a tone track), paired to a real server, watched through the live page.

The page shows the mute button for a stream with audio (muted by default: browsers only
autoplay muted), and the video really carries the sound. iPhone Safari has no
MediaSource, only ManagedMediaSource: an init script removes `window.MediaSource` and
offers chromium's own as `ManagedMediaSource` (with the start/end streaming events), and
the page must play through it; with neither, it must say so rather than show black.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import ConsoleLog, open_page, serving, stop
from tests.e2e.helpers import sign_in
from tests.e2e.test_live_view import FRAMES_SHOWN, LiveSetup, _device_id

AGENT_CONFIG = """\
spool_dir: {root}/spool
state_dir: {root}/state
cameras:
  - name: door
    audio: true
    source: {{kind: synthetic, scene: static, duration_s: 600, audio: true, beep_every_s: 1,
              width: 320, height: 180, fps: 10, pace: true}}
    detect: {{kind: none}}
"""

# What iPhone Safari (17.1+) offers: ManagedMediaSource and no MediaSource. Chromium's
# MediaSource stands in for it, and says when it was used.
MANAGED_ONLY = """
(() => {
  const Real = window.MediaSource;
  class ManagedMediaSource extends Real {
    constructor() {
      super();
      window.managedSources = (window.managedSources || 0) + 1;
      setTimeout(() => this.dispatchEvent(new Event("startstreaming")), 0);
    }
  }
  window.ManagedMediaSource = ManagedMediaSource;
  delete window.MediaSource;
})();
"""
NEITHER = "delete window.MediaSource; delete window.ManagedMediaSource;"

AUDIO_SEEN = """(video) => new Promise((done) => setTimeout(() => done({
  decoded: video.webkitAudioDecodedByteCount,
  tracks: video.captureStream().getAudioTracks().length,
  muted: video.muted,
}), 1500))"""


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, chromium: Path) -> Iterator[LiveSetup]:
    root = tmp_path_factory.mktemp("live-audio-e2e")
    (root / "server").mkdir()
    with serving(root / "server", extra_env={"DOORWARDEN_DEVELOPMENT": "1"}) as server:
        resident = "resident@audio.example"
        server.create_user(resident, "resident")
        owner = server.api(resident)
        home = str(owner.post("/api/v1/households", {"name": "Home", "time_zone": "UTC"})["id"])
        code = str(owner.post(f"/api/v1/households/{home}/pairing-codes", {})["code"])
        owner.close()
        config = root / "agent.yaml"
        config.write_text(AGENT_CONFIG.format(root=root))
        server.cli("agent", "pair", "--server", server.url, "--code", code, "--config", str(config))
        device_id = _device_id(server, resident, home)
        log = (root / "agent.log").open("wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOORWARDEN_")}
        agent = subprocess.Popen(
            [sys.executable, "-m", "doorwarden", "agent", "run", "--config", str(config)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield LiveSetup(server, home, device_id, resident, resident, resident)
        finally:
            stop(agent, timeout_s=30)
            log.close()


def open_live(page: Page, live: LiveSetup) -> None:
    sign_in(page, live.server.url, live.resident)
    expect(page).not_to_have_url(re.compile(r"/login"))
    page.goto(live.page_url)


def test_a_stream_with_sound_shows_the_mute_button_and_carries_audio(
    live: LiveSetup, browser: Browser, console: ConsoleLog
) -> None:
    page = open_page(browser, console)
    try:
        open_live(page, live)
        expect(page.locator("#live")).to_have_attribute("data-state", "streaming", timeout=30_000)
        button = page.locator("#live-mute")
        expect(button).to_be_visible()
        expect(button).to_have_text("Unmute")
        video = page.locator("#live-video")
        heard = video.evaluate(AUDIO_SEEN)
        assert heard["muted"] is True  # muted by default
        assert heard["decoded"] > 0 and heard["tracks"] == 1, heard
        button.click()
        expect(button).to_have_text("Mute")
        expect(button).to_have_attribute("aria-pressed", "true")
        assert video.evaluate("(v) => v.muted") is False
        shown = video.evaluate(FRAMES_SHOWN)  # unmuted, it keeps playing
        assert shown["frames"] >= 8 and shown["advanced"] >= 1.0, shown
        button.click()
        expect(button).to_have_text("Unmute")
        assert video.evaluate("(v) => v.muted") is True
        # The page says that sound is recorded whole, privacy zones or not.
        expect(page.get_by_text(re.compile("privacy zones hide only the picture"))).to_be_visible()
    finally:
        page.context.close()
    assert console.errors == []


def test_without_media_source_the_page_plays_through_managed_media_source(
    live: LiveSetup, browser: Browser, console: ConsoleLog
) -> None:
    page = open_page(browser, console)
    page.add_init_script(MANAGED_ONLY)
    try:
        open_live(page, live)
        assert page.evaluate("() => typeof window.MediaSource") == "undefined"
        expect(page.locator("#live")).to_have_attribute("data-state", "streaming", timeout=30_000)
        expect(page.locator("#live")).to_have_attribute("data-player", "managed")
        video = page.locator("#live-video")
        shown = video.evaluate(FRAMES_SHOWN)
        assert shown["frames"] >= 8 and shown["advanced"] >= 1.0, shown
        assert page.evaluate("() => window.managedSources") >= 1
        assert video.evaluate("(v) => v.disableRemotePlayback") is True
    finally:
        page.context.close()
    assert console.errors == []


def test_with_neither_the_page_says_so_instead_of_a_black_box(
    live: LiveSetup, browser: Browser, console: ConsoleLog
) -> None:
    page = open_page(browser, console)
    page.add_init_script(NEITHER)
    try:
        open_live(page, live)
        expect(page.locator("#live")).to_have_attribute("data-state", "error")
        expect(page.locator("#live-status")).to_contain_text(
            "neither Media Source Extensions nor Managed Media Source"
        )
        expect(page.locator("#live-status")).to_contain_text("iOS 17.1 or later")
    finally:
        page.context.close()
    assert console.errors == []
