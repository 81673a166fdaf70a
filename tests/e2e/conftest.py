"""Browser tests: a real `doorwarden serve` process on a fresh SQLite database, driven by
Debian's chromium through Playwright (sync API: these tests are plain functions).

The server runs in a subprocess, as in production, so the pages are tested with the real
middleware, CSP header, cookies and uvicorn; accounts are made the way an operator would
(the CLI) or a script would (the JSON API).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.factories import CHEAP_PASSWORDS_ENV
from tests.live_server import free_port

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "e2e-" + secrets.token_urlsafe(12)  # fresh per run; never a real secret
SCREENSHOTS = Path(__file__).parent / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
MOBILE = {"width": 390, "height": 844}
STARTUP_SECONDS = 30


@dataclass
class Server:
    url: str
    env: dict[str, str]
    log_path: Path

    def cli(self, *args: str, extra_env: dict[str, str] | None = None) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "doorwarden", *args],
            env={**self.env, **(extra_env or {})},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, f"doorwarden {' '.join(args)} failed:\n{result.stderr}"
        return result.stdout

    def create_user(self, email: str, role: str, *, agency_id: str | None = None) -> None:
        args = [
            "admin",
            "create-user",
            "--email",
            email,
            "--role",
            role,
            "--password-env",
            "E2E_PASSWORD",
        ]
        if agency_id:
            args += ["--agency-id", agency_id]
        self.cli(*args, extra_env={"E2E_PASSWORD": PASSWORD})

    def api(self, email: str) -> ApiClient:
        """An API client signed in as `email` (session cookie plus its CSRF token)."""
        client = httpx.Client(base_url=self.url, timeout=30)
        response = client.post("/api/v1/session", json={"email": email, "password": PASSWORD})
        assert response.status_code == 200, response.text
        client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
        return ApiClient(client)


@dataclass
class ApiClient:
    client: httpx.Client

    def post(self, path: str, body: dict[str, object]) -> dict[str, object]:
        response = self.client.post(path, json=body)
        assert response.status_code in (200, 201), response.text
        data: dict[str, object] = response.json()
        return data

    def close(self) -> None:
        self.client.close()


@dataclass
class Seed:
    """Accounts and resources every browser test may use."""

    admin: str
    resident: str
    household_id: str
    officer: str
    agency_id: str
    agency_name: str


@dataclass
class ConsoleLog:
    errors: list[str] = field(default_factory=list)


def _server_env(data_dir: Path, port: int) -> dict[str, str]:
    # The developer's own DOORWARDEN_* settings must not leak into the test instance.
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOORWARDEN_")}
    env.update(
        {
            "DOORWARDEN_SECRET_KEY": secrets.token_urlsafe(36),  # 48 characters
            "DOORWARDEN_DATA_DIR": str(data_dir),
            "DOORWARDEN_DATABASE_URL": f"sqlite+aiosqlite:///{data_dir / 'doorwarden.db'}",
            "DOORWARDEN_SIGNUP_MODE": "open",
            "DOORWARDEN_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            "DOORWARDEN_BIND_HOST": "127.0.0.1",
            **CHEAP_PASSWORDS_ENV,
        }
    )
    return env


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"doorwarden serve exited ({process.returncode}):\n{log_path.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(
        f"doorwarden serve did not answer /healthz in {STARTUP_SECONDS} s:\n{log_path.read_text()}"
    )


@pytest.fixture(scope="session")
def chromium() -> Path:
    if not CHROMIUM.exists():
        reason = "chromium not installed: apt-get install chromium"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI must run the browser tests)")
        print(reason)  # noqa: T201 - say why in the -s output too, not only in the skip summary
        pytest.skip(reason)
    return CHROMIUM


@contextlib.contextmanager
def serving(data_dir: Path, *, extra_env: dict[str, str] | None = None) -> Iterator[Server]:
    """`doorwarden serve` in a subprocess on a fresh database in `data_dir`."""
    port = free_port()
    env = {**_server_env(data_dir, port), **(extra_env or {})}
    url = f"http://127.0.0.1:{port}"
    log_path = data_dir / "server.log"
    instance = Server(url=url, env=env, log_path=log_path)
    instance.cli("db", "upgrade")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "doorwarden", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_healthy(url, process, log_path)
            yield instance
        finally:
            stop(process, timeout_s=10)


def stop(process: subprocess.Popen[bytes], *, timeout_s: float) -> None:
    """SIGTERM, as a service manager stops it; SIGKILL if it does not exit in time."""
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, chromium: Path) -> Iterator[Server]:
    with serving(tmp_path_factory.mktemp("doorwarden-e2e")) as instance:
        yield instance


@pytest.fixture(scope="session")
def seed(server: Server) -> Seed:
    admin, resident = "admin@e2e.example", "resident@e2e.example"
    officer, agency_name = "officer@e2e.example", "Springfield Police"
    server.create_user(admin, "operator_admin")
    server.create_user(resident, "resident")
    as_admin = server.api(admin)
    agency = as_admin.post("/api/v1/agencies", {"name": agency_name, "jurisdiction": "Springfield"})
    as_admin.close()
    server.create_user(officer, "agency_officer", agency_id=str(agency["id"]))
    as_resident = server.api(resident)
    household = as_resident.post(
        "/api/v1/households", {"name": "Evergreen Terrace", "time_zone": "America/Chicago"}
    )
    as_resident.close()
    return Seed(
        admin=admin,
        resident=resident,
        household_id=str(household["id"]),
        officer=officer,
        agency_id=str(agency["id"]),
        agency_name=agency_name,
    )


@pytest.fixture
def new_resident(server: Server) -> Callable[[], str]:
    """A fresh resident account (signed up through the API), so tests do not share
    second-factor or throttle state."""

    def make() -> str:
        email = f"resident-{secrets.token_hex(4)}@e2e.example"
        response = httpx.post(
            f"{server.url}/api/v1/accounts",
            timeout=30,
            json={"email": email, "display_name": "Test Resident", "password": PASSWORD},
        )
        assert response.status_code == 201, response.text
        return email

    return make


# Package scope, not session: while Playwright's sync API is open its event loop counts as
# running in this thread, and the async tests that follow (functional/, unit/) could not
# start theirs. Leaving tests/e2e closes it.
@pytest.fixture(scope="package")
def browser(chromium: Path) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


def open_page(
    browser: Browser, console: ConsoleLog, viewport: dict[str, int] | None = None
) -> Page:
    """A fresh browser context (no cookies) and page that records console errors, which
    include every CSP violation."""
    context = browser.new_context(viewport=viewport or DESKTOP)  # type: ignore[arg-type]
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.on("console", lambda msg: console.errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: console.errors.append(f"page error: {exc}"))
    return page


@pytest.fixture
def console() -> ConsoleLog:
    return ConsoleLog()


@pytest.fixture
def page(browser: Browser, console: ConsoleLog) -> Iterator[Page]:
    page = open_page(browser, console)
    try:
        yield page
    finally:
        page.context.close()
