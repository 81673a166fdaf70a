"""The legal process end to end in chromium, every step through the pages: an operator
verifies an agency and records its municipal approval (uploading the use policy), an
officer files a warrant (a PDF) naming two homes' addresses, a legal reviewer narrows it
to one camera with a reason, the officer downloads the package, and each resident reads
what left about their home: the kept one exactly its disclosed clips, the other nothing.

Clips are real sealed clips uploaded through the camera API, as an agent sends them.
"""

from __future__ import annotations

import json
import re
import secrets
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from doorwarden.crypto.manifest import GENESIS
from doorwarden.formats.checkpoint import NoteKey
from doorwarden.verify.package import PackageOptions, verify_package
from tests.e2e.conftest import MOBILE, SCREENSHOTS, ConsoleLog, Server, open_page
from tests.e2e.helpers import sign_in
from tests.e2e.test_clip_player import pair, upload
from tests.pdfs import pdf_bytes
from tests.sealed_clips import seal_clip

MIN_SCREENSHOT_BYTES = 8_000
# Springfield, around (39.80, -89.65): the agency's jurisdiction, with both homes inside.
JURISDICTION = {
    "type": "Polygon",
    "coordinates": [
        [[-89.75, 39.70], [-89.55, 39.70], [-89.55, 39.90], [-89.75, 39.90], [-89.75, 39.70]]
    ],
}


@dataclass
class Resident:
    email: str
    household_id: str
    device_id: str
    clip_ids: list[str]


@dataclass
class World:
    admin: str
    agency_id: str
    agency_name: str
    officer: str
    reviewer: str
    elm: Resident
    oak: Resident
    start: datetime  # the clips were recorded after this, within three hours


UNLABELLED = """() => Array.from(document.querySelectorAll('input, select, textarea'))
    .filter(el => el.type !== 'hidden' && el.labels.length === 0)
    .map(el => el.name || el.id || el.outerHTML)"""


def shoot(page: Page, name: str) -> None:
    """A full-page screenshot that is not blank, of a page whose every field is labelled."""
    expect(page.locator("h1")).to_have_count(1)
    assert page.evaluate(UNLABELLED) == [], name
    SCREENSHOTS.mkdir(exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > MIN_SCREENSHOT_BYTES, f"{path} looks empty"


def minute(moment: datetime) -> str:
    """As a datetime-local input takes it (the forms read it as UTC)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


def resident_with_clips(
    server: Server, email: str, address: str, latitude: float, start: datetime
) -> Resident:
    """A household at `address` with one camera that uploaded two sealed clips."""
    api = server.api(email)
    try:
        household = api.post(
            "/api/v1/households",
            {
                "name": f"Home at {address}",
                "address": address,
                "latitude": latitude,
                "longitude": -89.65,
                "time_zone": "UTC",
            },
        )
        code = api.post(f"/api/v1/households/{household['id']}/pairing-codes", {})["code"]
    finally:
        api.close()
    clip_ids = []
    with httpx.Client(base_url=server.url, timeout=30) as client:
        camera = pair(client, str(code), "Porch")
        previous = GENESIS
        for sequence, minutes in enumerate((30, 90)):
            begins = (start + timedelta(minutes=minutes)).isoformat(timespec="milliseconds")
            sealed = seal_clip(
                camera.id,
                camera.key,
                camera.recipients,
                sequence,
                previous,
                size=30_000,
                start=begins,
            )
            clip_ids.append(upload(camera, sealed))
            previous = sealed.digest
    return Resident(email, str(household["id"]), camera.id, clip_ids)


def resident_account(server: Server, stem: str) -> str:
    email = f"{stem}-{secrets.token_hex(4)}@e2e.example"
    server.create_user(email, "resident")
    return email


@pytest.fixture(scope="module")
def world(server: Server) -> World:
    tag = secrets.token_hex(3)
    admin = f"journey-admin-{tag}@e2e.example"
    officer, reviewer = f"journey-officer-{tag}@e2e.example", f"journey-reviewer-{tag}@e2e.example"
    server.create_user(admin, "operator_admin")
    as_admin = server.api(admin)
    name = f"Springfield Police {tag}"
    agency = as_admin.post(
        "/api/v1/agencies",
        {"name": name, "jurisdiction": "City of Springfield", "jurisdiction_area": JURISDICTION},
    )
    as_admin.close()
    server.create_user(officer, "agency_officer", agency_id=str(agency["id"]))
    server.create_user(reviewer, "legal_reviewer")
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=4)
    elm = resident_with_clips(
        server, resident_account(server, "elm"), "12 Elm Street", 39.80, start
    )
    oak = resident_with_clips(server, resident_account(server, "oak"), "3 Oak Road", 39.81, start)
    return World(admin, str(agency["id"]), name, officer, reviewer, elm, oak, start)


def operator_verifies_and_records_the_approval(
    page: Page, server: Server, world: World, tmp: Path
) -> None:
    sign_in(page, server.url, world.admin)
    page.goto(f"{server.url}/agencies/{world.agency_id}")
    expect(page.locator("#standing")).to_contain_text("Not verified by an operator yet")
    page.get_by_role("button", name="Verify this agency").click()
    expect(page.get_by_role("status").first).to_contain_text("Agency verified")
    expect(page.locator("#standing")).to_contain_text("No municipal approval in force")
    # The operator who verified may not also record the approval (policy rule 8): the
    # page offers them no form, and a second operator records it.
    expect(page.locator("#record-approval")).to_have_count(0)
    second = f"journey-second-admin-{secrets.token_hex(3)}@e2e.example"
    server.create_user(second, "operator_admin")
    api = server.api(second)
    try:
        recorded = api.client.post(
            f"/api/v1/agencies/{world.agency_id}/approvals",
            data={
                "details": json.dumps(
                    {
                        "approving_body": "Springfield City Council",
                        "approved_on": datetime.now(UTC).date().isoformat(),
                        "reference": "Ordinance 2026-14",
                    }
                )
            },
            files={
                "policy_document": (
                    "use-policy.pdf",
                    pdf_bytes(f"Surveillance use policy {world.agency_id}"),
                    "application/pdf",
                )
            },
        )
        assert recorded.status_code == 201, recorded.text
    finally:
        api.close()
    page.reload()
    expect(page.locator("#standing")).to_contain_text("in good standing")
    expect(page.locator("#approval-list")).to_contain_text("Ordinance 2026-14")
    expect(page.locator("#jurisdiction-area-map")).to_have_attribute("data-state", "ready")
    shoot(page, "agency-admin-desktop")
    page.goto(f"{server.url}/policy")
    shoot(page, "instance-policy-desktop")


def officer_files_the_warrant(page: Page, server: Server, world: World, tmp: Path) -> str:
    sign_in(page, server.url, world.officer)
    expect(page).to_have_url(f"{server.url}/agencies/{world.agency_id}")
    page.get_by_role("link", name="File a warrant").click()
    warrant = tmp / "warrant.pdf"
    warrant.write_bytes(pdf_bytes(f"Search warrant {world.agency_id}"))
    now = datetime.now(UTC)
    page.get_by_label("Case number").fill("CR-2026-0042")
    page.get_by_label("The signed warrant (PDF)").set_input_files(str(warrant))
    page.get_by_label("Issuing court").fill("Sangamon County Circuit Court")
    page.get_by_label("Judge").fill("Judge Able")
    page.get_by_label("Signed on").fill(now.date().isoformat())
    page.get_by_label("Expires (UTC)").fill(minute(now + timedelta(days=30)))
    page.get_by_label("Window start (UTC)").fill(minute(world.start))
    page.get_by_label("Window end (UTC)").fill(minute(world.start + timedelta(hours=3)))
    page.get_by_label("Addresses, one per line").fill("12 Elm Street\n3 Oak Road")
    shoot(page, "warrant-form-desktop")
    page.get_by_role("button", name="File the request").click()
    expect(page.get_by_role("status").first).to_contain_text("Request filed")
    expect(page.locator("#request-status")).to_have_text("submitted")
    expect(page.locator("#scope-list")).to_contain_text("Address: 12 Elm Street")
    # The officer is never told what the addresses resolved to.
    for secret in (world.elm.household_id, world.oak.household_id, world.elm.device_id):
        expect(page.locator("main")).not_to_contain_text(secret)
    match = re.search(r"/requests/([0-9a-f-]{36})", page.url)
    assert match is not None
    return match.group(1)


def reviewer_narrows_it(page: Page, server: Server, world: World, request_id: str) -> None:
    sign_in(page, server.url, world.reviewer)
    expect(page).to_have_url(f"{server.url}/review")
    shoot(page, "review-queue-desktop")
    page.get_by_role("link", name="CR-2026-0042").click()
    expect(page).to_have_url(f"{server.url}/review/{request_id}")
    page.get_by_role("button", name="Start review").click()
    expect(page.get_by_role("status").first).to_contain_text("taken this request for review")
    expect(page.locator("#targets tbody tr")).to_have_count(2)
    expect(page.locator("#checklist")).to_contain_text("in jurisdiction")
    narrow = page.locator("#narrow")
    narrow.get_by_label(re.compile(f"Camera {world.elm.device_id}")).check()
    narrow.get_by_label(re.compile("I have read the document")).check()
    narrow.get_by_label("Reason for narrowing").fill(
        "Only 12 Elm Street is tied to the burglary in the affidavit."
    )
    shoot(page, "review-request-desktop")
    narrow.get_by_role("button", name="Approve as narrowed").click()
    expect(page.get_by_role("status").first).to_contain_text("Approved as narrowed.")
    expect(page.locator("#request-status")).to_have_text("narrowed")


def officer_downloads_the_package(
    page: Page, server: Server, world: World, request_id: str, tmp: Path
) -> None:
    sign_in(page, server.url, world.officer)
    page.goto(f"{server.url}/agencies/{world.agency_id}/requests/{request_id}")
    expect(page.locator("#request-status")).to_have_text("narrowed")
    expect(page.locator("#decision-reason")).to_contain_text("Only 12 Elm Street")
    shoot(page, "request-officer-desktop")
    with page.expect_download() as arrived:
        page.get_by_role("link", name=re.compile("Download package")).click()
    saved = tmp / "package.zip"
    arrived.value.save_as(saved)
    with zipfile.ZipFile(saved) as archive:
        manifest = json.loads(archive.read("package.json"))
        clip_files = sorted(n for n in archive.namelist() if n.startswith("clips/"))
    assert manifest["request"] == request_id
    assert manifest["case_number"] == "CR-2026-0042"
    assert sorted(c["id"] for c in manifest["clips"]) == sorted(world.elm.clip_ids)
    assert {c["device"] for c in manifest["clips"]} == {world.elm.device_id}
    # Offline, as the agency's verifier checks it, against the key the instance publishes.
    published = httpx.get(f"{server.url}/api/v1/log/key", timeout=30)
    assert published.status_code == 200, published.text
    pinned = PackageOptions(instance_key=NoteKey.from_verifier(published.text.strip()))
    report = verify_package(saved, pinned)
    failed = [(c.name, c.code) for c in report.checks if c.status == "fail"]
    assert report.ok, (failed, report.errors, [c.to_json() for c in report.clips if not c.ok])
    assert report.key_source == "pinned" and not report.warnings, report.warnings
    assert (report.package_id, report.kind, report.case_number) == (
        manifest["package"], "content", "CR-2026-0042",
    )  # fmt: skip
    # Exactly the narrowed scope: both clips of the kept camera (sequences 0 and 1, each
    # signed, decrypted and checked), nothing of Oak Road's camera.
    assert sorted((c.device, c.sequence) for c in report.clips) == [
        (world.elm.device_id, 0), (world.elm.device_id, 1),
    ]  # fmt: skip
    for clip in report.clips:
        status = {c.name: c.status for c in clip.checks}
        assert status["signature"] == status["decrypt"] == "pass", status
    assert [(d.device, d.sequences, d.ok) for d in report.devices] == [
        (world.elm.device_id, [0, 1], True)
    ]
    assert clip_files == sorted(
        f"clips/{world.elm.device_id}/{s:012d}.{ext}"
        for s in (0, 1)
        for ext in ("manifest.json", "clip.dws", "thumb.dws")
    )


def residents_read_what_left(page: Page, server: Server, world: World) -> None:
    sign_in(page, server.url, world.elm.email)
    page.goto(f"{server.url}/households/{world.elm.household_id}")
    page.get_by_role("link", name=re.compile("Requests and access.*2 unread")).click()
    request = page.locator("article.legal-request").first
    expect(request).to_contain_text("case CR-2026-0042")
    expect(request).to_contain_text("Only 12 Elm Street is tied")
    links = request.locator(".disclosed-clips a")
    expect(links).to_have_count(2)
    hrefs = sorted(links.nth(i).get_attribute("href") or "" for i in range(2))
    base = f"/households/{world.elm.household_id}/clips/"
    assert hrefs == sorted(base + c for c in world.elm.clip_ids)
    expect(page.locator(".legal-notices li.unread")).to_have_count(2)
    shoot(page, "household-requests-desktop")
    page.get_by_role("button", name="Mark all as read").click()
    expect(page.locator(".legal-notices li.unread")).to_have_count(0)
    page.get_by_role("button", name="Sign out").click()

    sign_in(page, server.url, world.oak.email)
    page.goto(f"{server.url}/households/{world.oak.household_id}/requests")
    request = page.locator("article.legal-request").first
    expect(request).to_contain_text("case CR-2026-0042")
    expect(request.locator(".nothing-disclosed")).to_have_text("Nothing of yours was disclosed.")
    expect(page.locator(f"a[href*='/households/{world.oak.household_id}/clips/']")).to_have_count(0)


@pytest.mark.browser
def test_warrant_from_filing_to_what_each_resident_is_told(
    browser: Browser, server: Server, world: World, tmp_path: Path
) -> None:
    console = ConsoleLog()

    def as_someone(step: Callable[[Page], object]) -> object:
        page = open_page(browser, console)  # a fresh context: nobody signed in
        try:
            return step(page)
        finally:
            page.context.close()

    as_someone(lambda p: operator_verifies_and_records_the_approval(p, server, world, tmp_path))
    request_id = str(as_someone(lambda p: officer_files_the_warrant(p, server, world, tmp_path)))
    as_someone(lambda p: reviewer_narrows_it(p, server, world, request_id))
    as_someone(lambda p: officer_downloads_the_package(p, server, world, request_id, tmp_path))
    as_someone(lambda p: residents_read_what_left(p, server, world))
    assert console.errors == []


def agency_in_good_standing(server: Server) -> tuple[str, str]:
    """An agency an operator verified and approved through the API, and its officer."""
    tag = secrets.token_hex(3)
    admin, officer = f"map-admin-{tag}@e2e.example", f"map-officer-{tag}@e2e.example"
    server.create_user(admin, "operator_admin")
    api = server.api(admin)
    try:
        agency = api.post(
            "/api/v1/agencies",
            {
                "name": f"Map Police {tag}",
                "jurisdiction": "Springfield",
                "jurisdiction_area": JURISDICTION,
            },
        )
        api.post(f"/api/v1/agencies/{agency['id']}/verify", {})
        details = {
            "approving_body": "Council",
            "approved_on": datetime.now(UTC).date().isoformat(),
            "reference": f"Ord {tag}",
        }
        server.create_user(f"map-second-{tag}@e2e.example", "operator_admin")
        second = server.api(f"map-second-{tag}@e2e.example")  # rule 8: not the verifier
        try:
            recorded = second.client.post(
                f"/api/v1/agencies/{agency['id']}/approvals",
                data={"details": json.dumps(details)},
                files={
                    "policy_document": (
                        "policy.pdf",
                        pdf_bytes(f"Policy {tag}"),
                        "application/pdf",
                    )
                },
            )
            assert recorded.status_code == 201, recorded.text
        finally:
            second.close()
    finally:
        api.close()
    server.create_user(officer, "agency_officer", agency_id=str(agency["id"]))
    return str(agency["id"]), officer


@pytest.mark.browser
def test_the_community_area_is_drawn_by_clicking_the_map(browser: Browser, server: Server) -> None:
    """The officer places three corners on the map; the GeoJSON field fills itself in."""
    agency_id, officer = agency_in_good_standing(server)
    console = ConsoleLog()
    for viewport, name in ((None, "desktop"), (MOBILE, "mobile")):
        page = open_page(browser, console, viewport)
        try:
            sign_in(page, server.url, officer)
            page.goto(f"{server.url}/agencies/{agency_id}/requests/new/community")
            area_map = page.locator("#area-map")
            expect(area_map).to_have_attribute("data-state", "ready")
            box = area_map.bounding_box()
            assert box is not None
            for dx, dy in ((0.45, 0.45), (0.55, 0.45), (0.5, 0.55)):
                area_map.click(position={"x": box["width"] * dx, "y": box["height"] * dy})
            expect(page.locator("#area-map-status")).to_contain_text("3 corners placed")
            field = page.get_by_label("Area as GeoJSON Polygon")
            drawn = json.loads(field.input_value())
            assert drawn["type"] == "Polygon" and len(drawn["coordinates"][0]) == 4
            page.get_by_role("button", name="Undo last corner").click()
            expect(field).to_have_value("")
            shoot(page, f"community-form-{name}")
        finally:
            page.context.close()
    assert console.errors == []
