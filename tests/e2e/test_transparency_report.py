"""The transparency report page in chromium, signed out, under the strict CSP: its charts
are inline SVG drawn by the server (no script), each with a text description and a table;
the period form changes the period; the JSON and CSV links carry the same period.

The history is made through the real API on a fresh instance: an agency verified, with a
municipal approval (a real PDF), a home with a paired camera, and three warrants naming
it: one approved, one rejected, one left pending.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from doorwarden.crypto.keys import SigningKey, b64e
from tests.e2e.conftest import DESKTOP, MOBILE, SCREENSHOTS, ConsoleLog, Server, open_page, serving
from tests.pdfs import pdf_bytes

PAGE = "/transparency/report"
LAT, LNG = 39.8, -89.65
AREA = {
    "type": "Polygon",
    "coordinates": [[[-89.8, 39.7], [-89.5, 39.7], [-89.5, 39.9], [-89.8, 39.9], [-89.8, 39.7]]],
}


def _json(response: httpx.Response) -> dict[str, object]:
    assert response.status_code in (200, 201), response.text
    body: dict[str, object] = response.json()
    return body


def _populate(server: Server) -> None:
    admin, reviewer, resident = (
        "admin@report.example",
        "reviewer@report.example",
        "home@report.example",
    )
    server.create_user(admin, "operator_admin")
    server.create_user("second-admin@report.example", "operator_admin")  # records the approval
    server.create_user(reviewer, "legal_reviewer")
    server.create_user(resident, "resident")
    now = datetime.now(UTC)
    as_admin = server.api(admin).client
    agency = _json(
        as_admin.post(
            "/api/v1/agencies",
            json={
                "name": "Springfield Police",
                "jurisdiction": "Springfield",
                "jurisdiction_area": AREA,
            },
        )
    )
    agency_id = str(agency["id"])
    _json(as_admin.post(f"/api/v1/agencies/{agency_id}/verify"))
    approval = {
        "approving_body": "Springfield City Council",
        "approved_on": now.date().isoformat(),
        "reference": "Ordinance 2026-14",
    }
    as_admin.close()
    # Not the operator who verified it (policy rule 8, separation of duties).
    as_second = server.api("second-admin@report.example").client
    _json(
        as_second.post(
            f"/api/v1/agencies/{agency_id}/approvals",
            data={"details": json.dumps(approval)},
            files={"policy_document": ("policy.pdf", pdf_bytes("Use policy"), "application/pdf")},
        )
    )
    as_second.close()
    officer = "officer@report.example"
    server.create_user(officer, "agency_officer", agency_id=agency_id)

    as_resident = server.api(resident).client
    home = _json(
        as_resident.post(
            "/api/v1/households", json={"name": "Evergreen", "latitude": LAT, "longitude": LNG}
        )
    )
    code = _json(as_resident.post(f"/api/v1/households/{home['id']}/pairing-codes", json={}))
    paired = _json(
        httpx.post(
            f"{server.url}/api/v1/devices/pair",
            timeout=30,
            json={
                "code": code["code"],
                "name": "Porch",
                "public_key": b64e(SigningKey.generate().public),
            },
        )
    )
    as_resident.close()

    as_officer = server.api(officer).client
    filed = []
    for n in range(3):
        details = {
            "case_number": f"CR-{n}",
            "issuing_court": "Springfield Circuit Court",
            "judge": "Judge Hibbert",
            "signed_on": now.date().isoformat(),
            "expires_at": (now + timedelta(days=30)).isoformat(),
            "scope": [{"kind": "device", "id": paired["device_id"]}],
            "window_start": (now - timedelta(hours=5)).isoformat(),
            "window_end": (now - timedelta(hours=2)).isoformat(),
            "justification": "A burglary on the street the porch camera faces.",
        }
        filed.append(
            _json(
                as_officer.post(
                    f"/api/v1/agencies/{agency_id}/requests/warrants",
                    data={"details": json.dumps(details)},
                    files={
                        "document": ("warrant.pdf", pdf_bytes(f"Warrant {n}"), "application/pdf")
                    },
                )
            )["id"]
        )
    as_officer.close()
    as_reviewer = server.api(reviewer).client
    _json(
        as_reviewer.post(f"/api/v1/review/requests/{filed[0]}/approve", json={"attest": ["signed"]})
    )
    _json(
        as_reviewer.post(
            f"/api/v1/review/requests/{filed[1]}/reject", json={"reason": "Overbroad."}
        )
    )
    as_reviewer.close()


@pytest.fixture(scope="module")
def reported(tmp_path_factory: pytest.TempPathFactory, chromium: Path) -> Iterator[Server]:
    with serving(tmp_path_factory.mktemp("transparency-report")) as server:
        _populate(server)
        yield server


def _figure(page: Page, key: str) -> str:
    value = page.locator(f'[data-figure="{key}"]').first.get_attribute("data-value")
    assert value is not None
    return value


@pytest.mark.browser
def test_the_charts_are_drawn_signed_out_with_no_script_and_no_outside_request(
    browser: Browser, reported: Server
) -> None:
    console = ConsoleLog()
    page = open_page(browser, console)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    try:
        page.goto(reported.url + PAGE)
        expect(page.get_by_role("heading", name="Transparency report", level=1)).to_be_visible()
        chart = page.locator("#chart-requests svg")
        expect(chart).to_be_visible()
        box = chart.bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 100
        # One segment per outcome the warrants had: approved, rejected, pending.
        bars = page.locator("#chart-requests rect.chart-bar")
        expect(bars).to_have_count(3)
        widths = [bars.nth(i).bounding_box()["width"] for i in range(3)]  # type: ignore[index]
        assert all(w > 20 for w in widths)
        expect(page.locator("#chart-requests .chart-legend li")).to_have_text(
            ["pending", "approved", "rejected"]
        )
        # The picture has a name and a description; the table says the same.
        expect(
            page.get_by_role("img", name="Requests by type and outcome", exact=True)
        ).to_be_visible()
        expect(page.locator("#chart-requests desc")).to_contain_text(
            "Warrants: 3 (1 pending, 1 approved, 1 rejected)"
        )
        assert _figure(page, "requests||warrant|total") == "3"
        assert _figure(page, "requests||warrant|approved") == "1"
        assert _figure(page, "agency_requests|Springfield Police|warrant|rejected") == "1"
        expect(page.locator("#chart-agencies svg")).to_be_visible()
        expect(page.locator("#chart-notices svg")).to_be_visible()
        # The bars take their colours from app.css (the CSP allows no inline style).
        fill = bars.first.evaluate("el => getComputedStyle(el).fill")
        assert fill not in ("", "none", "rgb(0, 0, 0)")
        expect(page.locator("#approvals-table")).to_contain_text("Ordinance 2026-14")
        page.wait_for_load_state("networkidle")
    finally:
        page.context.close()
    assert console.errors == []  # every CSP violation would be one
    assert [u for u in requests if not u.startswith(reported.url + "/")] == []
    scripts = [u for u in requests if ".js" in u]
    assert len(scripts) == 1 and "/static/vendor/htmx.min.js" in scripts[0]  # the site's own


@pytest.mark.browser
def test_the_period_form_and_the_downloads(browser: Browser, reported: Server) -> None:
    console = ConsoleLog()
    page = open_page(browser, console)
    today = datetime.now(UTC).date()
    try:
        page.goto(reported.url + "/transparency/coverage")
        page.get_by_role("link", name="Transparency report").first.click()
        expect(page).to_have_url(reported.url + PAGE)
        expect(page.get_by_label("From", exact=True)).to_have_value(f"{today.year}-01-01")
        expect(page.get_by_label("To", exact=True)).to_have_value(today.isoformat())
        # Last year: nothing happened then.
        last = today.year - 1
        page.get_by_label("From", exact=True).fill(f"{last}-01-01")
        page.get_by_label("To", exact=True).fill(f"{last}-12-31")
        page.get_by_role("button", name="Show").click()
        expect(page).to_have_url(re.compile(rf"\?from={last}-01-01&to={last}-12-31$"))
        expect(page.locator("#summary-heading")).to_have_text(
            f"1 January {last} to 31 December {last}"
        )
        expect(page.get_by_text("No request was submitted in this period.")).to_be_visible()
        assert _figure(page, "requests||all|total") == "0"
        expect(page.locator("#chart-requests")).to_have_count(0)
        # The JSON and CSV links are for the same period.
        json_href = page.locator("#report-json").get_attribute("href")
        csv_href = page.locator("#report-csv").get_attribute("href")
        assert json_href == f"/api/v1/transparency/report?from={last}-01-01&to={last}-12-31"
        assert csv_href == f"/api/v1/transparency/report.csv?from={last}-01-01&to={last}-12-31"
        body = httpx.get(reported.url + json_href, timeout=30).json()
        assert body["period"]["from"] == f"{last}-01-01" and body["requests_total"] == 0
        csv_text = httpx.get(reported.url + csv_href, timeout=30).text
        assert "requests,,all,total,0" in csv_text
        # A period that ends before it starts is refused on the page, with the form kept.
        page.get_by_label("From", exact=True).fill(f"{today.year}-03-01")
        page.get_by_label("To", exact=True).fill(f"{today.year}-02-01")
        page.get_by_role("button", name="Show").click()
        expect(page.get_by_role("alert")).to_contain_text("after its last")
        expect(page.get_by_label("From", exact=True)).to_have_value(f"{today.year}-03-01")
        expect(page.locator("[data-figure]")).to_have_count(0)
        # Back to this year by its link.
        page.get_by_role("link", name="This year to date").click()
        assert _figure(page, "requests||all|total") == "3"
    finally:
        page.context.close()
    assert [e for e in console.errors if "400" not in e] == []  # the refused period is a 400


@pytest.mark.browser
@pytest.mark.parametrize(("width_name", "viewport"), [("desktop", DESKTOP), ("mobile", MOBILE)])
def test_screenshots(
    browser: Browser, reported: Server, width_name: str, viewport: dict[str, int]
) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    console = ConsoleLog()
    page = open_page(browser, console, viewport)
    try:
        page.goto(reported.url + PAGE)
        expect(page.locator("#chart-requests svg")).to_be_visible()
        # Nothing wider than the screen but the tables, which scroll in their own box.
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0
        path = SCREENSHOTS / f"transparency-report-{width_name}.png"
        page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 20_000
    finally:
        page.context.close()
    assert console.errors == []
