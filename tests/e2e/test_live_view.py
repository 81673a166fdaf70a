"""Live view in chromium: a real agent (`doorwarden agent run`, a synthetic camera) paired
to a real server, watched through the live page.

The resident and a shared member see frames advancing; an agency officer gets neither the
page nor the stream. The server runs in development mode so that the agent may use plain
ws:// on loopback; TLS for cameras is tested in tests/functional/live/test_live.py.
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

import pytest
from playwright.sync_api import Browser, Page, WebSocketRoute, expect

from tests.e2e.conftest import ConsoleLog, Server, open_page, serving, stop
from tests.e2e.helpers import sign_in

AGENT_CONFIG = """\
spool_dir: {root}/spool
state_dir: {root}/state
cameras:
  - name: door
    source: {{kind: synthetic, scene: object, enter_at_s: 1, duration_s: 600,
              width: 320, height: 180, fps: 10, pace: true}}
    detect: {{kind: none}}
"""

FRAMES_SHOWN = """(video) => new Promise((done) => {
  let frames = 0;
  const start = video.currentTime;
  const count = () => { frames += 1; video.requestVideoFrameCallback(count); };
  video.requestVideoFrameCallback(count);
  setTimeout(() => done({frames, advanced: video.currentTime - start,
                         width: video.videoWidth, height: video.videoHeight}), 2000);
})"""


@dataclass
class LiveSetup:
    server: Server
    household_id: str
    device_id: str
    resident: str
    shared: str
    officer: str

    @property
    def page_url(self) -> str:
        return f"{self.server.url}/households/{self.household_id}/cameras/{self.device_id}/live"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, chromium: Path) -> Iterator[LiveSetup]:
    root = tmp_path_factory.mktemp("live-e2e")
    (root / "server").mkdir()
    with serving(root / "server", extra_env={"DOORWARDEN_DEVELOPMENT": "1"}) as server:
        resident, shared, officer = (
            "resident@live.example",
            "shared@live.example",
            "officer@live.example",
        )
        admin = "admin@live.example"
        for email, role in (
            (resident, "resident"),
            (shared, "resident"),
            (admin, "operator_admin"),
        ):
            server.create_user(email, role)
        as_admin = server.api(admin)
        agency = as_admin.post("/api/v1/agencies", {"name": "Police", "jurisdiction": "Town"})
        as_admin.close()
        server.create_user(officer, "agency_officer", agency_id=str(agency["id"]))
        owner = server.api(resident)
        home = str(owner.post("/api/v1/households", {"name": "Home", "time_zone": "UTC"})["id"])
        owner.post(f"/api/v1/households/{home}/members", {"email": shared})
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
            yield LiveSetup(server, home, device_id, resident, shared, officer)
        finally:
            stop(agent, timeout_s=30)
            log.close()


def _device_id(server: Server, resident: str, home: str) -> str:
    client = server.api(resident)
    try:
        response = client.client.get(f"/api/v1/households/{home}/devices")
        assert response.status_code == 200, response.text
        [device] = response.json()
        return str(device["id"])
    finally:
        client.close()


def watch(page: Page, live: LiveSetup, email: str) -> dict[str, float]:
    sign_in(page, live.server.url, email)
    expect(page).not_to_have_url(re.compile(r"/login"))
    page.goto(live.page_url)
    # The agent may still be starting: the page waits for it and says so.
    expect(page.locator("#live")).to_have_attribute("data-state", "streaming", timeout=30_000)
    video = page.locator("#live-video")
    expect(page.get_by_role("status")).to_have_text("Live")
    shown: dict[str, float] = video.evaluate(FRAMES_SHOWN)
    return shown


@pytest.mark.parametrize("who", ["resident", "shared"])
def test_members_see_the_camera_live(
    live: LiveSetup, browser: Browser, console: ConsoleLog, who: str
) -> None:
    page = open_page(browser, console)
    try:
        shown = watch(page, live, getattr(live, who))
    finally:
        page.context.close()
    # 10 fps for 2 s: frames keep coming and the playhead moves with them.
    assert shown["frames"] >= 8, shown
    assert shown["advanced"] >= 1.0, shown
    assert (shown["width"], shown["height"]) == (320, 180)
    assert console.errors == []


def test_the_page_reconnects_on_its_own_after_a_dropped_connection(
    live: LiveSetup, browser: Browser, console: ConsoleLog
) -> None:
    page = open_page(browser, console)
    sockets: list[WebSocketRoute] = []

    def relay(route: WebSocketRoute) -> None:
        route.connect_to_server()  # a real connection to the server, through Playwright
        sockets.append(route)

    page.route_web_socket(re.compile(r"/live(\?.*)?$"), relay)
    try:
        watch(page, live, live.resident)
        sockets[-1].close(code=1011, reason="network drop")  # the page's connection dies
        expect(page.locator("#live")).to_have_attribute("data-state", "reconnecting")
        expect(page.locator("#live")).to_have_attribute("data-state", "streaming", timeout=15_000)
        assert len(sockets) == 2  # a new connection, made by the page itself
        shown = page.locator("#live-video").evaluate(FRAMES_SHOWN)
        assert shown["frames"] >= 8, shown
    finally:
        page.context.close()
    assert console.errors == []


def test_an_agency_officer_gets_neither_the_page_nor_the_stream(
    live: LiveSetup, browser: Browser, console: ConsoleLog
) -> None:
    page = open_page(browser, console)
    try:
        sign_in(page, live.server.url, live.officer)
        expect(page).not_to_have_url(re.compile(r"/login"))
        response = page.goto(live.page_url)
        assert response is not None and response.status == 403
        ws_url = (
            live.page_url.replace("http://", "ws://")
            .replace("/households/", "/api/v1/households/")
            .replace("/cameras/", "/devices/")
        )
        started = time.monotonic()
        outcome = page.evaluate(
            """(url) => new Promise((done) => {
                 const socket = new WebSocket(url);
                 socket.onopen = () => done("opened");
                 socket.onclose = (event) => done("closed " + event.code);
               })""",
            ws_url,
        )
        assert outcome == "closed 1006", outcome  # the handshake was refused
        assert time.monotonic() - started < 10
    finally:
        page.context.close()
    console.errors.clear()  # the 403 page and the refused socket log errors, as they should
