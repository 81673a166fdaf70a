"""The legal process through its pages, posted the way a browser posts them (the CSRF token
from the page's own field, files as multipart): an officer files and follows a request,
a reviewer narrows it, each household reads exactly what left about it. Who may open
which page is the route-policy test's; here: what the pages say, and what they refuse."""

from __future__ import annotations

import io
import json
import re
import uuid
import zipfile
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from doorwarden.agencies.models import DocumentKind, LegalDocument
from doorwarden.clock import ManualClock
from doorwarden.config import Settings
from doorwarden.legal.lifecycle import run_deadlines
from doorwarden.legal.models import LegalRequest
from doorwarden.roles import Role
from tests.factories import CTX, Factory
from tests.legal_flow import Cast, Home, cast, home
from tests.pdfs import pdf_bytes

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
REQUEST_PAGE = re.compile(r"/agencies/[0-9a-f-]{36}/requests/([0-9a-f-]{36})\?done=filed$")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Community requests here ask small areas of one or two homes, below the floors that
    operators cannot lower (their refusals: test_community_oracle.py)."""
    floors = {"community_min_households": 0, "community_min_square_miles": 0.0}
    return settings.model_copy(update=floors)


@pytest.fixture
async def people(factory: Factory) -> AsyncIterator[Cast]:
    made = await cast(factory)
    for client in (made.officer_client, made.reviewer_client, made.admin_client):
        del client.headers["x-csrf-token"]  # forms carry their own token
    yield made
    await made.close()


async def token(client: httpx.AsyncClient, page: str) -> str:
    shown = await client.get(page)
    assert shown.status_code == 200, shown.text
    match = CSRF_FIELD.search(shown.text)
    assert match is not None
    return match.group(1)


async def submit(
    client: httpx.AsyncClient,
    page: str,
    action: str,
    data: dict[str, Any],
    files: dict[str, tuple[str, bytes, str]] | None = None,
) -> httpx.Response:
    """Open `page`, then post `data` (and `files`) to `action` with the page's token."""
    form = {**data, "csrf_token": await token(client, page)}
    return await client.post(action, data=form, files=files or None)


def warrant_form(**changes: str) -> dict[str, str]:
    form = {
        "case_number": f"CR-{uuid.uuid4().hex[:8]}",
        "issuing_court": "Testshire Crown Court",
        "judge": "Judge Able",
        "signed_on": "2026-11-26",
        "expires_at": "2027-01-31T00:00",
        "window_start": "2026-11-25T09:00",
        "window_end": "2026-11-25T12:00",
        "addresses": "",
        "justification": "Burglary at 12 Elm Street on the morning of 25 November.",
    }
    form.update(changes)
    return form


def pdf(name: str = "warrant.pdf", title: str | None = None) -> tuple[str, bytes, str]:
    return (name, pdf_bytes(title or f"Warrant {uuid.uuid4()}"), "application/pdf")


async def file_warrant(people: Cast, form: dict[str, str], **files: Any) -> httpx.Response:
    new = f"/agencies/{people.agency_id}/requests/new/warrant"
    return await submit(people.officer_client, new, new, form, files or {"document": pdf()})


async def count(app: FastAPI, model: Any) -> int:
    async with app.state.sessionmaker() as db:
        return int(await db.scalar(select(func.count()).select_from(model)) or 0)


async def filed_documents(app: FastAPI) -> int:
    """Documents an agency filed (the factory's approval has its use policy on file)."""
    async with app.state.sessionmaker() as db:
        query = select(func.count()).where(LegalDocument.kind != DocumentKind.use_policy)
        return int(await db.scalar(query) or 0)


def text_of(response: httpx.Response) -> str:
    return re.sub(r"\s+", " ", response.text)


async def test_the_officer_files_a_warrant_and_never_sees_what_it_resolved_to(
    people: Cast, factory: Factory
) -> None:
    elm, oak = await home(factory, "12 Elm Street"), await home(factory, "3 Oak Road")
    agency_page = await people.officer_client.get(f"/agencies/{people.agency_id}")
    assert "in good standing" in agency_page.text
    for kind in ("warrant", "subpoena", "preservation", "emergency", "community"):
        assert f"/agencies/{people.agency_id}/requests/new/{kind}" in agency_page.text

    filed = await file_warrant(people, warrant_form(addresses="12 Elm Street\n3 Oak Road"))
    assert filed.status_code == 303, filed.text
    match = REQUEST_PAGE.search(filed.headers["location"])
    assert match is not None
    page = await people.officer_client.get(filed.headers["location"])
    assert page.status_code == 200
    shown = text_of(page)
    assert "Request filed" in shown and "submitted" in shown
    assert "Address: 12 Elm Street" in shown and "Address: 3 Oak Road" in shown
    assert "Withdraw this request" in shown
    listing = await people.officer_client.get(f"/agencies/{people.agency_id}")
    for seen in (page.text, listing.text):
        for secret in (elm.household_id, oak.household_id, elm.camera.id, oak.camera.id):
            assert str(secret) not in seen
        assert "camera(s)" not in seen and "matched" not in seen


@pytest.mark.parametrize(
    ("changes", "status", "message"),
    [
        ({"case_number": ""}, 400, "Case number: this is required."),
        ({"window_start": ""}, 400, "Window start (UTC): enter a date and time."),
        ({"addresses": ""}, 400, "Scope: name at least one address, household or camera."),
        ({"window_end": "2026-11-25T08:00"}, 400, "The window must end after it starts."),
        ({"window_end": "2099-01-01T00:00"}, 400, "The window reaches into the future"),
        ({"expires_at": "2026-11-27T00:00"}, 400, "The warrant has expired."),
    ],
)
async def test_a_refused_warrant_form_comes_back_with_the_reason_and_what_was_typed(
    people: Cast, app: FastAPI, changes: dict[str, str], status: int, message: str
) -> None:
    form = warrant_form(**{"addresses": "12 Elm Street", **changes})
    refused = await file_warrant(people, form)
    assert refused.status_code == status, refused.text
    assert message in refused.text.replace("&#39;", "'")
    assert 'role="alert"' in refused.text
    assert 'value="Testshire Crown Court"' in refused.text  # typed values stay
    assert form["addresses"] + "</textarea>" in refused.text
    assert await count(app, LegalRequest) == 0
    assert await filed_documents(app) == 0


async def test_a_document_that_is_not_a_pdf_is_refused_and_nothing_is_kept(
    people: Cast, app: FastAPI
) -> None:
    form = warrant_form(addresses="12 Elm Street")
    fake = ("warrant.pdf", b"%PDF-1.4 not really", "application/pdf")
    refused = await file_warrant(people, form, document=fake)
    assert refused.status_code == 415, refused.text
    assert "The warrant is not a PDF file." in refused.text
    missing = await file_warrant(people, form, document=("", b"", "application/octet-stream"))
    assert missing.status_code == 400 and "Attach the warrant as a PDF." in missing.text
    # The warrant is fine, the order is not: the stored warrant goes with the refusal.
    until = "2027-01-01T00:00"
    refused = await file_warrant(
        people,
        {**form, "nondisclosure_until": until},
        document=pdf(),
        nondisclosure_order=("order.pdf", b"not a pdf at all", "application/pdf"),
    )
    assert refused.status_code == 415 and "non-disclosure order is not a PDF" in refused.text
    assert await count(app, LegalRequest) == 0
    assert await filed_documents(app) == 0
    stored = list((app.state.settings.data_dir / "clips" / "legal").rglob("*.pdf"))
    assert len(stored) == 1, stored  # the use policy of the agency's approval, nothing else


async def test_a_form_without_its_csrf_token_is_refused(people: Cast, app: FastAPI) -> None:
    new = f"/agencies/{people.agency_id}/requests/new/warrant"
    refused = await people.officer_client.post(
        new, data=warrant_form(addresses="12 Elm Street"), files={"document": pdf()}
    )
    assert refused.status_code == 403
    assert "The form has expired or did not come from this site" in refused.text
    assert await count(app, LegalRequest) == 0


async def test_an_agency_not_in_good_standing_is_told_why_and_cannot_file(
    people: Cast, factory: Factory
) -> None:
    unverified = await factory.agency(people.admin, "Unverified Police")
    officer = await factory.user(Role.agency_officer, agency_id=unverified)
    client = await factory.signed_in(officer)
    page = await client.get(f"/agencies/{unverified}")
    assert "Not verified by an operator yet" in page.text
    assert "cannot file or act on requests now" in page.text
    assert "/requests/new/" not in page.text
    form = await client.get(f"/agencies/{unverified}/requests/new/warrant")
    assert form.status_code == 403
    assert "this agency has not been verified by an operator yet" in form.text
    await client.aclose()


async def test_emergency_needs_the_attestation(people: Cast, factory: Factory) -> None:
    await home(factory, "12 Elm Street")
    new = f"/agencies/{people.agency_id}/requests/new/emergency"
    form = {
        "case_number": "EM-1",
        "window_start": "2026-11-25T09:00",
        "window_end": "2026-11-25T12:00",
        "addresses": "12 Elm Street",
        "description": "A child is missing and was last seen walking past 12 Elm Street alone.",
    }
    refused = await submit(people.officer_client, new, new, form)
    assert refused.status_code == 400
    assert "tick the box to attest an imminent danger" in refused.text
    assert "A child is missing" in refused.text
    filed = await submit(people.officer_client, new, new, {**form, "attest_imminent_danger": "yes"})
    assert filed.status_code == 303, filed.text


async def test_a_community_request_is_drawn_on_a_map_or_pasted(people: Cast) -> None:
    new = f"/agencies/{people.agency_id}/requests/new/community"
    page = await people.officer_client.get(new)
    assert 'class="area-map"' in page.text and "/static/area-map.js" in page.text
    assert "/static/vendor/leaflet/leaflet.js" in page.text
    assert 'data-reference="{' in page.text  # the jurisdiction, outlined for orientation
    form = {
        "case_number": "COM-1",
        "window_start": "2026-11-25T09:00",
        "window_end": "2026-11-25T12:00",
        "public_text": "A car was damaged on Elm Street on Wednesday morning; did you see it?",
        "area": "{not json",
    }
    refused = await submit(people.officer_client, new, new, form)
    assert refused.status_code == 400 and "Area: this is not GeoJSON" in refused.text
    square = [[-0.101, 51.499], [-0.099, 51.499], [-0.099, 51.501], [-0.101, 51.501]]
    area = '{"type": "Polygon", "coordinates": [' + str([*square, square[0]]) + "]}"
    filed = await submit(people.officer_client, new, new, {**form, "area": area})
    assert filed.status_code == 303, filed.text
    shown = await people.officer_client.get(filed.headers["location"])
    assert "Close this community request" in shown.text
    assert "No resident has shared a clip yet." in shown.text


async def narrowed_warrant(people: Cast, elm: Home, oak: Home) -> str:
    """A warrant for two homes that a reviewer narrows, through the pages, to Elm's camera."""
    filed = await file_warrant(people, warrant_form(addresses="12 Elm Street\n3 Oak Road"))
    match = REQUEST_PAGE.search(filed.headers["location"])
    assert match is not None
    request_id = match.group(1)
    reviewer = people.reviewer_client
    queue = await reviewer.get("/review")
    assert f"/review/{request_id}" in queue.text
    page = await reviewer.get(f"/review/{request_id}")
    for shown in (elm.camera.id, oak.camera.id, elm.household_id, oak.household_id):
        assert str(shown) in page.text  # reviewers see which cameras, never footage
    assert "in jurisdiction" in page.text and "Start review" in page.text
    started = await submit(reviewer, f"/review/{request_id}", f"/review/{request_id}/start", {})
    assert started.status_code == 303
    narrow = {"keep_devices": str(elm.camera.id), "attest": "signed"}
    action = f"/review/{request_id}/narrow"
    refused = await submit(reviewer, f"/review/{request_id}", action, narrow)
    assert refused.status_code == 400 and "Say why the request is narrowed" in refused.text
    reason = "Only 12 Elm Street is tied to the burglary in the affidavit."
    done = await submit(reviewer, f"/review/{request_id}", action, {**narrow, "reason": reason})
    assert done.status_code == 303, done.text
    return request_id


async def test_a_narrowed_warrant_as_officer_reviewer_and_both_residents_see_it(
    people: Cast, factory: Factory
) -> None:
    elm, oak = await home(factory, "12 Elm Street"), await home(factory, "3 Oak Road")
    request_id = await narrowed_warrant(people, elm, oak)
    officer_page = await people.officer_client.get(
        f"/agencies/{people.agency_id}/requests/{request_id}"
    )
    shown = text_of(officer_page)
    assert "narrowed" in shown and "Only 12 Elm Street is tied" in shown
    download = re.search(r'href="(/api/v1/agencies/[^"]+/packages/[^"]+)"', officer_page.text)
    assert download is not None and "2 clips" in shown
    package = await people.officer_client.get(download.group(1))
    assert package.status_code == 200 and package.content[:2] == b"PK"
    for secret in (oak.household_id, oak.camera.id, elm.household_id):
        assert str(secret) not in officer_page.text

    for resident in (elm, oak):
        del resident.client.headers["x-csrf-token"]
    house = await elm.client.get(f"/households/{elm.household_id}")
    assert "Requests and access" in house.text and "2 unread" in house.text
    kept = await elm.client.get(f"/households/{elm.household_id}/requests")
    links = set(re.findall(rf"/households/{elm.household_id}/clips/([0-9a-f-]{{36}})", kept.text))
    async with factory.app.state.sessionmaker() as db:
        disclosed = (await db.scalars(select(LegalRequest))).one()
        assert disclosed.status.value == "narrowed"
    assert len(links) == 2  # exactly the two clips in the window
    assert "Only 12 Elm Street is tied" in kept.text and 'class="unread"' in kept.text
    read = await submit(
        elm.client,
        f"/households/{elm.household_id}/requests",
        f"/households/{elm.household_id}/requests/read",
        {},
    )
    assert read.status_code == 303
    again = await elm.client.get(f"/households/{elm.household_id}/requests")
    assert 'class="unread"' not in again.text
    assert "unread" not in (await elm.client.get(f"/households/{elm.household_id}")).text

    left_out = await oak.client.get(f"/households/{oak.household_id}/requests")
    assert "Nothing of yours was disclosed." in left_out.text
    assert f"/households/{oak.household_id}/clips/" not in left_out.text


async def test_no_resident_sees_a_request_under_a_nondisclosure_order_until_it_ends(
    people: Cast, factory: Factory, clock: ManualClock
) -> None:
    elm = await home(factory, "12 Elm Street")
    del elm.client.headers["x-csrf-token"]
    until = clock.now() + timedelta(days=10)
    form = warrant_form(addresses="12 Elm Street", nondisclosure_until=f"{until:%Y-%m-%dT%H:%M}")
    filed = await file_warrant(
        people,
        form,
        document=pdf(),
        nondisclosure_order=pdf("order.pdf", "Order under seal"),
    )
    assert filed.status_code == 303, filed.text
    case = form["case_number"]
    before = await elm.client.get(f"/households/{elm.household_id}/requests")
    assert case not in before.text and "No notices" in before.text
    assert "unread" not in (await elm.client.get(f"/households/{elm.household_id}")).text

    clock.advance(timedelta(days=11))
    async with factory.app.state.sessionmaker.begin() as db:
        await run_deadlines(db, settings=factory.app.state.settings, ctx=CTX, now=clock.now())
    again = await factory.signed_in(elm.owner)  # sessions end when idle for days
    after = await again.get(f"/households/{elm.household_id}/requests")
    await again.aclose()
    assert case in after.text and "held back by a court" in after.text


async def test_a_subpoena_filed_by_form_discloses_subscriber_details_and_no_video(
    people: Cast, factory: Factory
) -> None:
    elm = await home(factory, "12 Elm Street")
    new = f"/agencies/{people.agency_id}/requests/new/subpoena"
    form = {
        "case_number": "SUB-7",
        "issuing_court": "Testshire Magistrates' Court",
        "signed_on": "2026-11-26",
        "window_start": "2026-11-25T09:00",
        "window_end": "2026-11-25T12:00",
        "addresses": "12 Elm Street",
        "justification": "Who held the account at 12 Elm Street that morning.",
    }
    unsigned = await submit(people.officer_client, new, new, form)
    assert unsigned.status_code == 400 and "Attach the subpoena as a PDF." in unsigned.text
    filed = await submit(
        people.officer_client, new, new, form, {"document": pdf("subpoena.pdf", "Subpoena 7")}
    )
    assert filed.status_code == 303, filed.text
    match = REQUEST_PAGE.search(filed.headers["location"])
    assert match is not None
    request_id = match.group(1)
    shown = text_of(await people.officer_client.get(filed.headers["location"]))
    assert "Request filed" in shown and "SUB-7" in shown and "subpoena" in shown

    reviewer, page = people.reviewer_client, f"/review/{request_id}"
    assert (await submit(reviewer, page, f"{page}/start", {})).status_code == 303
    approved = await submit(reviewer, page, f"{page}/approve", {"attest": "signed"})
    assert approved.status_code == 303, approved.text

    officer_page = await people.officer_client.get(
        f"/agencies/{people.agency_id}/requests/{request_id}"
    )
    assert "approved" in text_of(officer_page)
    download = re.search(r'href="(/api/v1/agencies/[^"]+/packages/[^"]+)"', officer_page.text)
    assert download is not None
    package = await people.officer_client.get(download.group(1))
    assert package.status_code == 200, package.text
    with zipfile.ZipFile(io.BytesIO(package.content)) as zipped:
        names = zipped.namelist()
        [subscriber] = json.loads(zipped.read("subscribers.json"))
    assert subscriber["address"] == "12 Elm Street"
    assert not [n for n in names if n.startswith("clips/")]

    del elm.client.headers["x-csrf-token"]
    told = text_of(await elm.client.get(f"/households/{elm.household_id}/requests"))
    assert "SUB-7" in told and "No video was disclosed." in told
    assert f"/households/{elm.household_id}/clips/" not in told
