"""Issue 16, item 1: a non-disclosure order longer than the instance's maximum is refused
at filing, and every delayed notice is public as a count with the day its order ends,
never with its household."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI

from doorwarden.clock import ManualClock
from tests.factories import Factory, assert_error, make_client
from tests.legal_flow import (
    Cast,
    cast,
    decide,
    device_item,
    file_with_documents,
    home,
    warrant_details,
)
from tests.pdfs import pdf_bytes


@pytest.fixture
async def people(factory: Factory) -> AsyncIterator[Cast]:
    made = await cast(factory)
    yield made
    await made.close()


async def test_an_order_past_the_maximum_is_refused_and_delayed_notices_are_listed(
    people: Cast, factory: Factory, app: FastAPI, clock: ManualClock
) -> None:
    target = await home(factory, "12 Elm Street")
    scope = [device_item(target.camera.id)]

    async def file(days: int, name: str) -> httpx.Response:
        until = clock.now() + timedelta(days=days)
        return await file_with_documents(
            people.officer_client,
            people.agency_id,
            "warrants",
            warrant_details(scope, nondisclosure_until=until.isoformat()),
            document=pdf_bytes(f"Warrant {name}"),
            nondisclosure=pdf_bytes(f"Order {name}"),
        )

    refused = await file(365, "a year")
    error = assert_error(refused, 400, "nondisclosure_too_long")
    assert "180 days" in str(error["message"])
    filed = await file(179, "within")
    assert filed.status_code == 201, filed.text
    approved = await decide(
        people.reviewer_client,
        filed.json()["id"],
        "approve",
        {"attest": ["signed", "nondisclosure"]},
    )
    assert approved.status_code == 200, approved.text

    ends_on = (clock.now() + timedelta(days=179)).date().isoformat()
    async with make_client(app) as anyone:
        report = (await anyone.get("/api/v1/transparency/report")).json()
        listed = report["notices"]["delayed_until"]
        assert listed and all(set(row) == {"ends_on", "notices"} for row in listed)
        assert sum(row["notices"] for row in listed) == report["notices"]["delayed"]
        assert [row["ends_on"] for row in listed] == [ends_on]
        text = (await anyone.get("/api/v1/transparency/report.csv")).text
        rows = [
            r for r in csv.reader(io.StringIO(text)) if r[:3] == ["notices", "", "delayed_until"]
        ]
        assert [r[3] for r in rows] == [ends_on]
        page = (await anyone.get("/transparency/report")).text
        assert "When the delayed notices go out" in page and ends_on in page
        for body in (str(report), text, page):
            assert str(target.household_id) not in body
            assert "Elm Street" not in body
