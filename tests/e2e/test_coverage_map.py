"""The public coverage map in chromium: Leaflet draws the shown cells from the JSON API,
signed out, under the strict CSP; with no tile server set the page asks nothing of any
other server, and with one set the tiles come from it alone (and the CSP lets them in).

Cameras are paired through the real API into households at chosen places, each delivers
a clip: two cells of three homes with two cameras each (shown), and one home with one
camera (withheld). The map counts only homes that have stood for their time
(docs/transparency.md): the test ages the rows in the instance's database, and the
server publishes the map every second here (coverage_interval_s), as it would hourly.
Published figures are rounded to fives.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import h3
import httpx
import pytest
from playwright.sync_api import Browser, Page, Request, Route, expect

from doorwarden.crypto.keys import SigningKey, b64d, b64e
from tests.e2e.conftest import (
    DESKTOP,
    MOBILE,
    SCREENSHOTS,
    ConsoleLog,
    Server,
    open_page,
    serving,
)
from tests.sealed_clips import PART, seal_clip

PAGE = "/transparency/coverage"
TILES = "https://tiles.example.test/{z}/{x}/{y}.png"
TILE_ORIGIN = "https://tiles.example.test"
PLACES = {
    # cell centre -> (homes, cameras each)
    h3.cell_to_latlng(h3.latlng_to_cell(51.4545, -2.5879, 7)): (3, 2),  # Bristol: shown
    h3.cell_to_latlng(h3.latlng_to_cell(51.4816, -3.1791, 7)): (3, 2),  # Cardiff: shown
    h3.cell_to_latlng(h3.latlng_to_cell(51.0688, -1.7945, 7)): (1, 1),  # Salisbury: withheld
}
PNG = Path(__file__).parents[2] / "src/doorwarden/web/static/vendor/leaflet/images/layers.png"
# The server publishes the map every second here; hourly by default.
PUBLISH_EVERY = {"DOORWARDEN_COVERAGE_INTERVAL_S": "1"}
# Long before any rule's days: SQLite's own text form of a UTC time, as stored.
LONG_AGO = "2020-01-01 00:00:00.000000"


def _deliver_a_clip(server: Server, paired: dict[str, object], key: SigningKey) -> None:
    """One clip through the camera's upload protocol (tests/sealed_clips.upload, in sync)."""
    recipients = [b64d(r["public_key"], what="key", length=32) for r in paired["recipients"]]  # type: ignore[attr-defined, index]
    sealed = seal_clip(paired["device_id"], key, recipients, 0, size=10_000)
    base = f"{server.url}/api/v1/device/clips/0"
    with httpx.Client(headers={"authorization": f"Bearer {paired['token']}"}, timeout=30) as c:
        assert c.put(base, content=sealed.manifest).status_code in (200, 201)
        total = len(sealed.ciphertext)
        for offset in range(0, total, PART):
            part = sealed.ciphertext[offset : offset + PART]
            sent = c.put(
                f"{base}/data",
                content=part,
                headers={"content-range": f"bytes {offset}-{offset + len(part) - 1}/{total}"},
            )
            assert sent.status_code == 200, sent.text
        assert c.put(f"{base}/thumbnail", content=sealed.thumbnail).status_code == 204
        done = c.post(f"{base}/complete")
        assert done.status_code == 200, done.text


def _age(server: Server) -> None:
    """Every household, camera and first clip as if made long ago, and at its place since:
    homes that count (a test cannot wait the month the rules ask)."""
    db = sqlite3.connect(Path(server.env["DOORWARDEN_DATA_DIR"]) / "doorwarden.db", timeout=30)
    try:
        with db:
            db.execute("UPDATE households SET created_at = ?", (LONG_AGO,))
            db.execute("UPDATE devices SET created_at = ?", (LONG_AGO,))
            db.execute("UPDATE clips SET verified_at = ?", (LONG_AGO,))
            db.execute(
                "INSERT OR REPLACE INTO coverage_places (household_id, latitude, longitude, since)"
                " SELECT id, latitude, longitude, ? FROM households",
                (LONG_AGO,),
            )
    finally:
        db.close()


def _published(server: Server, cells: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        body = httpx.get(f"{server.url}/api/v1/transparency/coverage", timeout=30).json()
        if len(body["features"]) == cells:
            return
        time.sleep(0.5)
    raise AssertionError(f"the map was not published with {cells} cells")


def _populate(server: Server) -> None:
    owner = "coverage-owner@e2e.example"
    server.create_user(owner, "resident")
    api = server.api(owner)
    try:
        for (lat, lng), (homes, cameras) in PLACES.items():
            for n in range(homes):
                # Homes about 30 m apart: distinct households in one cell.
                home = api.post(
                    "/api/v1/households",
                    {"name": f"Home {n}", "latitude": lat + n * 0.0003, "longitude": lng},
                )
                for i in range(cameras):
                    key = SigningKey.generate()
                    code = api.post(f"/api/v1/households/{home['id']}/pairing-codes", {})["code"]
                    paired = httpx.post(
                        f"{server.url}/api/v1/devices/pair",
                        timeout=30,
                        json={
                            "code": code,
                            "name": f"Camera {i}",
                            "public_key": b64e(key.public),
                        },
                    )
                    assert paired.status_code == 201, paired.text
                    _deliver_a_clip(server, paired.json(), key)
    finally:
        api.close()
    _age(server)
    _published(server, 2)


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory, chromium: Path) -> Iterator[Server]:
    """An instance with no tile server set (the default)."""
    with serving(tmp_path_factory.mktemp("coverage-plain"), extra_env=PUBLISH_EVERY) as server:
        _populate(server)
        yield server


@pytest.fixture(scope="module")
def tiled(tmp_path_factory: pytest.TempPathFactory, chromium: Path) -> Iterator[Server]:
    settings = {
        "DOORWARDEN_MAP_TILE_URL": TILES,
        "DOORWARDEN_MAP_TILE_ATTRIBUTION": "© Test Tiles <contributors>",
        **PUBLISH_EVERY,
    }
    with serving(tmp_path_factory.mktemp("coverage-tiled"), extra_env=settings) as server:
        _populate(server)
        yield server


def _expect_totals(page: Page, figures: dict[str, int]) -> None:
    totals = page.locator("#coverage-totals")
    for label, value in figures.items():
        # A row's accessible name is its header and its figure.
        expect(totals.get_by_role("row", name=f"{label} {value}", exact=True)).to_be_visible()


def _map_drawn(page: Page) -> None:
    expect(page.locator("#coverage-map")).to_have_attribute("data-state", "ready")


@pytest.mark.browser
def test_the_map_shows_the_cells_signed_out_with_no_request_leaving_the_site(
    browser: Browser, plain: Server
) -> None:
    console = ConsoleLog()
    page = open_page(browser, console)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    try:
        page.goto(plain.url + PAGE)
        _map_drawn(page)
        cells = page.locator("#coverage-map path.leaflet-interactive")
        expect(cells).to_have_count(2)  # the withheld cell is not drawn
        expect(page.locator("#coverage-status")).to_have_text("2 cells shown.")
        expect(page.locator(".coverage-legend")).to_contain_text("Cameras per cell")
        expect(page.locator(".coverage-legend-row")).to_have_count(5)
        assert page.locator(".leaflet-tile").count() == 0  # a plain background
        cells.first.click()
        expect(page.locator(".leaflet-popup-content")).to_contain_text("5 cameras")  # 6, rounded
        _expect_totals(
            page, {"Cameras counted": 10, "Cells shown": 2, "Cells too small to show": 1}
        )
        expect(page.locator("#no-programmes")).to_be_visible()
        page.wait_for_load_state("networkidle")
    finally:
        page.context.close()
    assert console.errors == []  # every CSP violation would be one
    outside = [u for u in requests if not u.startswith(plain.url + "/")]
    assert outside == []
    assert any(u.startswith(plain.url + "/api/v1/transparency/coverage") for u in requests)


@pytest.mark.browser
def test_the_totals_are_there_without_javascript(browser: Browser, plain: Server) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        page.goto(plain.url + PAGE)
        _expect_totals(page, {"Cameras in the cells shown": 10, "Cameras counted": 10})
        expect(page.locator("#coverage-cells tbody tr")).to_have_count(2)
    finally:
        context.close()


@pytest.mark.browser
def test_tiles_come_from_the_configured_server_only(browser: Browser, tiled: Server) -> None:
    console = ConsoleLog()
    page = open_page(browser, console)
    tile_requests: list[Request] = []
    others: list[str] = []

    def tile(route: Route) -> None:
        tile_requests.append(route.request)
        route.fulfill(status=200, content_type="image/png", body=PNG.read_bytes())

    page.route(re.compile(r"^https://tiles\.example\.test/"), tile)
    page.on(
        "request",
        lambda r: (
            None if r.url.startswith((tiled.url + "/", TILE_ORIGIN + "/")) else others.append(r.url)
        ),
    )
    try:
        page.goto(tiled.url + PAGE)
        _map_drawn(page)
        expect(page.locator("#coverage-map path.leaflet-interactive")).to_have_count(2)
        expect(page.locator(".leaflet-tile-loaded").first).to_be_visible()
        # Plain text, escaped: no element made from the setting.
        expect(page.locator(".leaflet-control-attribution")).to_contain_text(
            "© Test Tiles <contributors>"
        )
        page.wait_for_load_state("networkidle")
    finally:
        page.context.close()
    assert console.errors == []  # the page's own CSP lets these images in
    assert tile_requests
    assert all(
        re.fullmatch(r"https://tiles\.example\.test/\d+/\d+/\d+\.png", r.url) for r in tile_requests
    )
    # Tile servers ask for a Referer: the instance's origin, never the page's path.
    assert {r.headers.get("referer") for r in tile_requests} == {tiled.url + "/"}
    assert others == []


@pytest.mark.browser
@pytest.mark.parametrize(("width_name", "viewport"), [("desktop", DESKTOP), ("mobile", MOBILE)])
def test_screenshots(
    browser: Browser, plain: Server, width_name: str, viewport: dict[str, int]
) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    console = ConsoleLog()
    page = open_page(browser, console, viewport)
    try:
        page.goto(plain.url + PAGE)
        _map_drawn(page)
        page.screenshot(path=str(SCREENSHOTS / f"coverage-{width_name}.png"), full_page=True)
    finally:
        page.context.close()
    assert console.errors == []
