"""Filing legal requests: what an agency may file, and every submission refused with its
own code, with nothing left behind (no request, no stored document)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from doorwarden.accounts.service import actor_of
from doorwarden.agencies import documents
from doorwarden.agencies.models import DocumentKind, LegalDocument
from doorwarden.audit.models import AuditEvent
from doorwarden.clock import ManualClock
from doorwarden.db import run_rollback_cleanups
from doorwarden.legal.models import LegalRequest, Notice
from doorwarden.roles import Role
from tests.factories import CTX, Factory, assert_error
from tests.legal_flow import (
    Cast,
    address_item,
    at,
    cast,
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
async def people(factory: Factory) -> AsyncIterator[Cast]:
    made = await cast(factory)
    yield made
    await made.close()


async def nothing_left(app: FastAPI) -> None:
    """No request, no document row, no stored document object."""
    async with app.state.sessionmaker() as db:
        assert await db.scalar(select(func.count()).select_from(LegalRequest)) == 0
        assert await db.scalar(select(func.count()).select_from(LegalDocument)) == 1  # policy
    stored = await app.state.clip_store.list("legal")
    assert [k for k in stored if "/documents/" in k] == [
        k for k in stored if k.endswith(".pdf")
    ] and len(stored) == 1, stored


async def test_a_warrant_is_filed_and_the_named_home_is_told(
    people: Cast, factory: Factory, app: FastAPI
) -> None:
    elm = await home(factory, "12 Elm Street, Testshire")
    filed = await file_warrant(
        people.officer_client, people.agency_id, [address_item("12 ELM street,  testshire.")]
    )
    assert filed.status_code == 201, filed.text
    body = filed.json()
    assert body["status"] == "submitted" and body["kind"] == "warrant"
    assert body["scope"] == [{"kind": "address", "value": "12 ELM street,  testshire."}]
    # The agency learns nothing of who lives there, or whether anyone does.
    assert str(elm.household_id) not in filed.text and str(elm.camera.id) not in filed.text
    view = await legal_view(elm.client, elm.household_id)
    [notice] = view["notices"]
    assert notice["kind"] == "request" and "Testshire Police" in notice["message"]
    [told] = view["requests"]
    assert told["id"] == body["id"] and told["status"] == "submitted"
    listed = await people.officer_client.get(f"/api/v1/agencies/{people.agency_id}/requests")
    assert [r["id"] for r in listed.json()] == [body["id"]]
    async with app.state.sessionmaker() as db:
        tags = (await db.scalars(select(AuditEvent.tag).order_by(AuditEvent.occurred_at))).all()
    assert "legal:document:upload" in tags and "legal:request:submit" in tags


async def test_an_address_without_a_home_here_resolves_quietly(people: Cast) -> None:
    filed = await file_warrant(
        people.officer_client, people.agency_id, [address_item("99 Nowhere Road")]
    )
    assert filed.status_code == 201, filed.text
    assert "matched" not in filed.text  # not even a count leaks to the agency


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"window_start": iso(at(12)), "window_end": iso(at(9))}, "window_invalid"),
        ({"window_end": "2099-01-01T00:00:00+00:00"}, "window_in_future"),
        ({"expires_at": "2026-11-01T00:00:00+00:00"}, "warrant_expired"),
        ({"signed_on": "2099-01-01"}, "not_yet_signed"),
        ({"nondisclosure_until": "2027-06-01T00:00:00+00:00"}, "nondisclosure_invalid"),
        ({"surprise": True}, "validation_error"),
        ({"scope": []}, "validation_error"),
        ({"scope": [{"kind": "address", "id": str(uuid.uuid4())}]}, "validation_error"),
        ({"scope": [{"kind": "area", "area": {"type": "Point", "coordinates": [0, 0]}}]},
         "invalid_area"),
        ({"window_start": "2026-11-25T09:00:00"}, "validation_error"),  # no time zone
    ],
)  # fmt: skip
async def test_bad_warrants_are_refused_with_a_specific_code(
    people: Cast, app: FastAPI, changes: dict[str, Any], code: str
) -> None:
    changes = dict(changes)
    scope = changes.pop("scope", [address_item("12 Elm Street")])
    refused = await file_warrant(people.officer_client, people.agency_id, scope, **changes)
    assert_error(refused, 422 if code == "validation_error" else 400, code)
    await nothing_left(app)


@pytest.mark.parametrize(
    ("document", "content_type", "status", "code"),
    [
        (b"just some text, not a PDF", "application/pdf", 415, "not_a_pdf"),
        (b"%PDF-1.4 garbage without structure %%EOF", "application/pdf", 415, "not_a_pdf"),
        (pdf_bytes("image"), "image/png", 415, "unsupported_media_type"),
        (b"", "application/pdf", 415, "not_a_pdf"),
    ],
)
async def test_documents_must_be_real_pdfs(
    people: Cast, app: FastAPI, document: bytes, content_type: str, status: int, code: str
) -> None:
    details = warrant_details([address_item("12 Elm Street")])
    refused = await file_with_documents(
        people.officer_client,
        people.agency_id,
        "warrants",
        details,
        document=document,
        document_type=content_type,
    )
    assert_error(refused, status, code)
    await nothing_left(app)


async def test_a_missing_or_malformed_details_part_is_refused(people: Cast, app: FastAPI) -> None:
    url = f"/api/v1/agencies/{people.agency_id}/requests/warrants"
    files = {"document": ("w.pdf", pdf_bytes(), "application/pdf")}
    no_details = await people.officer_client.post(url, files=files)
    assert_error(no_details, 422, "validation_error")
    not_json = await people.officer_client.post(url, data={"details": "{oops"}, files=files)
    assert_error(not_json, 400, "invalid_input")
    not_an_object = await people.officer_client.post(url, data={"details": "[1]"}, files=files)
    assert_error(not_an_object, 422, "validation_error")
    as_json = await people.officer_client.post(url, json={"details": {}})
    assert as_json.status_code in (400, 422), as_json.text
    await nothing_left(app)


@pytest.fixture
def settings(settings: Any) -> Any:
    # Small documents, so an oversized one fits under the request-body limit.
    return settings.model_copy(update={"legal_document_max_bytes": 20_000})


async def test_an_oversized_document_is_refused(people: Cast, app: FastAPI) -> None:
    big = pdf_bytes("big", pages=1).replace(b"%%EOF", b"% " + b"x" * 30_000 + b"\n%%EOF")
    details = warrant_details([address_item("12 Elm Street")])
    refused = await file_with_documents(
        people.officer_client, people.agency_id, "warrants", details, document=big
    )
    assert_error(refused, 413, "document_too_large")
    # Far beyond even the form's limit: refused before the body is read.
    huge = await file_with_documents(
        people.officer_client, people.agency_id, "warrants", details, document=b"%PDF" * 300_000
    )
    assert_error(huge, 413, "payload_too_large")
    await nothing_left(app)


async def test_a_duplicate_and_a_replayed_document_are_refused(people: Cast, app: FastAPI) -> None:
    document = pdf_bytes("The one warrant")
    first = await file_warrant(
        people.officer_client, people.agency_id, [address_item("12 Elm St")], document=document,
        case_number="CR-1",
    )  # fmt: skip
    assert first.status_code == 201, first.text
    again = await file_warrant(
        people.officer_client, people.agency_id, [address_item("12 Elm St")], case_number="CR-1"
    )
    assert_error(again, 409, "duplicate_request")
    replayed = await file_warrant(
        people.officer_client, people.agency_id, [address_item("14 Elm St")], document=document,
        case_number="CR-2",
    )  # fmt: skip
    assert_error(replayed, 409, "document_replayed")
    async with app.state.sessionmaker() as db:
        assert await db.scalar(select(func.count()).select_from(LegalRequest)) == 1


async def test_concurrent_identical_filings_make_one_request(people: Cast, app: FastAPI) -> None:
    """A double-clicked form or a retried API call: one request, the rest refused."""
    details = warrant_details([address_item("12 Elm St")], case_number="CR-RACE")
    results = await asyncio.gather(
        *(
            file_with_documents(
                people.officer_client,
                people.agency_id,
                "warrants",
                details,
                document=pdf_bytes(f"copy {n}"),
            )
            for n in range(5)
        )
    )
    codes = sorted(r.status_code for r in results)
    assert codes == [201, 409, 409, 409, 409], [r.text for r in results]
    async with app.state.sessionmaker() as db:
        assert await db.scalar(select(func.count()).select_from(LegalRequest)) == 1
        assert await db.scalar(select(func.count()).select_from(LegalDocument)) == 2


async def test_an_officer_files_only_for_their_own_agency(
    people: Cast, factory: Factory, app: FastAPI
) -> None:
    other = await factory.agency_in_good_standing(people.admin, "Otherton Police")
    refused = await file_warrant(people.officer_client, other, [address_item("12 Elm St")])
    assert_error(refused, 403, "wrong_agency")
    mine = await file_warrant(people.officer_client, people.agency_id, [address_item("1 A St")])
    other_officer = await factory.signed_in(
        await factory.user(Role.agency_officer, agency_id=other)
    )
    # Another agency's request is not found under its own path, nor reachable under ours.
    rid = mine.json()["id"]
    assert_error(await other_officer.get(f"/api/v1/agencies/{other}/requests/{rid}"), 404)
    assert_error(
        await other_officer.get(f"/api/v1/agencies/{people.agency_id}/requests/{rid}"), 403
    )
    await other_officer.aclose()


async def test_an_agency_not_in_good_standing_can_do_nothing(
    people: Cast, factory: Factory, clock: ManualClock
) -> None:
    unverified = await factory.agency(people.admin, "Unverified Police")
    officer = await factory.signed_in(await factory.user(Role.agency_officer, agency_id=unverified))
    refused = await file_warrant(officer, unverified, [address_item("12 Elm St")])
    assert_error(refused, 403, "agency_unverified")
    # Verified, but no municipal approval on file.
    verified = await people.admin_client.post(f"/api/v1/agencies/{unverified}/verify")
    assert verified.status_code == 200 and verified.json()["standing"] == "no_approval"
    refused = await file_warrant(officer, unverified, [address_item("12 Elm St")])
    assert_error(refused, 403, "agency_no_approval")
    # Officers may still read their agency and their (empty) list of requests.
    assert (await officer.get(f"/api/v1/agencies/{unverified}/requests")).json() == []
    await officer.aclose()
    # The good agency loses its standing when its approval is revoked.
    [approval] = (
        await people.admin_client.get(f"/api/v1/agencies/{people.agency_id}/approvals")
    ).json()
    revoked = await people.admin_client.post(
        f"/api/v1/agencies/{people.agency_id}/approvals/{approval['id']}/revoke"
    )
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    refused = await file_warrant(people.officer_client, people.agency_id, [address_item("1 A")])
    assert_error(refused, 403, "agency_no_approval")


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"attest_imminent_danger": False}, "attestation_required"),
        ({"window_start": iso(at(0)), "window_end": iso(at(25))}, "window_too_long"),
        ({"scope": [{"kind": "address", "address": f"{n} Elm St"} for n in range(4)]},
         "scope_too_broad"),
        ({"scope": [{"kind": "area", "area": {"type": "Polygon", "coordinates": [[
            [-0.11, 51.49], [-0.09, 51.49], [-0.09, 51.51], [-0.11, 51.49]]]}}]},
         "scope_too_broad"),
        ({"description": "too short"}, "validation_error"),
    ],
)  # fmt: skip
async def test_bad_emergencies_are_refused(
    people: Cast, app: FastAPI, changes: dict[str, Any], code: str
) -> None:
    body = {
        "case_number": "EM-1",
        "description": "A child was seen being taken into a van outside 12 Elm Street; "
        "the van's plate may be on the door camera.",
        "attest_imminent_danger": True,
        "scope": [address_item("12 Elm Street")],
        "window_start": iso(at(9)),
        "window_end": iso(at(12)),
        **changes,
    }
    refused = await people.officer_client.post(
        f"/api/v1/agencies/{people.agency_id}/requests/emergencies", json=body
    )
    assert_error(refused, 422 if code == "validation_error" else 400, code)
    await nothing_left(app)


async def test_a_nondisclosure_order_delays_every_notice(
    people: Cast, factory: Factory, clock: ManualClock
) -> None:
    elm = await home(factory, "12 Elm Street")
    until = clock.now() + timedelta(days=30)
    details = warrant_details([device_item(elm.camera.id)], nondisclosure_until=until.isoformat())
    filed = await file_with_documents(
        people.officer_client,
        people.agency_id,
        "warrants",
        details,
        document=pdf_bytes("warrant under seal"),
        nondisclosure=pdf_bytes("non-disclosure order"),
    )
    assert filed.status_code == 201, filed.text
    assert filed.json()["nondisclosure_until"] is not None
    view = await legal_view(elm.client, elm.household_id)
    assert view["notices"] == [] and view["requests"] == []
    # The household's own activity trail does not give it away either.
    trail = await elm.client.get(f"/api/v1/households/{elm.household_id}/audit-events")
    assert trail.status_code == 200, trail.text
    assert not [e for e in trail.json() if e["tag"].startswith("legal:")]
    async with factory.app.state.sessionmaker() as db:
        [notice] = (await db.scalars(select(Notice))).all()
        assert notice.delivered_at is None and notice.deliver_after == until


async def test_scope_by_household_and_camera_resolves_to_cameras(
    people: Cast, factory: Factory, app: FastAPI
) -> None:
    elm = await home(factory, "12 Elm Street")
    oak = await home(factory, "3 Oak Road")
    scope = [
        {"kind": "household", "id": str(elm.household_id)},
        device_item(oak.camera.id),
        device_item(uuid.uuid4()),  # unknown: resolves to nothing, quietly
    ]
    filed = await file_warrant(people.officer_client, people.agency_id, scope)
    assert filed.status_code == 201, filed.text
    detail = await people.reviewer_client.get(f"/api/v1/review/requests/{filed.json()['id']}")
    assert detail.status_code == 200, detail.text
    cameras = {t["device_id"] for t in detail.json()["targets"]}
    assert cameras == {str(elm.camera.id), str(oak.camera.id)}
    # The details part is echoed as named, never as resolved.
    assert json.dumps(filed.json()["scope"]).count(str(elm.household_id)) == 1


async def test_a_stored_document_goes_when_its_transaction_rolls_back(
    people: Cast, app: FastAPI, clock: ManualClock
) -> None:
    """What the store holds only means something through its row: a transaction that
    fails after storing a document (or a package) removes it again; one that commits
    keeps it even if the session rolls back later."""
    store = app.state.clip_store

    async def stored_document(commit: bool) -> str:
        async with app.state.sessionmaker() as db:
            document = await documents.store_document(
                db,
                store,
                agency_id=people.agency_id,
                kind=DocumentKind.warrant,
                data=pdf_bytes(f"rolled back {commit}"),
                filename="w.pdf",
                pages=1,
                actor=actor_of(people.officer),
                ctx=CTX,
                now=clock.now(),
            )
            assert await store.exists(document.object_key)
            if commit:
                await db.commit()
            await db.rollback()
            await run_rollback_cleanups(db)
            return document.object_key

    assert not await store.exists(await stored_document(commit=False))
    assert await store.exists(await stored_document(commit=True))
