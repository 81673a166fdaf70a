"""A camera's settings page in chromium, against a real server (`doorwarden serve`) and a
real agent (`doorwarden agent run`, a synthetic camera) paired to it.

The owner opens the settings from the cameras page, takes a snapshot, draws a privacy
zone over the left half and saves; the page says "Applied" within seconds, and the live
page, open all along on its one connection, shows the left half black from then on while
the right half still shows the scene: nothing restarted. A shared member and an agency
officer get no settings page; a malformed polygon or an out-of-range value is refused by
the API with the field named, and the page points at that field.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, WebSocket, expect

from tests.e2e.conftest import PASSWORD, ConsoleLog, Server, open_page, serving, stop
from tests.e2e.helpers import sign_in

AGENT_CONFIG = """\
spool_dir: {root}/spool
state_dir: {root}/state
cameras:
  - name: door
    source: {{kind: synthetic, scene: static, duration_s: 900,
              width: 320, height: 180, fps: 10, pace: true}}
    detect: {{kind: none}}
"""
APPLIED_WITHIN_S = 5.0  # "within a few seconds": the page polls every 0.3 s
BLACK_WITHIN_S = 5.0  # the next keyframe's worth of live video, with the page's buffer

# Mean luma of the left and right parts of the frame the <video> shows now, read back
# through a canvas (BT.601 weights); the strip along the zone's edge is left out, where
# the encoder's blocks blur black into the scene.
LUMA = """(video) => {
  const w = video.videoWidth, h = video.videoHeight;
  if (!w || !h) return null;
  const canvas = document.createElement("canvas");
  canvas.width = w; canvas.height = h;
  const ctx = canvas.getContext("2d", {willReadFrequently: true});
  ctx.drawImage(video, 0, 0, w, h);
  const mean = (x0, x1) => {
    const data = ctx.getImageData(x0, Math.round(h * 0.1), x1 - x0, Math.round(h * 0.8)).data;
    let sum = 0;
    for (let i = 0; i < data.length; i += 4) {
      sum += 0.299 * data[i] + 0.587 * data[i + 1] + 0.114 * data[i + 2];
    }
    return sum / (data.length / 4);
  };
  return {left: mean(Math.round(w * 0.05), Math.round(w * 0.42)),
          right: mean(Math.round(w * 0.58), Math.round(w * 0.95)),
          time: video.currentTime};
}"""
DARK = 24  # video black is 16 in limited range; the browser shows it as ~0
LIT = 40


@dataclass
class Agent:
    """`doorwarden agent run` in its own process, which a test may stop and start again."""

    config: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOORWARDEN_")}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "doorwarden", "agent", "run", "--config", str(self.config)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process, timeout_s=30)
            self.process = None


@dataclass
class Setup:
    server: Server
    household_id: str
    device_id: str
    owner: str
    shared: str
    officer: str
    agent: Agent

    @property
    def cameras_url(self) -> str:
        return f"{self.server.url}/households/{self.household_id}/cameras"

    @property
    def settings_url(self) -> str:
        return f"{self.cameras_url}/{self.device_id}/settings"

    @property
    def live_url(self) -> str:
        return f"{self.cameras_url}/{self.device_id}/live"

    def api_path(self, camera: str = "door") -> str:
        return (
            f"/api/v1/households/{self.household_id}/devices/{self.device_id}"
            f"/cameras/{camera}/settings"
        )


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, chromium: Path) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("settings-e2e")
    (root / "server").mkdir()
    with serving(root / "server", extra_env={"DOORWARDEN_DEVELOPMENT": "1"}) as server:
        owner, shared = "owner@settings.example", "shared@settings.example"
        admin, officer = "admin@settings.example", "officer@settings.example"
        for email, role in ((owner, "resident"), (shared, "resident"), (admin, "operator_admin")):
            server.create_user(email, role)
        as_admin = server.api(admin)
        agency = as_admin.post("/api/v1/agencies", {"name": "Police", "jurisdiction": "Town"})
        as_admin.close()
        server.create_user(officer, "agency_officer", agency_id=str(agency["id"]))
        as_owner = server.api(owner)
        home = str(as_owner.post("/api/v1/households", {"name": "Home", "time_zone": "UTC"})["id"])
        as_owner.post(f"/api/v1/households/{home}/members", {"email": shared})
        code = str(as_owner.post(f"/api/v1/households/{home}/pairing-codes", {})["code"])
        devices = as_owner.client
        config = root / "agent.yaml"
        config.write_text(AGENT_CONFIG.format(root=root))
        server.cli("agent", "pair", "--server", server.url, "--code", code, "--config", str(config))
        [device] = devices.get(f"/api/v1/households/{home}/devices").json()
        as_owner.close()
        agent = Agent(config, root / "agent.log")
        agent.start()
        try:
            yield Setup(server, home, str(device["id"]), owner, shared, officer, agent)
        finally:
            agent.stop()


@contextlib.contextmanager
def signed_in_api(setup: Setup, email: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=setup.server.url, timeout=30) as client:
        response = client.post("/api/v1/session", json={"email": email, "password": PASSWORD})
        assert response.status_code == 200, response.text
        client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
        yield client


def open_settings(page: Page, setup: Setup) -> None:
    """From the cameras page, as the owner finds it."""
    page.goto(setup.cameras_url)
    page.get_by_role("link", name=re.compile(r"^Settings of ")).click()
    expect(page).to_have_url(re.compile(r"/settings$"))
    # The agent may still be starting: wait until its settings state has loaded.
    expect(page.locator("#camera-settings")).to_have_attribute("data-ready", "true")


def click_at(page: Page, x: float, y: float) -> None:
    """A click at normalised (x, y) of the zone canvas; an edge is hit a pixel inside it
    (the editor snaps points that near an edge onto it)."""
    canvas = page.locator("#zones-canvas")
    canvas.evaluate("(el) => el.scrollIntoView({block: 'center'})")
    box = canvas.bounding_box()
    assert box is not None
    px = box["x"] + min(max(x * box["width"], 1), box["width"] - 1)
    py = box["y"] + min(max(y * box["height"], 1), box["height"] - 1)
    page.mouse.click(px, py)


def draw(page: Page, points: list[tuple[float, float]]) -> None:
    for x, y in points:
        click_at(page, x, y)
    click_at(page, *points[0])  # clicking the first corner closes the polygon


def luma(page: Page) -> dict[str, float] | None:
    value: dict[str, float] | None = page.locator("#live-video").evaluate(LUMA)
    return value


def wait_for_live(page: Page, setup: Setup) -> None:
    page.goto(setup.live_url)
    expect(page.locator("#live")).to_have_attribute("data-state", "streaming", timeout=30_000)
    page.wait_for_function(
        "() => { const v = document.getElementById('live-video'); "
        "return v.videoWidth > 0 && v.currentTime > 0.5; }",
        timeout=15_000,
    )


def test_owner_draws_a_privacy_zone_and_the_live_view_is_black_there_at_once(
    setup: Setup, browser: Browser, console: ConsoleLog
) -> None:
    page = open_page(browser, console)
    try:
        sign_in(page, setup.server.url, setup.owner)
        expect(page).not_to_have_url(re.compile(r"/login"))
        # The live view is open first, and stays open on its one connection throughout.
        live = page.context.new_page()
        sockets: list[WebSocket] = []
        live.on("websocket", lambda socket: sockets.append(socket))
        wait_for_live(live, setup)
        before = luma(live)
        assert before is not None and before["left"] > LIT and before["right"] > LIT, before

        open_settings(page, setup)
        page.get_by_role("button", name="Take a snapshot").click()
        expect(page.locator("#camera-settings")).to_have_attribute("data-snapshot", "320x180")
        expect(page.get_by_role("radio", name="Privacy zones")).to_be_checked()
        draw(page, [(0, 0), (0.5, 0), (0.5, 1), (0, 1)])
        zones = page.locator("#setting-privacy-zones")
        expect(zones.locator("li.polygon")).to_have_count(1)
        expect(zones.locator("li.polygon")).to_contain_text("4 corners")
        expect(zones.locator("[data-source]")).to_have_text("this page (not saved)")

        started = time.monotonic()
        page.get_by_role("button", name="Save", exact=True).click()
        applied = page.locator("#applied-status")
        expect(applied).to_have_text("Applied", timeout=APPLIED_WITHIN_S * 1000)
        took = time.monotonic() - started
        expect(zones.locator("[data-source]")).to_have_text("this page")
        expect(page.locator("#settings-error")).to_be_hidden()

        with signed_in_api(setup, setup.owner) as owner:
            state = owner.get(setup.api_path()).json()
        assert state["settings"] == {"privacy_zones": [[[0, 0], [0.5, 0], [0.5, 1], [0, 1]]]}
        assert state["applied"]["version"] == state["version"] and state["applied"]["ok"]
        assert state["applied"]["sources"]["privacy_zones"] == "web"

        # The live page, never reloaded: its next frames are black on the left only.
        deadline = time.monotonic() + BLACK_WITHIN_S
        seen: list[dict[str, float] | None] = []
        while True:
            now = luma(live)
            seen.append(now)
            if now is not None and now["time"] > 0 and now["left"] < DARK:
                break  # a picture (not the empty canvas of a restarting stream), black left
            assert time.monotonic() < deadline, f"the left half never went black: {seen[-5:]}"
            live.wait_for_timeout(100)
        assert now["right"] > LIT, now  # the rest of the scene is still there
        assert len(sockets) == 1, "the live page reconnected"
        print(f"saved -> Applied shown in {took:.2f} s")  # noqa: T201 - a figure for the report
    finally:
        page.context.close()
    assert console.errors == []


@pytest.mark.parametrize("who", ["shared", "officer"])
def test_no_settings_page_for_a_shared_member_or_an_agency(
    setup: Setup, browser: Browser, console: ConsoleLog, who: str
) -> None:
    page = open_page(browser, console)
    email = getattr(setup, who)
    try:
        sign_in(page, setup.server.url, email)
        expect(page).not_to_have_url(re.compile(r"/login"))
        if who == "shared":
            page.goto(setup.cameras_url)
            expect(page.get_by_role("link", name=re.compile(r"^Watch .* live$"))).to_have_count(1)
            expect(page.get_by_role("link", name=re.compile(r"^Settings of "))).to_have_count(0)
        response = page.goto(setup.settings_url)
        assert response is not None and response.status == 403
        expect(page.locator("#camera-settings")).to_have_count(0)
    finally:
        page.context.close()
    console.errors.clear()  # the 403 is logged as a failed load, as it should be
    with signed_in_api(setup, email) as client:
        assert client.get(setup.api_path()).status_code == 403
        body = {"version": 0, "settings": {"privacy_zones": []}}
        assert client.put(setup.api_path(), json=body).status_code == 403
        snapshot = setup.api_path().removesuffix("/settings") + "/snapshot"
        assert client.post(snapshot).status_code == 403


def test_a_malformed_polygon_and_a_bad_value_are_refused_with_the_field_shown(
    setup: Setup, browser: Browser, console: ConsoleLog
) -> None:
    with signed_in_api(setup, setup.owner) as owner:
        version = owner.get(setup.api_path()).json()["version"]
        # Straight to the API: a two-corner "polygon".
        body = {"version": version, "settings": {"motion.zones": [[[0, 0], [1, 0]]]}}
        refused = owner.put(setup.api_path(), json=body)
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["details"]["field"].startswith("motion.zones.0")

    page = open_page(browser, console)
    tampered: list[dict[str, Any]] = []

    def corrupt(route: Route) -> None:
        """The page's request with a corner moved off the image, as a buggy or hostile
        client would send it; the real server answers."""
        if route.request.method != "PUT":
            route.continue_()
            return
        body = json.loads(route.request.post_data or "{}")
        body["settings"]["motion.zones"][0][2] = [1.5, 0.5]
        tampered.append(body)
        route.continue_(post_data=json.dumps(body))

    try:
        sign_in(page, setup.server.url, setup.owner)
        expect(page).not_to_have_url(re.compile(r"/login"))
        open_settings(page, setup)
        # A value out of range, typed: the API names the field, the page marks its input.
        sensitivity = page.get_by_label("Sensitivity", exact=True)
        sensitivity.fill("2")
        page.get_by_role("button", name="Save", exact=True).click()
        field = page.locator("#setting-motion-sensitivity")
        expect(field).to_have_class(re.compile(r"\binvalid\b"))
        expect(sensitivity).to_have_attribute("aria-invalid", "true")
        expect(field.locator("[data-error]")).to_be_visible()
        expect(page.locator("#settings-error")).to_contain_text("Sensitivity")
        sensitivity.fill("")  # back to the file's value

        page.route(re.compile(r"/cameras/door/settings$"), corrupt)
        page.get_by_role("radio", name="Motion zones").check()
        draw(page, [(0.6, 0.2), (0.9, 0.2), (0.8, 0.7)])
        page.get_by_role("button", name="Save", exact=True).click()
        zones = page.locator("#setting-motion-zones")
        expect(zones).to_have_class(re.compile(r"\binvalid\b"))
        expect(zones.locator("li.polygon.invalid")).to_have_count(1)
        expect(zones.locator("[data-error]")).to_be_visible()
        expect(page.locator("#zones-canvas")).to_have_attribute("data-layer", "motion.zones")
        assert len(tampered) == 1
    finally:
        page.context.close()
    console.errors.clear()  # two 422 answers, logged by chromium as failed loads
    with signed_in_api(setup, setup.owner) as owner:
        assert owner.get(setup.api_path()).json()["version"] == version  # nothing was saved


def test_a_change_saved_while_the_camera_is_offline_waits_then_applies(
    setup: Setup, browser: Browser, console: ConsoleLog
) -> None:
    page = open_page(browser, console)
    try:
        sign_in(page, setup.server.url, setup.owner)
        expect(page).not_to_have_url(re.compile(r"/login"))
        open_settings(page, setup)
        setup.agent.stop()
        with signed_in_api(setup, setup.owner) as owner:
            deadline = time.monotonic() + 30
            while owner.get(setup.api_path()).json()["connected"]:
                assert time.monotonic() < deadline, "the server still sees the agent"
                time.sleep(0.1)
        page.get_by_label("Post-roll (s)", exact=True).fill("7")
        page.get_by_role("button", name="Save", exact=True).click()
        applied = page.locator("#applied-status")
        expect(applied).to_have_text(re.compile(r"^Waiting for the camera \(offline\)"))
        expect(page.locator("#setting-record-post-roll-s [data-source]")).to_have_text("this page")
        setup.agent.start()  # it connects, is sent the change, applies it: the page says so
        expect(applied).to_have_text("Applied", timeout=60_000)
        with signed_in_api(setup, setup.owner) as owner:
            state = owner.get(setup.api_path()).json()
        assert state["applied"]["effective"]["record.post_roll_s"] == 7
        assert state["applied"]["sources"]["record.post_roll_s"] == "web"
    finally:
        page.context.close()
    assert console.errors == []


def test_a_change_made_elsewhere_meanwhile_is_not_overwritten(
    setup: Setup, browser: Browser, console: ConsoleLog
) -> None:
    page = open_page(browser, console)
    try:
        sign_in(page, setup.server.url, setup.owner)
        expect(page).not_to_have_url(re.compile(r"/login"))
        open_settings(page, setup)
        with signed_in_api(setup, setup.owner) as owner:  # another tab, another device
            state = owner.get(setup.api_path()).json()
            body = {"version": state["version"], "settings": {"motion.min_area": 0.01}}
            assert owner.put(setup.api_path(), json=body).status_code == 200
        page.get_by_label("Sensitivity", exact=True).fill("0.3")
        page.get_by_role("button", name="Save", exact=True).click()
        expect(page.locator("#settings-error")).to_contain_text("changed elsewhere")
    finally:
        page.context.close()
    console.errors.clear()  # the 409, logged by chromium as a failed load
    with signed_in_api(setup, setup.owner) as owner:
        after = owner.get(setup.api_path()).json()
    assert after["version"] == state["version"] + 1
    assert after["settings"] == {"motion.min_area": 0.01}


def test_reset_one_field_then_all_to_the_cameras_file(
    setup: Setup, browser: Browser, console: ConsoleLog
) -> None:
    with signed_in_api(setup, setup.owner) as owner:
        version = owner.get(setup.api_path()).json()["version"]
        body = {
            "version": version,
            "settings": {"motion.min_area": 0.01, "motion.sensitivity": 0.4},
        }
        assert owner.put(setup.api_path(), json=body).status_code == 200
    page = open_page(browser, console)
    try:
        sign_in(page, setup.server.url, setup.owner)
        expect(page).not_to_have_url(re.compile(r"/login"))
        open_settings(page, setup)
        sensitivity = page.locator("#setting-motion-sensitivity")
        expect(page.get_by_label("Sensitivity", exact=True)).to_have_value("0.4")
        expect(sensitivity.locator("[data-source]")).to_have_text("this page")
        page.get_by_role("button", name="Reset Sensitivity to the camera's file").click()
        expect(sensitivity.locator("[data-source]")).to_have_text(
            "the camera's file (after saving)"
        )
        page.get_by_role("button", name="Save", exact=True).click()
        applied = page.locator("#applied-status")
        expect(applied).to_have_text("Applied", timeout=APPLIED_WITHIN_S * 1000)
        expect(sensitivity.locator("[data-source]")).to_have_text("the camera's file")
        with signed_in_api(setup, setup.owner) as owner:
            state = owner.get(setup.api_path()).json()
        assert state["settings"] == {"motion.min_area": 0.01}
        assert state["applied"]["sources"]["motion.sensitivity"] == "file"

        page.get_by_role("button", name="Reset all to the camera's file").click()
        expect(page.locator("#settings-status")).to_have_text(
            f"Saved as version {state['version'] + 1}."
        )
        expect(applied).to_have_text("Applied", timeout=APPLIED_WITHIN_S * 1000)
        expect(page.locator("#setting-motion-min-area [data-source]")).to_have_text(
            "the camera's file"
        )
        with signed_in_api(setup, setup.owner) as owner:
            state = owner.get(setup.api_path()).json()
        assert state["settings"] == {} and state["applied"]["version"] == state["version"]
        assert set(state["applied"]["sources"].values()) == {"file"}
    finally:
        page.context.close()
    assert console.errors == []


def test_the_zone_editor_works_with_the_keyboard_alone(
    setup: Setup, browser: Browser, console: ConsoleLog
) -> None:
    page = open_page(browser, console)
    try:
        sign_in(page, setup.server.url, setup.owner)
        expect(page).not_to_have_url(re.compile(r"/login"))
        open_settings(page, setup)
        page.get_by_role("radio", name="Ignore areas").check()
        page.locator("#zones-canvas").focus()
        # From the cross's start (the middle): a corner, 3 steps right, then 3 steps down.
        for key in ["Enter", *["Shift+ArrowRight"] * 3, "Enter", *["Shift+ArrowDown"] * 3, "Enter"]:
            page.keyboard.press(key)
        page.get_by_role("button", name="Finish polygon").click()
        ignore = page.locator("#setting-motion-ignore")
        expect(ignore.locator("li.polygon")).to_have_count(1)
        expect(ignore.locator("li.polygon")).to_contain_text("3 corners")
        expect(ignore.locator("[data-source]")).to_have_text("this page (not saved)")
        page.locator("#zones-canvas").focus()
        page.keyboard.press("s")  # the layer's first polygon
        page.keyboard.press("n")  # its first corner
        page.keyboard.press("ArrowUp")
        expect(page.locator("#zones-announce")).to_contain_text("Corner moved")
        page.keyboard.press("Escape")  # deselect the corner, keep the polygon
        page.keyboard.press("s")
        page.keyboard.press("Delete")
        expect(ignore.locator("li.polygon")).to_have_count(0)
        expect(page.locator("#zones-announce")).to_contain_text("deleted")
    finally:
        page.context.close()
    assert console.errors == []
