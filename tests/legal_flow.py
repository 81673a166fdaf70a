"""The legal process driven through the API as agencies, reviewers and residents drive
it: the people, homes with cameras and clips at known times, and filing each kind."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx

from doorwarden.accounts.models import User
from doorwarden.crypto.manifest import GENESIS
from doorwarden.households import service as households
from doorwarden.roles import Role
from tests.factories import CTX, Camera, Factory
from tests.pdfs import pdf_bytes
from tests.sealed_clips import Sealed, seal_clip, upload

# Clips are recorded on this morning (the test clock is later than this).
DAY = datetime.fromisoformat("2026-11-25T00:00:00+00:00")


def at(hour: float) -> datetime:
    return DAY + timedelta(hours=hour)


def iso(moment: datetime) -> str:
    return moment.isoformat()


@dataclass
class Home:
    owner: User
    household_id: uuid.UUID
    address: str
    camera: Camera
    client: httpx.AsyncClient  # the owner, signed in
    clips: list[Sealed] = field(default_factory=list)


@dataclass
class Cast:
    factory: Factory
    admin: User
    reviewer: User
    officer: User
    agency_id: uuid.UUID
    officer_client: httpx.AsyncClient
    reviewer_client: httpx.AsyncClient
    admin_client: httpx.AsyncClient

    async def close(self) -> None:
        for client in (self.officer_client, self.reviewer_client, self.admin_client):
            await client.aclose()


async def cast(factory: Factory) -> Cast:
    admin = await factory.user(Role.operator_admin)
    agency_id = await factory.agency_in_good_standing(admin, "Testshire Police")
    officer = await factory.user(Role.agency_officer, agency_id=agency_id)
    reviewer = await factory.user(Role.legal_reviewer)
    return Cast(
        factory,
        admin,
        reviewer,
        officer,
        agency_id,
        await factory.signed_in(officer),
        await factory.signed_in(reviewer),
        await factory.signed_in(admin),
    )


async def cast_with_tokens(factory: Factory) -> Cast:
    """The cast, each with an API token instead of a session: sessions end when a test
    moves the clock weeks on, tokens without an expiry do not."""
    made = await cast(factory)
    await made.close()
    made.officer_client = await factory.with_token(made.officer)
    made.reviewer_client = await factory.with_token(made.reviewer)
    made.admin_client = await factory.with_token(made.admin)
    return made


async def home(
    factory: Factory,
    address: str,
    *,
    latitude: float = 51.5,
    longitude: float = -0.1,
    clip_hours: tuple[float, ...] = (10.0, 11.0),
) -> Home:
    """A household at `address` with one camera and clips recorded at `clip_hours`."""
    owner = await factory.user()
    async with factory.app.state.sessionmaker.begin() as db:
        household = await households.create_household(
            db,
            owner=owner,
            name=f"Home at {address}",
            address=address,
            latitude=latitude,
            longitude=longitude,
            time_zone="UTC",
            ctx=CTX,
        )
    camera = await factory.camera(owner, household.id)
    made = Home(owner, household.id, address, camera, await factory.signed_in(owner))
    previous = GENESIS
    for sequence, hour in enumerate(clip_hours):
        sealed = seal_clip(
            camera.id,
            camera.key,
            camera.recipients,
            sequence,
            previous,
            size=40_000,
            start=at(hour).isoformat(timespec="milliseconds"),
        )
        done = await upload(camera.client, sealed)
        assert done.status_code == 200, done.text
        previous = sealed.digest
        made.clips.append(sealed)
    return made


@asynccontextmanager
async def homes_with_tokens(factory: Factory) -> AsyncIterator[Callable[..., Awaitable[Home]]]:
    """Make homes (`home`) whose owners' clients hold an API token, closed at the end."""
    made: list[Home] = []

    async def make(address: str, **changes: Any) -> Home:
        found = await home(factory, address, **changes)
        await found.client.aclose()
        found.client = await factory.with_token(found.owner)
        made.append(found)
        return found

    try:
        yield make
    finally:
        for found in made:
            await found.client.aclose()


def warrant_details(scope: list[dict[str, Any]], **changes: Any) -> dict[str, Any]:
    details: dict[str, Any] = {
        "case_number": f"CR-{uuid.uuid4().hex[:8]}",
        "issuing_court": "Testshire Crown Court",
        "judge": "Judge Able",
        "signed_on": "2026-11-26",
        "expires_at": "2027-01-31T00:00:00+00:00",
        "scope": scope,
        "window_start": iso(at(9)),
        "window_end": iso(at(12)),
        "justification": "Burglary at 12 Elm Street on the morning of 25 November.",
    }
    details.update(changes)
    return details


async def file_with_documents(
    client: httpx.AsyncClient,
    agency_id: uuid.UUID,
    kind: str,
    details: dict[str, Any],
    *,
    document: bytes | None = None,
    document_type: str = "application/pdf",
    nondisclosure: bytes | None = None,
) -> httpx.Response:
    """POST a warrant, subpoena or preservation as multipart (details JSON + PDFs)."""
    files: dict[str, Any] = {}
    if document is not None:
        files["document"] = ("warrant.pdf", document, document_type)
    if nondisclosure is not None:
        files["nondisclosure_order"] = ("order.pdf", nondisclosure, "application/pdf")
    return await client.post(
        f"/api/v1/agencies/{agency_id}/requests/{kind}",
        data={"details": json.dumps(details)},
        files=files or None,
    )


async def file_warrant(
    client: httpx.AsyncClient,
    agency_id: uuid.UUID,
    scope: list[dict[str, Any]],
    *,
    document: bytes | None = None,
    **changes: Any,
) -> httpx.Response:
    details = warrant_details(scope, **changes)
    pdf = document if document is not None else pdf_bytes(f"Warrant {details['case_number']}")
    return await file_with_documents(client, agency_id, "warrants", details, document=pdf)


def address_item(address: str) -> dict[str, str]:
    return {"kind": "address", "address": address}


def device_item(device_id: uuid.UUID) -> dict[str, str]:
    return {"kind": "device", "id": str(device_id)}


async def decide(
    reviewer: httpx.AsyncClient, request_id: str, verb: str, body: dict[str, Any]
) -> httpx.Response:
    return await reviewer.post(f"/api/v1/review/requests/{request_id}/{verb}", json=body)


async def legal_view(client: httpx.AsyncClient, household_id: uuid.UUID) -> dict[str, Any]:
    response = await client.get(f"/api/v1/households/{household_id}/legal")
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]
