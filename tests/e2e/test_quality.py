"""How the pages look and how they work without a mouse: screenshots at two widths with
no console errors (every CSP violation is one), labelled inputs, keyboard-only forms."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import (
    DESKTOP,
    MOBILE,
    PASSWORD,
    SCREENSHOTS,
    ConsoleLog,
    Seed,
    Server,
    open_page,
)
from tests.e2e.helpers import sign_in

MIN_SCREENSHOT_BYTES = 8_000  # a blank or unstyled page compresses far below this


def _shoot(page: Page, name: str) -> None:
    expect(page.locator("h1")).to_have_count(1)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > MIN_SCREENSHOT_BYTES, f"{path} looks empty"


@pytest.mark.browser
@pytest.mark.parametrize(("width_name", "viewport"), [("desktop", DESKTOP), ("mobile", MOBILE)])
def test_screenshots_without_console_errors(
    browser: Browser, server: Server, seed: Seed, width_name: str, viewport: dict[str, int]
) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    console = ConsoleLog()
    page = open_page(browser, console, viewport)
    try:
        page.goto(f"{server.url}/login")
        _shoot(page, f"login-{width_name}")
        sign_in(page, server.url, seed.resident)
        expect(page).to_have_url(f"{server.url}/households")
        _shoot(page, f"households-{width_name}")
        page.goto(f"{server.url}/account")
        _shoot(page, f"account-{width_name}")
        # htmx loaded and initialised (it would have logged a CSP error otherwise).
        assert page.evaluate("typeof window.htmx") == "object"
    finally:
        page.context.close()
    assert console.errors == []


def _unlabelled_inputs(page: Page) -> list[str]:
    script = """() => Array.from(document.querySelectorAll('input, select, textarea'))
        .filter(el => el.type !== 'hidden' && el.labels.length === 0)
        .map(el => el.name || el.id || el.outerHTML)"""
    result: list[str] = page.evaluate(script)
    return result


def _active_id(page: Page) -> str:
    result: str = page.evaluate("() => document.activeElement.id")
    return result


@pytest.mark.browser
def test_login_labelled_and_submitted_by_keyboard(page: Page, server: Server, seed: Seed) -> None:
    page.goto(f"{server.url}/login")
    assert _unlabelled_inputs(page) == []
    assert _active_id(page) == "email"  # autofocus: the first thing to type into
    page.keyboard.type(seed.resident)
    page.keyboard.press("Tab")
    assert _active_id(page) == "password"
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{server.url}/households")


@pytest.mark.browser
def test_signup_labelled_and_submitted_by_keyboard(page: Page, server: Server) -> None:
    page.goto(f"{server.url}/signup")
    assert _unlabelled_inputs(page) == []
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to main content")).to_be_focused()
    page.keyboard.press("Enter")  # the skip link moves focus to <main>
    page.keyboard.press("Tab")
    assert _active_id(page) == "email"
    page.keyboard.type("keyboard-user@e2e.example")
    for field_id, text in (("display_name", "Keys Only"), ("password", PASSWORD)):
        page.keyboard.press("Tab")
        assert _active_id(page) == field_id
        page.keyboard.type(text)
    page.keyboard.press("Tab")
    assert _active_id(page) == "invite_code"
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/login\?done=created$"))


@pytest.mark.browser
def test_account_and_household_pages_labelled(page: Page, server: Server, seed: Seed) -> None:
    sign_in(page, server.url, seed.resident)
    for path in ("/households", f"/households/{seed.household_id}", "/account"):
        page.goto(f"{server.url}{path}")
        assert _unlabelled_inputs(page) == [], path
