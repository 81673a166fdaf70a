"""Steps shared by the browser tests, written the way a person uses the pages."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.e2e.conftest import PASSWORD


def sign_in(
    page: Page, base_url: str, email: str, password: str = PASSWORD, *, next_path: str = ""
) -> None:
    page.goto(f"{base_url}/login" + (f"?next={next_path}" if next_path else ""))
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login\?done=signed-out$"))
    expect(page.get_by_role("status")).to_contain_text("signed out")
