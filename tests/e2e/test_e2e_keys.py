"""Member keys in chromium: made in the page and kept non-extractable in IndexedDB, backed
up under a passphrase (Argon2id) or a passkey's PRF output (Chromium's virtual
authenticator), unlocked on another browser, handed to a second device by code, and a
stale device's approval after its member was removed, refused.

WebAuthn needs a domain as its relying party (an IP address is refused), so these tests
run their own server whose public address is http://localhost:PORT.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from doorwarden.crypto import member_backup
from doorwarden.crypto.keys import RecipientKey, b64e, key_id
from tests.e2e.conftest import (
    PASSWORD,
    ConsoleLog,
    Server,
    _server_env,
    _wait_healthy,
    open_page,
    stop,
)
from tests.e2e.helpers import sign_in
from tests.live_server import free_port

pytestmark = pytest.mark.browser
PASSPHRASE = "staple battery horse correct"
KEYRING = "/account/keyring"


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory, chromium: Path) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("doorwarden-keys")
    port = free_port()
    url = f"http://localhost:{port}"
    env = {**_server_env(data_dir, port), "DOORWARDEN_PUBLIC_BASE_URL": url}
    server = Server(url=url, env=env, log_path=data_dir / "server.log")
    server.cli("db", "upgrade")
    with server.log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "doorwarden", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_healthy(url, process, server.log_path)
            yield server
        finally:
            stop(process, timeout_s=10)


def _resident(server: Server, *, household: bool = True) -> str:
    email = f"keys-{secrets.token_hex(4)}@e2e.example"
    made = httpx.post(
        f"{server.url}/api/v1/accounts",
        timeout=30,
        json={"email": email, "display_name": "Key Holder", "password": PASSWORD},
    )
    assert made.status_code == 201, made.text
    if household:
        api = server.api(email)
        api.post("/api/v1/households", {"name": "Keys Home", "time_zone": "Europe/London"})
        api.close()
    return email


def _keyring(browser: Browser, server: Server, email: str, console: ConsoleLog) -> Page:
    page = open_page(browser, console)
    sign_in(page, server.url, email)
    expect(page).not_to_have_url(re.compile(r"/login"))
    page.goto(f"{server.url}{KEYRING}")
    return page


def _state(page: Page, state: str) -> None:
    expect(page.locator("#keyring")).to_have_attribute("data-state", state, timeout=60_000)


def _create(page: Page) -> str:
    _state(page, "create")
    page.get_by_role("button", name="Create my key").click()
    _state(page, "ready")
    key_id = page.locator("#ready-key-id").text_content() or ""
    assert re.fullmatch(r"[0-9a-f]{32}", key_id), key_id
    return key_id


def _stored_keys(page: Page) -> list[dict[str, Any]]:
    """What IndexedDB holds for this user: the stored CryptoKey's own properties."""
    return page.evaluate(  # type: ignore[no-any-return]
        """() => new Promise((resolve, reject) => {
          const open = indexedDB.open("doorwarden-e2e");
          open.onerror = () => reject(open.error);
          open.onsuccess = () => {
            const get = open.result.transaction("members").objectStore("members").getAll();
            get.onsuccess = () => resolve(get.result
              .filter((r) => r.userId === document.body.dataset.userId)
              .map((r) => ({
                keyId: r.keyId, current: r.current,
                type: r.private && r.private.type,
                algorithm: r.private && r.private.algorithm.name,
                extractable: r.private && r.private.extractable,
              })));
            get.onerror = () => reject(get.error);
          };
        })"""
    )


def _no_csp_errors(console: ConsoleLog) -> None:
    assert not [e for e in console.errors if "Content Security Policy" in e], console.errors


def test_a_key_made_in_the_page_unlocks_elsewhere_with_its_passphrase_only(
    browser: Browser, local: Server, console: ConsoleLog
) -> None:
    email = _resident(local)
    first = _keyring(browser, local, email, console)
    key_id_shown = _create(first)
    (stored,) = _stored_keys(first)
    assert stored == {
        "keyId": key_id_shown,
        "current": True,
        "type": "private",
        "algorithm": "X25519",
        "extractable": False,
    }
    first.locator("#backup-passphrase").fill(PASSPHRASE)
    first.locator("#backup-passphrase-again").fill(PASSPHRASE)
    first.get_by_role("button", name="Back up with this passphrase").click()
    expect(first.locator("#keyring-status")).to_contain_text(
        "Backed up with your passphrase", timeout=120_000
    )
    # The page records how long Argon2id took (docs/e2e.md quotes the figure; no limit here).
    assert int(first.locator("#keyring").get_attribute("data-kdf-ms") or "-1") >= 0

    # The page's record opens in Python (crypto/member_backup.py), the demo seed's twin.
    user_id = first.locator("body").get_attribute("data-user-id") or ""
    api = local.api(email)
    record = api.post("/api/v1/account/keyring/backups/passphrase/fetch", {})
    api.close()
    raw = member_backup.open_passphrase_backup(record, user_id=user_id, passphrase=PASSPHRASE)
    assert key_id(RecipientKey.from_bytes(raw).public) == key_id_shown

    second = _keyring(browser, local, email, console)
    _state(second, "unlock")
    second.locator("#unlock-passphrase").fill(PASSPHRASE + "!")
    second.get_by_role("button", name="Unlock with my passphrase").click()
    expect(second.locator("#keyring-error")).to_have_text("Wrong passphrase.", timeout=120_000)
    assert second.locator("#keyring").get_attribute("data-state") == "unlock"
    second.locator("#unlock-passphrase").fill(PASSPHRASE)
    second.get_by_role("button", name="Unlock with my passphrase").click()
    _state(second, "ready")
    expect(second.locator("#ready-key-id")).to_have_text(key_id_shown)
    assert [k["extractable"] for k in _stored_keys(second)] == [False]
    _no_csp_errors(console)
    for page in (first, second):
        page.context.close()


def test_a_passkey_with_prf_backs_up_and_unlocks_the_key(
    browser: Browser, local: Server, console: ConsoleLog
) -> None:
    email = _resident(local)
    page = _keyring(browser, local, email, console)
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "hasPrf": True,
            }
        },
    )
    key_id = _create(page)
    page.get_by_role("button", name="Back up with a passkey").click()
    expect(page.locator("#keyring-status")).to_have_text("Backed up with your passkey.")
    # This browser forgets the key (as a new device would not have it).
    page.evaluate(
        """async () => {
          const keystore = await import("/static/e2e/keystore.js");
          await keystore.forget(document.body.dataset.userId);
        }"""
    )
    assert _stored_keys(page) == []
    page.reload()
    _state(page, "unlock")
    page.get_by_role("button", name="Unlock with my passkey").click()
    _state(page, "ready")
    expect(page.locator("#ready-key-id")).to_have_text(key_id)
    assert [k["extractable"] for k in _stored_keys(page)] == [False]
    _no_csp_errors(console)
    page.context.close()


def _show_code(page: Page) -> str:
    _state(page, "unlock")
    page.get_by_role("button", name="Show a code").click()
    code = page.locator("#device-code")
    expect(code).to_have_text(re.compile(r"^\d{4} \d{4} \d{4}$"))
    return code.text_content() or ""


def test_a_second_device_is_added_by_code_and_gets_the_earlier_keys(
    browser: Browser, local: Server, console: ConsoleLog
) -> None:
    email = _resident(local)
    first = _keyring(browser, local, email, console)
    old_id = _create(first)
    first.get_by_role("button", name="Replace my key").click()
    expect(first.locator("#keyring-status")).to_contain_text("Your key was replaced")
    new_id = first.locator("#ready-key-id").text_content()
    assert new_id != old_id
    assert {(k["keyId"], k["current"]) for k in _stored_keys(first)} == {
        (old_id, False),
        (new_id, True),
    }

    second = _keyring(browser, local, email, console)
    code = _show_code(second)
    wrong = "0000 0000 0000" if code != "0000 0000 0000" else "1111 1111 1111"
    first.locator("#approve-code").fill(wrong)
    first.get_by_role("button", name="Approve").click()
    expect(first.locator("#keyring-error")).to_contain_text("No waiting device shows this code")
    first.locator("#approve-code").fill(code)
    first.get_by_role("button", name="Approve").click()
    expect(first.locator("#keyring-status")).to_have_text(
        "Approved: the other device now has your key."
    )
    _state(second, "ready")
    expect(second.locator("#ready-key-id")).to_have_text(new_id or "")
    stored = _stored_keys(second)
    assert {(k["keyId"], k["current"]) for k in stored} == {(old_id, False), (new_id, True)}
    assert all(k["extractable"] is False for k in stored)
    _no_csp_errors(console)
    for page in (first, second):
        page.context.close()


def test_a_stale_device_approving_after_removal_is_refused(
    browser: Browser, local: Server, console: ConsoleLog
) -> None:
    owner = _resident(local)
    member = _resident(local, household=False)
    as_owner = local.api(owner)
    home = as_owner.client.get("/api/v1/households").json()[0]["id"]
    as_owner.post(f"/api/v1/households/{home}/members", {"email": member})
    stale = _keyring(browser, local, member, console)  # the device that will be stale
    _create(stale)
    newcomer = _keyring(browser, local, member, console)
    code = _show_code(newcomer)
    members = as_owner.client.get(f"/api/v1/households/{home}/members").json()
    member_id = next(m["user_id"] for m in members if m["email"] == member)
    removed = as_owner.client.delete(f"/api/v1/households/{home}/members/{member_id}")
    assert removed.status_code == 204, removed.text
    as_owner.close()
    stale.locator("#approve-code").fill(code)
    stale.get_by_role("button", name="Approve").click()
    expect(stale.locator("#keyring-error")).to_contain_text("no longer a member of any household")
    assert newcomer.locator("#keyring").get_attribute("data-state") == "unlock"
    _no_csp_errors(console)
    for page in (stale, newcomer):
        page.context.close()


def test_a_backup_made_in_python_unlocks_in_the_page(
    browser: Browser, local: Server, console: ConsoleLog
) -> None:
    """The demo's path: a key and its passphrase backup made by crypto/member_backup.py."""
    email = _resident(local)
    key = RecipientKey.generate()
    api = local.api(email)
    put = api.client.put("/api/v1/account/e2e-key", json={"public_key": b64e(key.public)})
    assert put.status_code == 200, put.text
    page = _keyring(browser, local, email, console)
    user_id = page.locator("body").get_attribute("data-user-id") or ""
    record = member_backup.passphrase_backup(
        key.private_bytes(), user_id=user_id, passphrase=PASSPHRASE, m_kib=19 * 1024, t=2, p=1
    )
    stored = api.client.put("/api/v1/account/keyring/backups/passphrase", json=record)
    assert stored.status_code == 200, stored.text
    api.close()
    page.reload()
    _state(page, "unlock")
    page.locator("#unlock-passphrase").fill(PASSPHRASE)
    page.get_by_role("button", name="Unlock with my passphrase").click()
    _state(page, "ready")
    expect(page.locator("#ready-key-id")).to_have_text(key_id(key.public))
    _no_csp_errors(console)
    page.context.close()
