"""Issue 18's "done when" for two-way talk, end to end with nothing played by the test: a
real `doorwarden agent run` whose camera is an ONVIF camera with an audio backchannel
(GStreamer's GstRTSPOnvifServer, tests/unit/agent/onvif_rtsp_server.py, which decodes and
records what it hears), paired to a real `doorwarden serve`; a resident in chromium,
whose fake microphone plays tone bursts, opens live, sees the camera, presses Talk, and
the tone comes out of the camera's backchannel. An agency officer opens neither the
live page nor its socket, so cannot talk.

tests/e2e/test_talk.py checks the browser and server side byte for byte with a scripted
agent; tests/unit/agent/talk/ the agent's backchannel client against the same camera.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, DESKTOP, ConsoleLog, Server, serving, stop
from tests.e2e.helpers import sign_in
from tests.e2e.microphone import tone_bursts
from tests.unit.agent.talk.rig import Camera, need_gst_onvif, peak_hz

TONE_HZ = 1000.0
AGENT_CONFIG = """\
spool_dir: {root}/spool
state_dir: {root}/state
cameras:
  - name: door
    source: {{kind: rtsp, url: '{rtsp}'}}
    detect: {{kind: none}}
    talk: {{kind: backchannel}}
"""


@dataclass
class Loop:
    server: Server
    camera: Camera
    household_id: str
    device_id: str
    resident: str
    officer: str

    @property
    def page_url(self) -> str:
        return f"{self.server.url}/households/{self.household_id}/cameras/{self.device_id}/live"


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory, chromium: Path) -> Iterator[Loop]:
    need_gst_onvif()  # skips with a printed reason, or fails under CI=true
    root = tmp_path_factory.mktemp("talk-loop")
    camera = Camera(root / "camera")  # PCMU backchannel, as most doorbells offer
    try:
        (root / "server").mkdir()
        with serving(root / "server", extra_env={"DOORWARDEN_DEVELOPMENT": "1"}) as server:
            resident, admin, officer = (
                f"{who}@loop.example" for who in ("resident", "admin", "officer")
            )
            server.create_user(resident, "resident")
            server.create_user(admin, "operator_admin")
            as_admin = server.api(admin)
            agency = as_admin.post("/api/v1/agencies", {"name": "Police", "jurisdiction": "Town"})
            as_admin.close()
            server.create_user(officer, "agency_officer", agency_id=str(agency["id"]))
            owner = server.api(resident)
            home = str(owner.post("/api/v1/households", {"name": "Home", "time_zone": "UTC"})["id"])
            code = str(owner.post(f"/api/v1/households/{home}/pairing-codes", {})["code"])
            config = root / "agent.yaml"
            rtsp = f"rtsp://127.0.0.1:{camera.port}/cam"
            config.write_text(AGENT_CONFIG.format(root=root, rtsp=rtsp))
            server.cli(
                "agent", "pair", "--server", server.url, "--code", code, "--config", str(config)
            )
            [device] = owner.client.get(f"/api/v1/households/{home}/devices").json()
            owner.close()
            env = {k: v for k, v in os.environ.items() if not k.startswith("DOORWARDEN_")}
            with (root / "agent.log").open("wb") as log:
                agent = subprocess.Popen(
                    [sys.executable, "-m", "doorwarden", "agent", "run", "--config", str(config)],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
                try:
                    yield Loop(server, camera, home, str(device["id"]), resident, officer)
                finally:
                    stop(agent, timeout_s=30)
    finally:
        camera.kill()


@pytest.fixture(scope="module")
def mic_browser(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    wav = tone_bursts(tmp_path_factory.mktemp("talk-loop-audio") / "tone.wav", TONE_HZ)
    flags = [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}",
    ]
    instance = browser.browser_type.launch(
        executable_path=str(CHROMIUM), args=CHROMIUM_ARGS + flags
    )
    try:
        yield instance
    finally:
        instance.close()


def signed_in(browser: Browser, loop: Loop, console: ConsoleLog, email: str) -> Page:
    context = browser.new_context(viewport=DESKTOP)  # type: ignore[arg-type]
    context.set_default_timeout(15_000)
    context.grant_permissions(["microphone"], origin=loop.server.url)
    page = context.new_page()
    page.on("console", lambda m: console.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: console.errors.append(f"page error: {exc}"))
    sign_in(page, loop.server.url, email)
    expect(page).not_to_have_url(re.compile(r"/login"))
    return page


def heard(camera: Camera, seconds: float, timeout_s: float) -> tuple[np.ndarray, int]:
    """What the camera's backchannel decoded, once it holds `seconds` of audio."""
    deadline = time.monotonic() + timeout_s
    while True:
        audio, rate = camera.audio()
        if (rate and audio.size >= rate * seconds) or time.monotonic() > deadline:
            return audio, rate
        time.sleep(0.1)


def test_a_resident_talks_and_the_tone_comes_out_of_the_camera(
    mic_browser: Browser, loop: Loop, console: ConsoleLog
) -> None:
    page = signed_in(mic_browser, loop, console, loop.resident)
    try:
        page.goto(loop.page_url)
        # The agent may still be connecting to the camera: the page waits for it.
        expect(page.locator("#live")).to_have_attribute("data-state", "streaming", timeout=30_000)
        assert loop.camera.audio()[0].size == 0  # nothing spoke through the camera yet
        page.get_by_role("button", name="Talk").click()
        expect(page.locator("#talk")).to_have_attribute("data-state", "talking")
        page.wait_for_timeout(2_000)
        page.get_by_role("button", name="Stop").click()
        expect(page.locator("#talk")).to_have_attribute("data-state", "ended")
        expect(page.locator("#live")).to_have_attribute("data-state", "streaming")  # video went on
    finally:
        page.context.close()
    audio, rate = heard(loop.camera, 1.0, timeout_s=5)
    assert rate == 8000, rate  # PCMU: what the camera's SDP offered
    assert audio.size >= rate, f"the camera heard {audio.size / max(rate, 1):.2f} s"
    loud = audio[np.abs(audio) > 0.02]
    assert loud.size >= rate // 2, "the microphone's tone reached the camera as silence"
    assert peak_hz(loud, rate) == pytest.approx(TONE_HZ, abs=15)
    deadline = time.monotonic() + 5  # Stop tears the camera's backchannel down
    while "TEARDOWN" not in loop.camera.methods() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "TEARDOWN" in loop.camera.methods(), loop.camera.methods()
    assert console.errors == []


def test_an_agency_officer_can_open_neither_the_live_page_nor_talk(
    mic_browser: Browser, loop: Loop, console: ConsoleLog
) -> None:
    spoken = loop.camera.audio()[0].size
    page = signed_in(mic_browser, loop, console, loop.officer)
    try:
        response = page.goto(loop.page_url)
        assert response is not None and response.status == 403
        assert page.locator("#talk-button").count() == 0
        # The live socket carries talk: its handshake is refused, so no talk_start can be sent.
        socket_url = (
            loop.page_url.replace("http://", "ws://")
            .replace("/households/", "/api/v1/households/")
            .replace("/cameras/", "/devices/")
        )
        outcome = page.evaluate(
            """(url) => new Promise((done) => {
                 const socket = new WebSocket(url + "?camera=door");
                 socket.onopen = () => {
                   socket.send(JSON.stringify({type: "talk", action: "start", codec: "opus"}));
                   done("opened");
                 };
                 socket.onclose = (event) => done("closed " + event.code);
               })""",
            socket_url,
        )
        assert outcome == "closed 1006", outcome
    finally:
        page.context.close()
    time.sleep(0.5)
    assert loop.camera.audio()[0].size == spoken  # nothing more came out of the camera
    console.errors.clear()  # the 403 page and the refused socket log errors, as they should
