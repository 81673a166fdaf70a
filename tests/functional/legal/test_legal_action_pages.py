"""What comes after filing, through the pages: a reviewer's approval that needs its
attestation and a rejection that needs its reason; an officer withdrawing, extending a
preservation once, proving an emergency with a warrant filed since; a resident sharing
clips with a community request, and the officer packaging them and closing it."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from doorwarden.clock import ManualClock
from doorwarden.config import Settings
from tests.factories import Factory
from tests.functional.legal.test_legal_pages import (
    REQUEST_PAGE,
    file_warrant,
    submit,
    text_of,
    warrant_form,
)
from tests.legal_flow import Cast, cast, home

WINDOW = {"window_start": "2026-11-25T09:00", "window_end": "2026-11-25T12:00"}


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


async def file_kind(people: Cast, kind: str, form: dict[str, str]) -> str:
    new = f"/agencies/{people.agency_id}/requests/new/{kind}"
    filed = await submit(people.officer_client, new, new, form)
    assert filed.status_code == 303, filed.text
    match = REQUEST_PAGE.search(filed.headers["location"])
    assert match is not None
    return match.group(1)


async def review(people: Cast, request_id: str, verb: str, form: dict[str, str]) -> str:
    """Post a decision from the review page; the page it leads to (or the refusal)."""
    page = f"/review/{request_id}"
    done = await submit(people.reviewer_client, page, f"{page}/{verb}", form)
    if done.status_code != 303:
        return f"{done.status_code} {text_of(done)}"
    return text_of(await people.reviewer_client.get(done.headers["location"]))


def officer_page(people: Cast, request_id: str) -> str:
    return f"/agencies/{people.agency_id}/requests/{request_id}"


async def officer_acts(people: Cast, request_id: str, verb: str, form: dict[str, str]) -> str:
    page = officer_page(people, request_id)
    done = await submit(people.officer_client, page, f"{page}/{verb}", form)
    if done.status_code != 303:
        return f"{done.status_code} {text_of(done)}"
    return text_of(await people.officer_client.get(done.headers["location"]))


async def test_approval_needs_the_attestation_and_rejection_its_reason(
    people: Cast, factory: Factory
) -> None:
    await home(factory, "12 Elm Street")
    filed = await file_warrant(people, warrant_form(addresses="12 Elm Street"))
    request_id = REQUEST_PAGE.search(filed.headers["location"]).group(1)  # type: ignore[union-attr]
    refused = await review(people, request_id, "approve", {})
    assert refused.startswith("409") and "not attested by the reviewer" in refused
    assert "narrow or reject it" in refused
    refused = await review(people, request_id, "reject", {"reason": "  "})
    assert refused.startswith("400") and "Say why the request is rejected" in refused
    shown = await review(people, request_id, "reject", {"reason": "The affidavit is unsigned."})
    assert "Rejected." in shown and "Approve as narrowed" not in shown
    officer = text_of(await people.officer_client.get(officer_page(people, request_id)))
    assert "rejected" in officer and "The affidavit is unsigned." in officer
    assert "Withdraw this request" not in officer
    queue = await people.reviewer_client.get("/review")
    assert f"/review/{request_id}" not in queue.text
    decided = await people.reviewer_client.get("/review?decided=1")
    assert f"/review/{request_id}" in decided.text


async def test_the_officer_withdraws_a_request_not_yet_decided(people: Cast) -> None:
    filed = await file_warrant(people, warrant_form(addresses="12 Elm Street"))
    request_id = REQUEST_PAGE.search(filed.headers["location"]).group(1)  # type: ignore[union-attr]
    shown = await officer_acts(people, request_id, "withdraw", {})
    assert "Request withdrawn." in shown and "withdrawn" in shown
    assert "Withdraw this request" not in shown
    again = await people.officer_client.post(
        f"{officer_page(people, request_id)}/withdraw",
        data={"csrf_token": re.search(r'name="csrf_token" value="([^"]+)"', shown).group(1)},  # type: ignore[union-attr]
    )
    assert again.status_code == 409 and "cannot be withdrawn now" in again.text


async def test_a_preservation_is_extended_once(people: Cast, factory: Factory) -> None:
    await home(factory, "12 Elm Street")
    form = {
        "case_number": "PR-1",
        **WINDOW,
        "addresses": "12 Elm Street",
        "justification": "A warrant for these clips is being sought from the Crown Court.",
    }
    request_id = await file_kind(people, "preservation", form)
    approved = await review(people, request_id, "approve", {})
    assert "Approved as asked." in approved
    shown = await officer_acts(people, request_id, "extend", {})
    assert "Preservation extended." in shown and "extended once" in shown
    assert "Extend the preservation once" not in shown
    assert "A preservation request discloses nothing" in shown


async def test_an_emergency_is_proven_with_a_warrant_filed_since(
    people: Cast, factory: Factory, clock: ManualClock
) -> None:
    await home(factory, "12 Elm Street")
    form = {
        "case_number": "EM-7",
        **WINDOW,
        "addresses": "12 Elm Street",
        "description": "A man threatened to set fire to 12 Elm Street with its residents inside.",
        "attest_imminent_danger": "yes",
    }
    request_id = await file_kind(people, "emergency", form)
    approved = await review(people, request_id, "approve", {})
    assert "Approved as asked." in approved
    shown = text_of(await people.officer_client.get(officer_page(people, request_id)))
    assert "provisional until the emergency is proven" in shown and "Prove the emergency" in shown
    nothing = await officer_acts(people, request_id, "proof", {"warrant_request_id": ""})
    assert nothing.startswith("400") and "one of the two" in nothing
    clock.advance(timedelta(hours=2))  # the warrant is obtained after the emergency
    filed = await file_warrant(people, warrant_form(addresses="12 Elm Street"))
    warrant_id = REQUEST_PAGE.search(filed.headers["location"]).group(1)  # type: ignore[union-attr]
    page = await people.officer_client.get(officer_page(people, request_id))
    assert f'<option value="{warrant_id}">' in page.text
    proven = await officer_acts(people, request_id, "proof", {"warrant_request_id": warrant_id})
    assert "the emergency disclosure is ratified" in proven and "ratified" in proven


async def test_a_resident_shares_clips_and_the_officer_packages_them(
    people: Cast, factory: Factory
) -> None:
    elm = await home(factory, "12 Elm Street")
    del elm.client.headers["x-csrf-token"]
    square = [[-0.101, 51.499], [-0.099, 51.499], [-0.099, 51.501], [-0.101, 51.501]]
    area = '{"type": "Polygon", "coordinates": [' + str([*square, square[0]]) + "]}"
    text = "A car was damaged on Elm Street on Wednesday morning; did you see it?"
    request_id = await file_kind(
        people, "community", {"case_number": "COM-9", **WINDOW, "public_text": text, "area": area}
    )
    nothing = await officer_acts(people, request_id, "packages", {})
    assert nothing.startswith("409") and "No resident has shared a clip" in nothing

    page = f"/households/{elm.household_id}/requests"
    shown = await elm.client.get(page)
    assert text in shown.text and "Share the clips ticked" in shown.text
    offered = re.findall(r'name="clip_ids" value="([0-9a-f-]{36})"', shown.text)
    assert len(offered) == 2  # both clips of the window
    action = f"/households/{elm.household_id}/requests/{request_id}/share"
    none = await submit(elm.client, page, action, {})
    assert none.status_code == 400 and "Tick at least one clip" in none.text
    shared = await submit(elm.client, page, action, {"clip_ids": offered[0]})
    assert shared.status_code == 303
    after = await elm.client.get(shared.headers["location"])
    assert "Shared. The agency sees only these clips." in after.text
    assert re.findall(r'name="clip_ids" value="([0-9a-f-]{36})"', after.text) == offered[1:]
    assert after.text.count('badge badge-ok">shared<') == 1

    officer = text_of(await people.officer_client.get(officer_page(people, request_id)))
    assert str(elm.household_id) not in officer and "12 Elm Street" not in officer
    packaged = await officer_acts(people, request_id, "packages", {})
    assert "Package built from the clips shared so far." in packaged and "1 clip" in packaged
    closed = await officer_acts(people, request_id, "close", {})
    assert "Community request closed" in closed
    late = await elm.client.get(page)
    assert "This request is closed" in late.text
