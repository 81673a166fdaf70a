"""Legal review: the checklist decides what may be approved; an overbroad, out-of-
jurisdiction, unsigned or expired request can only be narrowed (with a reason) or
rejected; an approval discloses exactly the clips in scope, to the requesting agency
alone, and each household is told exactly what left about it."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from doorwarden.audit.models import AuditEvent
from doorwarden.clock import ManualClock
from doorwarden.config import Settings
from doorwarden.legal.disclosure.models import Package, PackageClip
from doorwarden.roles import Role
from tests.factories import Factory, assert_error
from tests.legal_flow import (
    Cast,
    Home,
    address_item,
    at,
    cast,
    decide,
    device_item,
    file_warrant,
    file_with_documents,
    home,
    iso,
    legal_view,
    warrant_details,
)
from tests.pdfs import pdf_bytes


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # N = 2 cameras and M = 6 hours make overbroad requests cheap to build; a package link
    # lasts a day, shorter than a session.
    return settings.model_copy(
        update={"warrant_max_devices": 2, "warrant_max_hours": 6, "package_link_days": 1}
    )


@pytest.fixture
async def people(factory: Factory) -> AsyncIterator[Cast]:
    made = await cast(factory)
    yield made
    await made.close()


async def package_clips(app: FastAPI, request_id: str) -> list[tuple[str, int]]:
    """(device, sequence) of every clip in the request's packages, from the ZIP itself."""
    async with app.state.sessionmaker() as db:
        packages = (
            await db.scalars(select(Package).where(Package.request_id == uuid.UUID(request_id)))
        ).all()
    found = []
    for package in packages:
        data = await app.state.clip_store.get_range(package.object_key, 0, package.size)
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            manifest = json.loads(archive.read("package.json"))
        found += [(c["device"], c["sequence"]) for c in manifest["clips"]]
    return sorted(found)


def failed_checks(response: Any) -> set[str]:
    error = assert_error(response, 409, "checks_failed")
    return {c["name"] for c in error["details"]["failed"]}  # type: ignore[index]


async def test_narrowed_warrant_discloses_exactly_the_kept_scope(
    people: Cast, factory: Factory, app: FastAPI, clock: ManualClock
) -> None:
    elm = await home(factory, "12 Elm Street", clip_hours=(10.0, 11.0))
    oak = await home(factory, "3 Oak Road", clip_hours=(10.5,))
    filed = await file_warrant(
        people.officer_client,
        people.agency_id,
        [address_item("12 Elm Street"), address_item("3 Oak Road")],
    )
    rid = filed.json()["id"]
    # Both homes are told at once that a request names them.
    for each in (elm, oak):
        assert [
            n["kind"] for n in (await legal_view(each.client, each.household_id))["notices"]
        ] == ["request"]
    detail = await people.reviewer_client.get(f"/api/v1/review/requests/{rid}")
    assert {t["device_id"] for t in detail.json()["targets"]} == {
        str(elm.camera.id),
        str(oak.camera.id),
    }
    assert detail.json()["attestations_needed"] == ["signed"]
    # Without attesting the signature, nothing can be approved.
    assert failed_checks(await decide(people.reviewer_client, rid, "approve", {})) == {"signed"}
    # A narrowing needs a reason, and keeps only what was named, inside the window asked.
    body = {
        "keep_devices": [str(elm.camera.id)],
        "window_start": iso(at(9.5)),
        "window_end": iso(at(10.5)),
        "attest": ["signed"],
    }
    assert_error(await decide(people.reviewer_client, rid, "narrow", body), 400, "reason_required")
    wider = {**body, "reason": "r", "window_start": iso(at(8))}
    assert_error(
        await decide(people.reviewer_client, rid, "narrow", wider), 400, "narrowing_invalid"
    )
    nothing = {**body, "reason": "r", "keep_devices": []}
    assert_error(
        await decide(people.reviewer_client, rid, "narrow", nothing), 400, "narrowing_invalid"
    )
    narrowed = await decide(
        people.reviewer_client,
        rid,
        "narrow",
        {**body, "reason": "Only the camera facing the door, at the hour of the burglary."},
    )
    assert narrowed.status_code == 200, narrowed.text
    decided = narrowed.json()
    assert decided["status"] == "narrowed" and decided["outcome"] == "narrowed"
    assert decided["approved_start"].startswith("2026-11-25T09:30")
    [package] = decided["packages"]
    # Exactly the 10:00 clip of the kept camera: not its 11:00 clip, nothing of Oak Road.
    assert await package_clips(app, rid) == [(str(elm.camera.id), 0)]
    elm_view = await legal_view(elm.client, elm.household_id)
    [told] = elm_view["requests"]
    assert told["status"] == "narrowed" and len(told["disclosed_clips"]) == 1
    disclosure = [n for n in elm_view["notices"] if n["kind"] == "disclosure"]
    assert len(disclosure) == 1 and "1 clip(s)" in disclosure[0]["message"]
    oak_view = await legal_view(oak.client, oak.household_id)
    assert oak_view["requests"][0]["disclosed_clips"] == []
    assert any("nothing about your home was disclosed" in n["message"] for n in oak_view["notices"])
    # The agency downloads it; the download is on record; the link expires.
    url = package["download_url"]
    download = await people.officer_client.get(url)
    assert download.status_code == 200 and download.headers["content-type"] == "application/zip"
    assert zipfile.ZipFile(io.BytesIO(download.content)).read("package.json")
    async with app.state.sessionmaker() as db:
        tags = (await db.scalars(select(AuditEvent.tag))).all()
    assert {
        "legal:request:narrow",
        "legal:package:create",
        "legal:package:download",
        "legal:disclose",
    } <= set(tags)
    clock.advance(timedelta(days=app.state.settings.package_link_days, seconds=1))
    assert_error(await people.officer_client.get(url), 410, "package_expired")


async def test_packages_are_the_requesting_agencys_alone(
    people: Cast, factory: Factory, app: FastAPI
) -> None:
    elm = await home(factory, "12 Elm Street")
    filed = await file_warrant(
        people.officer_client, people.agency_id, [device_item(elm.camera.id)]
    )
    approved = await decide(
        people.reviewer_client, filed.json()["id"], "approve", {"attest": ["signed"]}
    )
    assert approved.status_code == 200, approved.text
    url = approved.json()["packages"][0]["download_url"]
    other = await factory.agency_in_good_standing(people.admin, "Otherton Police")
    outsiders = [
        await factory.signed_in(await factory.user(Role.agency_officer, agency_id=other)),
        people.reviewer_client,
        people.admin_client,
        elm.client,
        await factory.signed_in(await factory.user(Role.auditor)),
    ]
    for client in outsiders:
        assert_error(await client.get(url), 403)
    # Nor under the other agency's own path.
    package_id = url.rsplit("/", 1)[1]
    assert_error(await outsiders[0].get(f"/api/v1/agencies/{other}/packages/{package_id}"), 404)
    # Operators see no request of an agency, reviewers read it through review only.
    agency_path = f"/api/v1/agencies/{people.agency_id}/requests/{filed.json()['id']}"
    assert_error(await people.admin_client.get(agency_path), 403)
    assert_error(await people.officer_client.get("/api/v1/review/requests"), 403)
    assert_error(await people.admin_client.get("/api/v1/review/requests"), 403)


async def test_overbroad_requests_must_be_narrowed_or_rejected(
    people: Cast, factory: Factory, app: FastAPI
) -> None:
    homes: list[Home] = [
        await home(factory, f"{n} Birch Lane", clip_hours=(10.0,)) for n in (1, 2, 3)
    ]
    scope = [device_item(h.camera.id) for h in homes]
    # Three cameras where N is 2, and a 7-hour window where M is 6.
    filed = await file_warrant(
        people.officer_client,
        people.agency_id,
        scope,
        window_start=iso(at(4)),
        window_end=iso(at(11)),
    )
    rid = filed.json()["id"]
    assert failed_checks(
        await decide(people.reviewer_client, rid, "approve", {"attest": ["signed"]})
    ) == {"particular"}
    still_wide = {
        "keep_devices": [str(h.camera.id) for h in homes[:2]],
        "attest": ["signed"],
        "reason": "Two cameras only.",
    }
    assert failed_checks(await decide(people.reviewer_client, rid, "narrow", still_wide)) == {
        "particular"
    }
    ok = await decide(
        people.reviewer_client,
        rid,
        "narrow",
        {**still_wide, "window_start": iso(at(9)), "window_end": iso(at(11))},
    )
    assert ok.status_code == 200, ok.text
    assert await package_clips(app, rid) == sorted((str(h.camera.id), 0) for h in homes[:2])


async def test_an_area_sweep_is_never_approved_as_asked(
    people: Cast, factory: Factory, app: FastAPI
) -> None:
    elm = await home(factory, "12 Elm Street")
    sweep = {
        "kind": "area",
        "area": {
            "type": "Polygon",
            "coordinates": [
                [[-0.11, 51.49], [-0.09, 51.49], [-0.09, 51.51], [-0.11, 51.51], [-0.11, 51.49]]
            ],
        },
    }
    only_sweep = await file_warrant(people.officer_client, people.agency_id, [sweep])
    assert only_sweep.status_code == 201, only_sweep.text
    sid = only_sweep.json()["id"]
    assert failed_checks(
        await decide(people.reviewer_client, sid, "approve", {"attest": ["signed"]})
    ) == {"particular"}
    assert_error(await decide(people.reviewer_client, sid, "reject", {}), 400, "reason_required")
    rejected = await decide(
        people.reviewer_client,
        sid,
        "reject",
        {"reason": "An area sweep is not a particular description."},
    )
    assert rejected.json()["status"] == "rejected" and rejected.json()["packages"] == []
    assert_error(
        await decide(people.reviewer_client, sid, "approve", {"attest": ["signed"]}),
        409,
        "wrong_state",
    )
    # With a named camera beside the sweep, the narrowing drops the sweep.
    mixed = await file_warrant(
        people.officer_client, people.agency_id, [sweep, device_item(elm.camera.id)]
    )
    narrowed = await decide(
        people.reviewer_client,
        mixed.json()["id"],
        "narrow",
        {
            "keep_devices": [str(elm.camera.id)],
            "attest": ["signed"],
            "reason": "The named camera only.",
        },
    )
    assert narrowed.status_code == 200, narrowed.text
    assert await package_clips(app, mixed.json()["id"]) == [
        (str(elm.camera.id), 0),
        (str(elm.camera.id), 1),
    ]


async def test_homes_outside_the_jurisdiction_are_not_approved(
    people: Cast, factory: Factory
) -> None:
    inside = await home(factory, "12 Elm Street")
    outside = await home(factory, "1 Far Away", latitude=48.85, longitude=2.35)
    filed = await file_warrant(
        people.officer_client,
        people.agency_id,
        [device_item(inside.camera.id), device_item(outside.camera.id)],
    )
    rid = filed.json()["id"]
    assert failed_checks(
        await decide(people.reviewer_client, rid, "approve", {"attest": ["signed"]})
    ) == {"in_jurisdiction"}
    ok = await decide(
        people.reviewer_client,
        rid,
        "narrow",
        {
            "keep_devices": [str(inside.camera.id)],
            "attest": ["signed"],
            "reason": "Paris is not in Testshire.",
        },
    )
    assert ok.status_code == 200, ok.text


async def test_a_warrant_that_expired_before_review_cannot_be_approved(
    people: Cast, factory: Factory, clock: ManualClock
) -> None:
    elm = await home(factory, "12 Elm Street")
    soon = clock.now() + timedelta(hours=1)
    filed = await file_warrant(
        people.officer_client,
        people.agency_id,
        [device_item(elm.camera.id)],
        expires_at=soon.isoformat(),
    )
    clock.advance(timedelta(hours=2))
    refused = await decide(
        people.reviewer_client, filed.json()["id"], "approve", {"attest": ["signed"]}
    )
    assert failed_checks(refused) == {"unexpired"}


async def test_review_states_and_withdrawal(people: Cast, factory: Factory) -> None:
    elm = await home(factory, "12 Elm Street")
    filed = await file_warrant(
        people.officer_client, people.agency_id, [device_item(elm.camera.id)]
    )
    rid = filed.json()["id"]
    started = await people.reviewer_client.post(f"/api/v1/review/requests/{rid}/start")
    assert started.status_code == 200 and started.json()["request"]["status"] == "in_review"
    assert_error(
        await people.reviewer_client.post(f"/api/v1/review/requests/{rid}/start"),
        409,
        "wrong_state",
    )
    withdrawn = await people.officer_client.post(
        f"/api/v1/agencies/{people.agency_id}/requests/{rid}/withdraw"
    )
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn"
    for verb, body in (("approve", {"attest": ["signed"]}), ("reject", {"reason": "x"})):
        assert_error(await decide(people.reviewer_client, rid, verb, body), 409, "wrong_state")
    assert_error(
        await people.officer_client.post(
            f"/api/v1/agencies/{people.agency_id}/requests/{rid}/withdraw"
        ),
        409,
        "wrong_state",
    )
    # Bad decision bodies get the error shape.
    assert_error(await decide(people.reviewer_client, rid, "approve", {"attest": "signed"}), 422)
    assert_error(await decide(people.reviewer_client, rid, "narrow", {"keep_devices": ["x"]}), 422)
    assert_error(await people.reviewer_client.get("/api/v1/review/requests/not-a-uuid"), 422)


async def test_the_queue_puts_emergencies_first(people: Cast, factory: Factory) -> None:
    elm = await home(factory, "12 Elm Street")
    warrant = await file_warrant(
        people.officer_client, people.agency_id, [device_item(elm.camera.id)]
    )
    emergency = await people.officer_client.post(
        f"/api/v1/agencies/{people.agency_id}/requests/emergencies",
        json={
            "case_number": "EM-7",
            "description": "Shots fired near 12 Elm Street; the camera may show the car "
            "of the shooter leaving.",
            "attest_imminent_danger": True,
            "scope": [device_item(elm.camera.id)],
            "window_start": iso(at(9)),
            "window_end": iso(at(12)),
        },
    )
    assert emergency.status_code == 201, emergency.text
    queue = (await people.reviewer_client.get("/api/v1/review/requests")).json()
    assert [q["id"] for q in queue] == [emergency.json()["id"], warrant.json()["id"]]
    assert queue[0]["agency_name"] == "Testshire Police"


async def test_a_subpoena_yields_subscriber_information_and_never_clips(
    people: Cast, factory: Factory, app: FastAPI
) -> None:
    elm = await home(factory, "12 Elm Street")
    details = warrant_details([address_item("12 Elm Street")])
    details.pop("judge")
    details.pop("justification")
    filed = await file_with_documents(
        people.officer_client,
        people.agency_id,
        "subpoenas",
        details,
        document=pdf_bytes("subpoena"),
    )
    assert filed.status_code == 201, filed.text
    approved = await decide(
        people.reviewer_client, filed.json()["id"], "approve", {"attest": ["signed"]}
    )
    assert approved.status_code == 200, approved.text
    [package] = approved.json()["packages"]
    assert package["kind"] == "subscriber" and package["clips"] == 0
    assert await package_clips(app, filed.json()["id"]) == []
    async with app.state.sessionmaker() as db:
        assert (await db.scalars(select(PackageClip))).all() == []
    data = await app.state.clip_store.get_range(
        f"legal/agencies/{people.agency_id}/packages/{package['id']}.zip", 0, package["size"]
    )
    names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    assert "subscribers.json" in names and not [n for n in names if n.startswith("clips/")]
    view = await legal_view(elm.client, elm.household_id)
    assert view["requests"][0]["subscriber_information_disclosed"] is True
