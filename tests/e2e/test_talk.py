"""Two-way talk in chromium: a resident presses Talk on the live page, the browser's fake
microphone plays a WAV of tone bursts made here, and an agent (a WebSocket client on the
camera's control connection, speaking docs/talk.md) receives Opus that decodes, in PyAV,
to the tone's frequency. Also: a second member is told "busy", a microphone the browser
refuses says so, and an agency officer gets no Talk at all.

The agent is played by this test, not `doorwarden agent run`, so that what arrives is
checked byte for byte where the server hands it over; the agent's own playback
(backchannel, speaker) is tested in tests/unit/agent/talk/.
"""

from __future__ import annotations

import io
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from doorwarden.crypto.keys import SigningKey, b64e
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, DESKTOP, ConsoleLog, Server, serving
from tests.e2e.helpers import sign_in
from tests.e2e.microphone import RATE, tone_bursts

TONE_HZ = 880.0
CAMERA = "door"


@dataclass
class FakeAgent:
    """The camera's control connection, as docs/talk.md has the agent speak it."""

    ws: ClientConnection
    starts: list[dict[str, Any]] = field(default_factory=list)
    stops: list[dict[str, Any]] = field(default_factory=list)
    audio: dict[str, list[bytes]] = field(default_factory=dict)  # session -> payloads
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self) -> None:
        self.ws.send(json.dumps({"type": "hello", "cameras": [CAMERA], "version": 1}))
        try:
            for message in self.ws:
                if isinstance(message, bytes):
                    self._audio(message)
                else:
                    self._control(json.loads(message))
        except ConnectionClosed:
            pass

    def _audio(self, message: bytes) -> None:
        assert message[:2] == b"\x10\x00", message[:2]
        with self.lock:
            session = self.starts[-1]["session"]
            self.audio.setdefault(session, []).append(message[2:])

    def _control(self, message: dict[str, Any]) -> None:
        with self.lock:
            if message["type"] == "talk_start":
                self.starts.append(message)
                state = {**message, "type": "talk_state", "state": "open"}
                self.ws.send(json.dumps(state))
            elif message["type"] == "talk_stop":
                self.stops.append(message)

    def payloads(self, session: str) -> list[bytes]:
        with self.lock:
            return list(self.audio.get(session, []))


@dataclass
class TalkSetup:
    server: Server
    household_id: str
    device_id: str
    resident: str
    shared: str
    officer: str
    agent: FakeAgent

    @property
    def page_url(self) -> str:
        return f"{self.server.url}/households/{self.household_id}/cameras/{self.device_id}/live"


@pytest.fixture(scope="module")
def talk(tmp_path_factory: pytest.TempPathFactory, chromium: Path) -> Iterator[TalkSetup]:
    root = tmp_path_factory.mktemp("talk-e2e")
    with serving(root, extra_env={"DOORWARDEN_DEVELOPMENT": "1"}) as server:
        emails = {w: f"{w}@talk.example" for w in ("resident", "shared", "admin", "officer")}
        for who in ("resident", "shared"):
            server.create_user(emails[who], "resident")
        server.create_user(emails["admin"], "operator_admin")
        as_admin = server.api(emails["admin"])
        agency = as_admin.post("/api/v1/agencies", {"name": "Police", "jurisdiction": "Town"})
        as_admin.close()
        server.create_user(emails["officer"], "agency_officer", agency_id=str(agency["id"]))
        owner = server.api(emails["resident"])
        home = str(owner.post("/api/v1/households", {"name": "Home", "time_zone": "UTC"})["id"])
        owner.post(f"/api/v1/households/{home}/members", {"email": emails["shared"]})
        code = str(owner.post(f"/api/v1/households/{home}/pairing-codes", {})["code"])
        owner.close()
        key = SigningKey.generate()
        paired = httpx.post(
            f"{server.url}/api/v1/devices/pair",
            json={"code": code, "name": "Door", "public_key": b64e(key.public)},
        )
        assert paired.status_code == 201, paired.text
        body = paired.json()
        with connect(
            server.url.replace("http://", "ws://") + "/api/v1/device/live",
            additional_headers={"Authorization": f"Bearer {body['token']}"},
        ) as ws:
            agent = FakeAgent(ws)
            thread = threading.Thread(target=agent.run, daemon=True)
            thread.start()
            try:
                yield TalkSetup(
                    server, home, body["device_id"], emails["resident"], emails["shared"],
                    emails["officer"], agent,
                )  # fmt: skip
            finally:
                ws.close()
                thread.join(10)


@pytest.fixture(scope="module")
def mic_browser(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """Chromium with a fake microphone playing the tone bursts. Whether a page may use it
    is the context's permission (granted, or not: the refusal path)."""
    wav = tone_bursts(tmp_path_factory.mktemp("talk-audio") / "tone.wav", TONE_HZ)
    flags = ["--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={wav}"]
    instance = browser.browser_type.launch(
        executable_path=str(CHROMIUM), args=CHROMIUM_ARGS + flags
    )
    try:
        yield instance
    finally:
        instance.close()


def live_page(
    browser: Browser, talk: TalkSetup, console: ConsoleLog, email: str, *, microphone: bool
) -> Page:
    context: BrowserContext = browser.new_context(viewport=DESKTOP)  # type: ignore[arg-type]
    context.set_default_timeout(15_000)
    if microphone:
        context.grant_permissions(["microphone"], origin=talk.server.url)
    page = context.new_page()
    page.on("console", lambda m: console.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: console.errors.append(f"page error: {exc}"))
    sign_in(page, talk.server.url, email)
    expect(page).not_to_have_url(re.compile(r"/login"))
    return page


def open_live(page: Page, talk: TalkSetup) -> None:
    page.goto(talk.page_url)
    # The server's state message: the live socket is open (the agent sends no video).
    expect(page.locator("#live-status")).to_have_text("Connecting to the camera…")


def dominant_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.fft.rfftfreq(samples.size, 1 / rate)[int(np.argmax(spectrum))])


def decode(codec: str, payloads: list[bytes]) -> np.ndarray:
    """The talk's audio as the agent would decode it: raw Opus packets, or one WebM stream."""
    chunks: list[np.ndarray] = []
    if codec == "opus":
        decoder = av.CodecContext.create("opus", "r")
        decoder.sample_rate = RATE  # type: ignore[attr-defined]
        decoder.layout = "mono"  # type: ignore[attr-defined]
        for payload in payloads:
            for frame in decoder.decode(av.Packet(payload)):  # type: ignore[attr-defined]
                chunks.append(frame.to_ndarray().reshape(-1))
    else:
        with av.open(io.BytesIO(b"".join(payloads))) as container:
            for frame in container.decode(audio=0):
                chunks.append(frame.to_ndarray().mean(axis=0))
    return np.concatenate(chunks).astype(np.float64)


@pytest.mark.parametrize("codec", ["opus", "webm"])
def test_a_resident_talks_and_the_camera_receives_the_tone(
    mic_browser: Browser, talk: TalkSetup, console: ConsoleLog, codec: str
) -> None:
    page = live_page(mic_browser, talk, console, talk.resident, microphone=True)
    if codec == "webm":  # a browser without WebCodecs' AudioEncoder: MediaRecorder chunks
        page.add_init_script("delete window.AudioEncoder;")
    try:
        open_live(page, talk)
        button = page.get_by_role("button", name="Talk")
        button.click()
        expect(page.locator("#talk")).to_have_attribute("data-state", "talking")
        expect(page.get_by_role("button", name="Stop")).to_have_attribute("aria-pressed", "true")
        expect(page.locator("#talk-status")).to_have_text("Talking… press Stop to end.")
        page.wait_for_timeout(2_500)
        page.get_by_role("button", name="Stop").click()
        expect(page.locator("#talk")).to_have_attribute("data-state", "ended")
        start = talk.agent.starts[-1]
        assert start["codec"] == codec and start["camera"] == CAMERA
        for _ in range(50):  # the stop reaches the agent moments later
            if any(s["session"] == start["session"] for s in talk.agent.stops):
                break
            page.wait_for_timeout(100)
        assert any(s["session"] == start["session"] for s in talk.agent.stops)
    finally:
        page.context.close()
    payloads = talk.agent.payloads(start["session"])
    if codec == "opus":  # one 20 ms packet per message: about 50 a second
        assert len(payloads) >= 80, len(payloads)
        assert max(len(p) for p in payloads) <= 4_000
    else:  # 100 ms chunks
        assert len(payloads) >= 15, len(payloads)
    audio = decode(codec, payloads)
    assert audio.size >= 2 * RATE, audio.size
    assert np.sqrt(np.mean(audio**2)) > 0.01, "the microphone's tone arrived as silence"
    found = dominant_hz(audio[RATE // 2 :], RATE)  # past the encoder's start-up
    assert abs(found - TONE_HZ) < 15, found
    assert console.errors == []


def test_a_second_member_is_told_someone_else_is_talking(
    mic_browser: Browser, talk: TalkSetup, console: ConsoleLog
) -> None:
    first = live_page(mic_browser, talk, console, talk.resident, microphone=True)
    second = live_page(mic_browser, talk, console, talk.shared, microphone=True)
    try:
        open_live(first, talk)
        open_live(second, talk)
        first.get_by_role("button", name="Talk").click()
        expect(first.locator("#talk")).to_have_attribute("data-state", "talking")
        second.get_by_role("button", name="Talk").click()
        expect(second.locator("#talk")).to_have_attribute("data-state", "busy")
        expect(second.locator("#talk-status")).to_contain_text("Someone else is talking")
        expect(second.get_by_role("button", name="Talk")).to_be_visible()  # not left stuck
        first.get_by_role("button", name="Stop").click()
        expect(first.locator("#talk")).to_have_attribute("data-state", "ended")
        second.get_by_role("button", name="Talk").click()  # free now
        expect(second.locator("#talk")).to_have_attribute("data-state", "talking")
        second.get_by_role("button", name="Stop").click()
        expect(second.locator("#talk")).to_have_attribute("data-state", "ended")
        expect(second.locator("#live-status")).to_have_text("Connecting to the camera…")
    finally:
        first.context.close()
        second.context.close()
    assert console.errors == []


def test_a_refused_microphone_is_explained(
    mic_browser: Browser, talk: TalkSetup, console: ConsoleLog
) -> None:
    page = live_page(mic_browser, talk, console, talk.resident, microphone=False)
    starts = len(talk.agent.starts)
    try:
        open_live(page, talk)
        page.get_by_role("button", name="Talk").click()
        expect(page.locator("#talk")).to_have_attribute("data-state", "denied")
        expect(page.locator("#talk-status")).to_contain_text("microphone is blocked")
        expect(page.get_by_role("button", name="Talk")).to_have_attribute("aria-pressed", "false")
    finally:
        page.context.close()
    assert len(talk.agent.starts) == starts  # nothing reached the camera
    assert console.errors == []


def test_an_agency_officer_has_no_talk(
    mic_browser: Browser, talk: TalkSetup, console: ConsoleLog
) -> None:
    page = live_page(mic_browser, talk, console, talk.officer, microphone=True)
    try:
        response = page.goto(talk.page_url)
        assert response is not None and response.status == 403
        assert page.locator("#talk-button").count() == 0
    finally:
        page.context.close()
    console.errors.clear()  # the 403 page logs its status, as it should
