"""The account page's "Notifications on your devices" in chromium: the member's push
subscriptions listed from the real API, one revoked with its button, and this browser
subscribed through PushManager with the instance's VAPID key."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import ConsoleLog, Server, open_page, serving
from tests.e2e.helpers import sign_in

API = "/api/v1/account/push-subscriptions"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, chromium: Path) -> Iterator[Server]:
    with serving(tmp_path_factory.mktemp("push-e2e")) as instance:
        yield instance


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _phone(label: str, n: int) -> dict[str, Any]:
    """A subscription as another browser's PushSubscription.toJSON() gives it."""
    point = ec.generate_private_key(ec.SECP256R1()).public_key()
    p256dh = point.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    return {
        "endpoint": f"https://push.example.net/wpush/v2/{n}-{_b64(p256dh[:12])}",
        "keys": {"p256dh": _b64(p256dh), "auth": _b64(bytes(range(16)))},
        "label": label,
    }


def _account(browser: Browser, console: ConsoleLog, server: Server, email: str) -> Page:
    page = open_page(browser, console)
    page.context.grant_permissions(["notifications"], origin=server.url)
    sign_in(page, server.url, email, next_path="/account")
    expect(page).to_have_url(re.compile(r"/account$"))
    return page


def test_devices_are_listed_and_one_is_revoked(
    browser: Browser, console: ConsoleLog, server: Server, new_resident: Any
) -> None:
    email = new_resident()
    api = server.api(email)
    phone = api.post(API, _phone("Alice's phone", 1))
    api.post(API, _phone("Kitchen tablet", 2))
    page = _account(browser, console, server, email)
    try:
        section = page.locator("#push")
        rows = section.locator("tbody tr")
        expect(rows).to_have_count(2)
        expect(section.get_by_role("row", name=re.compile("Alice's phone"))).to_contain_text(
            "push.example.net"
        )
        section.get_by_role("button", name="Revoke notifications to Alice's phone").click()
        expect(rows).to_have_count(1)
        expect(section.get_by_role("rowheader")).to_have_text("Kitchen tablet")
        left = api.client.get(API).json()
        assert [s["label"] for s in left] == ["Kitchen tablet"]
        assert phone["id"] not in {s["id"] for s in left}
        assert console.errors == []
    finally:
        page.context.close()
        api.close()


def test_a_member_with_no_devices_is_told_so(
    browser: Browser, console: ConsoleLog, server: Server, new_resident: Any
) -> None:
    page = _account(browser, console, server, new_resident())
    try:
        section = page.locator("#push")
        expect(section.get_by_text("No devices get your notifications yet.")).to_be_visible()
        expect(section.get_by_role("status")).to_have_text(
            "This browser does not get notifications yet."
        )
        expect(
            section.get_by_role("button", name="Turn on notifications in this browser")
        ).to_be_visible()
    finally:
        page.context.close()


def test_a_browser_that_cannot_subscribe_says_why_and_sends_nothing(
    browser: Browser, console: ConsoleLog, server: Server, new_resident: Any
) -> None:
    """A test's browser context is off the record, where chromium refuses push (as it does
    in any incognito window); a real profile needs its vendor's push service, which a test
    machine cannot reach. What the page does with a refusal is what can be checked here:
    it says so, and registers nothing with the server."""
    email = new_resident()
    page = _account(browser, console, server, email)
    try:
        section = page.locator("#push")
        section.get_by_label("Name for this device").fill("Test browser")
        section.get_by_role("button", name="Turn on notifications in this browser").click()
        expect(section).to_have_attribute("data-state", "error")
        expect(section.get_by_role("status")).to_have_text(
            re.compile(r"^Could not turn notifications on: .+")
        )
        expect(
            section.get_by_role("button", name="Turn on notifications in this browser")
        ).to_be_enabled()
        api = server.api(email)
        assert api.client.get(API).json() == []
        api.close()
    finally:
        page.context.close()
