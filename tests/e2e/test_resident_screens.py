"""The resident's screens in chromium, against a real server and a real agent: the event
timeline (rings, people and motion marked apart, "new" until this member has seen them,
filters by camera, kind and day, a ring arriving while it is open) and the camera grid
(snapshots that switch to live in place).

The agent streams a synthetic camera whose scene has someone cross it once (a motion
clip, hence a motion event and a snapshot); two more cameras are paired through the API
and ring with their device tokens, as an agent without its control connection does.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import (
    DESKTOP,
    MOBILE,
    SCREENSHOTS,
    ApiClient,
    ConsoleLog,
    Server,
    open_page,
    serving,
    stop,
)
from tests.e2e.helpers import sign_in
from tests.e2e.resident_setup import PushDelivery, notifications, pair_camera, ring, ring_payload

AGENT_CONFIG = """\
spool_dir: {root}/spool
state_dir: {root}/state
cameras:
  - name: door
    source: {{kind: synthetic, scene: object, enter_at_s: 1, duration_s: 900,
              width: 320, height: 180, fps: 10, pace: true}}
    record: {{pre_roll_s: 1, post_roll_s: 1, min_clip_s: 2, cooldown_s: 0}}
    detect: {{kind: none}}
"""
MOTION_WAIT_S = 90


@dataclass
class Home:
    server: Server
    household_id: str
    owner: str
    shared: str
    officer: str
    porch: str  # the agent's camera
    front: str
    back: str
    front_token: str
    back_token: str
    yesterday: datetime

    def url(self, path: str) -> str:
        return f"{self.server.url}/households/{self.household_id}{path}"


def _events(server: Server, email: str, household_id: str, **query: str) -> list[dict[str, Any]]:
    api = server.api(email)
    try:
        return _events_as(api, household_id, **query)
    finally:
        api.close()


def _events_as(api: ApiClient, household_id: str, **query: str) -> list[dict[str, Any]]:
    response = api.client.get(f"/api/v1/households/{household_id}/events", params=query)
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()
    return events


def _wait_for_motion(server: Server, email: str, household_id: str) -> None:
    """The agent's motion clip, uploaded, verified and made an event (events.clips)."""
    api = server.api(email)
    try:
        deadline = time.monotonic() + MOTION_WAIT_S
        while not _events_as(api, household_id, kind="motion"):
            if time.monotonic() > deadline:
                pytest.fail(f"no motion event from the agent in {MOTION_WAIT_S} s")
            time.sleep(1)
    finally:
        api.close()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, chromium: Path) -> Iterator[Home]:
    root = tmp_path_factory.mktemp("resident-e2e")
    (root / "server").mkdir()
    # Development mode: the agent may use plain ws:// on loopback.
    with serving(root / "server", extra_env={"DOORWARDEN_DEVELOPMENT": "1"}) as server:
        owner, shared = "owner@screens.example", "shared@screens.example"
        admin, officer = "admin@screens.example", "officer@screens.example"
        for email, role in ((owner, "resident"), (shared, "resident"), (admin, "operator_admin")):
            server.create_user(email, role)
        as_admin = server.api(admin)
        agency = as_admin.post("/api/v1/agencies", {"name": "Police", "jurisdiction": "Town"})
        as_admin.close()
        server.create_user(officer, "agency_officer", agency_id=str(agency["id"]))
        api = server.api(owner)
        home_id = str(api.post("/api/v1/households", {"name": "Home", "time_zone": "UTC"})["id"])
        api.post(f"/api/v1/households/{home_id}/members", {"email": shared})
        code = str(api.post(f"/api/v1/households/{home_id}/pairing-codes", {})["code"])
        config = root / "agent.yaml"
        config.write_text(AGENT_CONFIG.format(root=root))
        server.cli(
            "agent",
            "pair",
            "--server",
            server.url,
            "--code",
            code,
            "--name",
            "Porch",
            "--config",
            str(config),
        )
        [porch] = api.client.get(f"/api/v1/households/{home_id}/devices").json()
        front, front_token = pair_camera(server, api, home_id, "Front door")
        back, back_token = pair_camera(server, api, home_id, "Back door")
        api.close()
        log = (root / "agent.log").open("wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOORWARDEN_")}
        agent = subprocess.Popen(
            [sys.executable, "-m", "doorwarden", "agent", "run", "--config", str(config)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yesterday = datetime.now(UTC) - timedelta(days=1)
            ring(server, front_token, "front", at=yesterday)
            ring(server, front_token, "front")
            ring(server, back_token, "back")
            _wait_for_motion(server, owner, home_id)
            yield Home(
                server,
                home_id,
                owner,
                shared,
                officer,
                str(porch["id"]),
                front,
                back,
                front_token,
                back_token,
                yesterday,
            )
        finally:
            stop(agent, timeout_s=30)
            log.close()


def _page(browser: Browser, console: ConsoleLog, home: Home, email: str) -> Page:
    page = open_page(browser, console)
    page.context.grant_permissions(["notifications"], origin=home.server.url)
    sign_in(page, home.server.url, email)
    expect(page).not_to_have_url(re.compile(r"/login"))
    return page


def _loaded(page: Page) -> None:
    expect(page.locator("#timeline")).to_have_attribute("data-state", "loaded")


def test_the_timeline_marks_kinds_apart_and_new_until_seen(
    browser: Browser, console: ConsoleLog, home: Home
) -> None:
    page = _page(browser, console, home, home.shared)
    try:
        page.goto(home.url(""))
        page.get_by_role("link", name="Events", exact=True).click()
        expect(page).to_have_url(home.url("/events"))
        _loaded(page)
        items = page.locator(".timeline > li")
        expect(items).to_have_count(len(_events(home.server, home.owner, home.household_id)))
        rings = page.locator(".timeline > li.event-ring")
        expect(rings).to_have_count(3)
        for i in range(3):
            expect(rings.nth(i).locator(".event-kind")).to_have_text("Ring")
        motion = page.locator(".timeline > li.event-motion").first
        expect(motion.locator(".event-kind")).to_have_text("Motion")
        expect(motion.locator(".event-camera")).to_have_text(re.compile(r"^Porch( · door)?$"))
        expect(motion.get_by_role("link", name="Open clip")).to_have_attribute(
            "href", re.compile(rf"^/households/{home.household_id}/clips/[0-9a-f-]{{36}}$")
        )
        # Everything is new to this member the first time, and seen once shown.
        expect(page.locator(".timeline > li .badge-new")).to_have_count(items.count())
        expect(page.locator("#timeline")).to_have_attribute("data-seen", "marked")
        live = rings.first.get_by_role("link", name="Watch live")
        expect(live).to_have_attribute(
            "href", f"/households/{home.household_id}/cameras/{home.back}/live"
        )
        page.reload()
        _loaded(page)
        expect(page.locator(".timeline > li")).to_have_count(items.count())
        expect(page.locator(".timeline .badge-new")).to_have_count(0)
        # Seen is per member: the owner has not looked yet.
        assert all(e["new"] for e in _events(home.server, home.owner, home.household_id))
        assert console.errors == []
    finally:
        page.context.close()


def test_the_timeline_filters_by_camera_kind_and_day(
    browser: Browser, console: ConsoleLog, home: Home
) -> None:
    page = _page(browser, console, home, home.owner)
    try:
        page.goto(home.url("/events"))
        _loaded(page)
        page.get_by_label("Kind").select_option(label="Rings")
        page.get_by_role("button", name="Filter").click()
        expect(page).to_have_url(re.compile(r"kind=ring"))
        _loaded(page)
        expect(page.locator(".timeline > li")).to_have_count(3)
        expect(page.locator(".timeline > li.event-motion")).to_have_count(0)
        page.get_by_label("Camera").select_option(label="Front door")
        page.get_by_role("button", name="Filter").click()
        _loaded(page)
        expect(page.locator(".timeline > li")).to_have_count(2)
        expect(page.locator(".event-camera")).to_have_text(["Front door · front"] * 2)
        page.get_by_label("Day (UTC)").fill(home.yesterday.date().isoformat())
        page.get_by_role("button", name="Filter").click()
        _loaded(page)
        expect(page.locator(".timeline > li")).to_have_count(1)
        expect(page.locator(".timeline > li time")).to_have_attribute(
            "datetime", re.compile("^" + home.yesterday.date().isoformat())
        )
        page.get_by_label("Camera").select_option(label="Back door")
        page.get_by_role("button", name="Filter").click()
        _loaded(page)
        expect(page.get_by_role("status")).to_have_text("No events match.")
        # A filter that does not parse is dropped, said, and the rest still applies.
        page.goto(home.url("/events?device_id=not-a-camera&kind=ring&day=yesterday"))
        _loaded(page)
        expect(page.get_by_role("alert")).to_contain_text("device_id, day")
        expect(page.locator(".timeline > li")).to_have_count(3)
        assert console.errors == []
    finally:
        page.context.close()


def test_a_ring_while_the_timeline_is_open_chimes_and_shows_up_new(
    browser: Browser, console: ConsoleLog, home: Home
) -> None:
    page = _page(browser, console, home, home.owner)
    try:
        page.goto(home.url("/events?kind=ring"))
        _loaded(page)
        before = page.locator(".timeline > li").count()
        page.evaluate("() => navigator.serviceWorker.ready")
        push = PushDelivery(page, home.server.url)
        ring(home.server, home.back_token, "back")
        # What notify/ sends for it, as the browser's push service hands it over.
        push.deliver(ring_payload(home.household_id, home.back, body="Back door rang"))
        expect(page.locator("html")).to_have_attribute("data-chimes", "1")
        expect(page.locator(".timeline > li")).to_have_count(before + 1)
        newest = page.locator(".timeline > li").first
        expect(newest.locator(".badge-new")).to_have_text("new")
        expect(newest.locator(".event-camera")).to_have_text("Back door · back")
        assert console.errors == []
    finally:
        page.context.close()


def test_a_clip_push_shows_the_snapshot_fetched_with_the_members_own_session(
    browser: Browser, console: ConsoleLog, home: Home
) -> None:
    [motion, *_] = _events(home.server, home.owner, home.household_id, kind="motion")
    thumbnail = f"/api/v1/households/{home.household_id}/clips/{motion['clip_id']}/thumbnail"
    page = _page(browser, console, home, home.shared)
    try:
        page.evaluate("() => navigator.serviceWorker.ready")
        push = PushDelivery(page, home.server.url)
        clip_page = f"/households/{home.household_id}/clips/{motion['clip_id']}"
        payload = ring_payload(
            home.household_id,
            home.porch,
            kind="motion",
            title="Motion at Porch",
            url=clip_page,
            thumbnail=thumbnail,
        )
        push.deliver(payload)
        [shown] = notifications(page)
        assert shown["image"].startswith("data:image/jpeg;base64,")
        assert shown["data"]["url"] == clip_page
        # A thumbnail that is not this site's clip thumbnail API is never fetched.
        push.deliver({**payload, "id": "other", "thumbnail": "https://evil.example/t.jpg"})
        shown = notifications(page, 2)
        assert [n["image"] for n in shown if n["tag"] == "other"] == [""]
    finally:
        page.context.close()


FRAMES = """(video) => new Promise((done) => {
  const start = video.currentTime;
  setTimeout(() => done(video.currentTime - start), 1500);
})"""


def test_the_grid_shows_snapshots_and_goes_live_in_place(
    browser: Browser, console: ConsoleLog, home: Home
) -> None:
    page = _page(browser, console, home, home.shared)
    try:
        page.goto(home.url(""))
        page.get_by_role("link", name="Camera grid").click()
        expect(page).to_have_url(home.url("/cameras/grid"))
        tiles = page.locator(".camera-tile")
        expect(tiles).to_have_count(3)
        porch = tiles.filter(has_text="Porch")
        snapshot = porch.get_by_role("img", name="Latest snapshot from Porch")
        expect(snapshot).to_be_visible()
        assert snapshot.evaluate("(img) => img.decode().then(() => img.naturalWidth)") > 0
        expect(tiles.filter(has_text="Front door").get_by_text("No snapshot yet")).to_be_visible()
        # Hover: the tile plays the camera live; leaving it goes back to the snapshot.
        porch.hover()
        expect(porch).to_have_attribute("data-state", "streaming", timeout=30_000)
        video = porch.locator("video")
        expect(video).to_be_visible()
        expect(snapshot).to_be_hidden()
        assert video.evaluate(FRAMES) > 0
        page.mouse.move(0, 0)
        expect(porch).to_have_attribute("data-state", "snapshot")
        expect(snapshot).to_be_visible()
        # Tap (the button, for keyboards and touch): stays live until stopped.
        front = tiles.filter(has_text="Front door")
        front.get_by_role("button", name="Watch here").click()
        expect(front).to_have_attribute("data-state", "offline")  # no agent behind it
        expect(front.get_by_role("status")).to_contain_text("offline")
        page.mouse.move(0, 0)
        expect(front).to_have_attribute("data-state", "offline")
        front.get_by_role("button", name="Stop").click()
        expect(front).to_have_attribute("data-state", "snapshot")
        assert console.errors == []
    finally:
        page.context.close()


@pytest.mark.parametrize("path", ["/events", "/cameras/grid"])
def test_staff_and_strangers_get_no_resident_screen(home: Home, path: str) -> None:
    officer = home.server.api(home.officer)
    try:
        assert officer.client.get(home.url(path)).status_code == 403
    finally:
        officer.close()
    anonymous = httpx.get(home.url(path), timeout=10)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")


UNLABELLED = """() => Array.from(document.querySelectorAll('input, select, textarea'))
    .filter(el => el.type !== 'hidden' && el.labels.length === 0)
    .map(el => el.name || el.id || el.outerHTML)"""


@pytest.mark.parametrize(("width_name", "viewport"), [("desktop", DESKTOP), ("mobile", MOBILE)])
def test_screens_are_labelled_and_render_without_console_errors(
    browser: Browser, home: Home, width_name: str, viewport: dict[str, int]
) -> None:
    console = ConsoleLog()
    page = open_page(browser, console, viewport)
    SCREENSHOTS.mkdir(exist_ok=True)
    try:
        sign_in(page, home.server.url, home.owner)
        expect(page).not_to_have_url(re.compile(r"/login"))
        for name, path in (("events", "/events"), ("camera-grid", "/cameras/grid")):
            page.goto(home.url(path))
            expect(page.locator("h1")).to_have_count(1)
            if name == "events":
                _loaded(page)
            assert page.evaluate(UNLABELLED) == [], path
            page.screenshot(path=str(SCREENSHOTS / f"{name}-{width_name}.png"), full_page=True)
        page.goto(f"{home.server.url}/account")
        expect(page.locator("#push")).not_to_have_attribute("data-state", re.compile("^$"))
        page.screenshot(path=str(SCREENSHOTS / f"account-push-{width_name}.png"), full_page=True)
    finally:
        page.context.close()
    assert console.errors == []
