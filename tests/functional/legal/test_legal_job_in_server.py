"""The server runs the legal deadlines itself (`legal_interval_s`): a sealed warrant's
notices go out once its non-disclosure order ends, with nobody calling the job. (The
job's rules, at exact moments, are in test_legal_lifecycle.py.)"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from doorwarden.clock import ManualClock
from doorwarden.config import Settings
from doorwarden.legal.models import Notice
from tests.factories import Factory
from tests.legal_flow import (
    cast,
    decide,
    device_item,
    file_with_documents,
    home,
    iso,
    legal_view,
    warrant_details,
)
from tests.pdfs import pdf_bytes

INTERVAL_S = 0.05


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"legal_interval_s": INTERVAL_S})


async def undelivered(app: FastAPI, request_id: str) -> int:
    async with app.state.sessionmaker() as db:
        query = select(Notice).where(Notice.request_id == uuid.UUID(request_id))
        return sum(n.delivered_at is None for n in (await db.scalars(query)).all())


async def test_the_server_delivers_notices_when_the_order_ends(
    factory: Factory, app: FastAPI, clock: ManualClock
) -> None:
    people = await cast(factory)
    elm = await home(factory, "12 Elm Street")
    await elm.client.aclose()
    # An API token: a signed-in session would end when the clock moves a month on.
    elm.client = await factory.with_token(elm.owner)
    until = clock.now() + timedelta(days=30)
    filed = await file_with_documents(
        people.officer_client,
        people.agency_id,
        "warrants",
        warrant_details([device_item(elm.camera.id)], nondisclosure_until=iso(until)),
        document=pdf_bytes("warrant under seal"),
        nondisclosure=pdf_bytes("non-disclosure order"),
    )
    assert filed.status_code == 201, filed.text
    rid = filed.json()["id"]
    decided = await decide(
        people.reviewer_client, rid, "approve", {"attest": ["signed", "nondisclosure"]}
    )
    assert decided.status_code == 200, decided.text
    # The loop runs many times while the order stands, and delivers nothing.
    await asyncio.sleep(INTERVAL_S * 10)
    assert await undelivered(app, rid) == 2
    assert (await legal_view(elm.client, elm.household_id))["notices"] == []

    clock.advance(until - clock.now())
    deadline = time.monotonic() + 15
    while await undelivered(app, rid):
        assert time.monotonic() < deadline, "the server never delivered the notices"
        await asyncio.sleep(INTERVAL_S)
    notices = (await legal_view(elm.client, elm.household_id))["notices"]
    assert sorted(n["kind"] for n in notices) == ["disclosure", "request"]
    assert all(n["request_id"] == rid for n in notices)
    await people.close()
    await elm.client.aclose()
