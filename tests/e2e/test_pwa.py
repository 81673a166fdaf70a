"""The installable web app in chromium: the manifest as chromium itself parses it, the
service worker registering with scope /, and a push delivered through the DevTools
protocol showing a notification that opens the right page, with the in-app chime for a
ring on the open page."""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import ConsoleLog, Server, open_page, serving
from tests.e2e.helpers import sign_in
from tests.e2e.resident_setup import PushDelivery, notifications, pair_camera, ring_payload


@dataclass
class Home:
    server: Server
    resident: str
    household_id: str
    device_id: str
    officer: str


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, chromium: Path) -> Iterator[Home]:
    with serving(tmp_path_factory.mktemp("pwa-e2e")) as server:
        resident, admin, officer = (
            "resident@pwa.example",
            "admin@pwa.example",
            "officer@pwa.example",
        )
        server.create_user(resident, "resident")
        server.create_user(admin, "operator_admin")
        as_admin = server.api(admin)
        agency = as_admin.post("/api/v1/agencies", {"name": "Police", "jurisdiction": "Town"})
        as_admin.close()
        server.create_user(officer, "agency_officer", agency_id=str(agency["id"]))
        owner = server.api(resident)
        household = str(
            owner.post("/api/v1/households", {"name": "Home", "time_zone": "UTC"})["id"]
        )
        device_id, _token = pair_camera(server, owner, household, "Front door")
        owner.close()
        yield Home(server, resident, household, device_id, officer)


def _signed_in(browser: Browser, console: ConsoleLog, home: Home, email: str = "") -> Page:
    page = open_page(browser, console)
    page.context.grant_permissions(["notifications"], origin=home.server.url)
    sign_in(page, home.server.url, email or home.resident)
    expect(page).not_to_have_url(re.compile(r"/login"))
    return page


def _png_size(body: bytes) -> tuple[int, int]:
    assert body[:8] == b"\x89PNG\r\n\x1a\n" and body[12:16] == b"IHDR"
    width, height = struct.unpack(">II", body[16:24])
    return width, height


def test_the_manifest_makes_the_app_installable(
    browser: Browser, console: ConsoleLog, home: Home
) -> None:
    page = _signed_in(browser, console, home)
    try:
        cdp = page.context.new_cdp_session(page)
        parsed = cdp.send("Page.getAppManifest")
        assert parsed["url"] == f"{home.server.url}/manifest.webmanifest"
        assert parsed["errors"] == [], parsed["errors"]
        manifest = httpx.get(parsed["url"], timeout=10)
        assert manifest.headers["content-type"].startswith("application/manifest+json")
        body = manifest.json()
        assert body["name"] and body["short_name"]
        assert body["start_url"] == "/households" and body["display"] == "standalone"
        sizes = {}
        for icon in body["icons"]:
            image = httpx.get(home.server.url + icon["src"], timeout=10)
            assert image.status_code == 200 and image.headers["content-type"] == "image/png"
            sizes[icon["sizes"]] = _png_size(image.content)
        assert sizes == {"192x192": (192, 192), "512x512": (512, 512)}
        # Chromium's own verdict, once the service worker controls the page.
        page.evaluate("() => navigator.serviceWorker.ready")
        page.reload()
        errors = cdp.send("Page.getInstallabilityErrors")["installabilityErrors"]
        # A test's browser context is a fresh, incognito-like profile: the one objection
        # that is about the browser, not the app.
        assert [e for e in errors if e["errorId"] != "in-incognito"] == [], errors
        assert console.errors == []
    finally:
        page.context.close()


def test_the_service_worker_registers_for_the_whole_site(
    browser: Browser, console: ConsoleLog, home: Home
) -> None:
    page = _signed_in(browser, console, home)
    try:
        scope = page.evaluate("() => navigator.serviceWorker.ready.then((r) => r.scope)")
        assert scope == f"{home.server.url}/"
        expect(page.locator("html")).to_have_attribute("data-service-worker", "registered")
        response = httpx.get(f"{home.server.url}/sw.js", timeout=10)
        assert response.headers["content-type"].startswith("text/javascript")
        assert response.headers["cache-control"] == "no-cache"
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert console.errors == []
    finally:
        page.context.close()


def test_a_push_delivered_twice_rings_once(
    browser: Browser, console: ConsoleLog, home: Home
) -> None:
    """Push services deliver at least once; the same ring again must not chime again."""
    page = _signed_in(browser, console, home)
    try:
        page.goto(f"{home.server.url}/households/{home.household_id}")
        page.evaluate("() => navigator.serviceWorker.ready")
        push = PushDelivery(page, home.server.url)
        payload = ring_payload(home.household_id, home.device_id)
        push.deliver(payload)
        expect(page.locator("html")).to_have_attribute("data-chimes", "1")
        push.deliver(payload)  # the same message, again
        later = ring_payload(home.household_id, home.device_id, body="Front door rang again")
        push.deliver(later)  # a new ring, told to the page after the copy
        expect(page.get_by_role("alert")).to_contain_text("Front door rang again")
        assert page.locator("html").get_attribute("data-chimes") == "2"
        assert len(notifications(page)) == 2  # one per ring: the copy replaced its own
        assert console.errors == []
    finally:
        page.context.close()


def test_a_ring_push_shows_a_notification_chimes_and_opens_live_view(
    browser: Browser, console: ConsoleLog, home: Home
) -> None:
    page = _signed_in(browser, console, home)
    try:
        page.goto(f"{home.server.url}/households/{home.household_id}")
        page.evaluate("() => navigator.serviceWorker.ready")
        push = PushDelivery(page, home.server.url)
        payload = ring_payload(home.household_id, home.device_id)
        push.deliver(payload)
        [shown] = notifications(page)
        assert shown["title"] == "Someone is at the door"
        assert shown["body"] == "Front door rang at 11:00"
        assert shown["tag"] == payload["id"]
        assert shown["data"] == {"url": payload["url"], "kind": "ring"}
        assert shown["image"] == ""  # the payload named no thumbnail: nothing fetched
        assert shown["requireInteraction"] is True
        # The open page heard it: one chime, and a banner that leads to live view.
        expect(page.locator("html")).to_have_attribute("data-chimes", "1")
        banner = page.get_by_role("alert")
        expect(banner).to_contain_text("Someone is at the door")
        expect(banner.get_by_role("link", name="Watch live")).to_have_attribute(
            "href", payload["url"]
        )
        # Tapping the notification opens the camera's live page in this window.
        _click_notification(page)
        expect(page).to_have_url(f"{home.server.url}{payload['url']}")
        expect(page.locator("#live")).to_be_visible()
        assert console.errors == []
    finally:
        page.context.close()


def test_a_person_push_does_not_chime(browser: Browser, console: ConsoleLog, home: Home) -> None:
    page = _signed_in(browser, console, home)
    try:
        page.evaluate("() => navigator.serviceWorker.ready")
        push = PushDelivery(page, home.server.url)
        clip_page = f"/households/{home.household_id}/events"
        push.deliver(
            ring_payload(
                home.household_id,
                home.device_id,
                kind="person",
                title="A person at Front door",
                url=clip_page,
            )
        )
        [shown] = notifications(page)
        assert shown["title"] == "A person at Front door" and shown["requireInteraction"] is False
        expect(page.locator("html")).not_to_have_attribute("data-chimes", re.compile("."))
        _click_notification(page)
        expect(page).to_have_url(f"{home.server.url}{clip_page}")
    finally:
        page.context.close()


def test_a_notification_never_opens_another_site(
    browser: Browser, console: ConsoleLog, home: Home
) -> None:
    page = _signed_in(browser, console, home)
    try:
        page.goto(f"{home.server.url}/account")
        page.evaluate("() => navigator.serviceWorker.ready")
        push = PushDelivery(page, home.server.url)
        push.deliver(
            ring_payload(home.household_id, home.device_id, url="https://evil.example/phish")
        )
        [shown] = notifications(page)
        assert shown["data"]["url"] == "/"
        _click_notification(page)
        # "/" of this site (which sends a signed-in resident on to the households page).
        expect(page).to_have_url(re.compile(re.escape(home.server.url) + r"/(households)?$"))
    finally:
        page.context.close()


@pytest.mark.parametrize("data", ["not json", '{"v": 2, "title": "from the future"}', "[]"])
def test_a_malformed_push_still_shows_a_plain_notification(
    browser: Browser, console: ConsoleLog, home: Home, data: str
) -> None:
    page = _signed_in(browser, console, home)
    try:
        page.evaluate("() => navigator.serviceWorker.ready")
        PushDelivery(page, home.server.url).deliver(data)
        [shown] = notifications(page)
        assert shown["title"] == "doorwarden" and shown["data"]["url"] == "/"
        expect(page.locator("html")).not_to_have_attribute("data-chimes", re.compile("."))
    finally:
        page.context.close()


def test_staff_pages_carry_no_service_worker(
    browser: Browser, console: ConsoleLog, home: Home
) -> None:
    page = _signed_in(browser, console, home, home.officer)
    try:
        assert page.locator("script[src^='/static/pwa.js']").count() == 0
        assert (
            page.evaluate("() => navigator.serviceWorker.getRegistrations().then((r) => r.length)")
            == 0
        )
    finally:
        page.context.close()


CLICK = """async () => {
  const [notification] = await self.registration.getNotifications();
  self.dispatchEvent(new NotificationEvent("notificationclick", {notification}));
}"""


def _click_notification(page: Page) -> None:
    """What the system does when the person taps the notification: the worker's
    notificationclick (DevTools cannot tap a system notification)."""
    [worker] = page.context.service_workers
    worker.evaluate(CLICK)
