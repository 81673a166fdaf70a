"""Forms that carry legal documents may be ~20 MiB, but only for someone the policy lets
file there: the caller is authenticated and asked before a byte of the body is read.
Anyone else gets their 401/403 at once (or 413 past the ordinary limit), and the server
neither reads nor parses the multipart body they sent."""

from __future__ import annotations

import asyncio
import io
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pypdf import PdfWriter
from starlette import formparsers

from doorwarden.config import Settings
from doorwarden.deps import DOCUMENT_ACTIONS
from doorwarden.middleware import DOCUMENT_PATH
from doorwarden.roles import Role
from tests.factories import Factory, assert_error
from tests.functional.app.route_inventory import inventory
from tests.legal_flow import address_item, file_with_documents, warrant_details
from tests.live_server import running_server
from tests.pdfs import pdf_bytes

MiB = 1024 * 1024


class Pulled:
    """A multipart body sent in blocks, counting what the server asked for."""

    def __init__(self, size: int) -> None:
        self.boundary = "gatetest" + uuid.uuid4().hex
        head = (
            f"--{self.boundary}\r\n"
            'Content-Disposition: form-data; name="details"\r\n\r\n{}\r\n'
            f"--{self.boundary}\r\n"
            'Content-Disposition: form-data; name="document"; filename="w.pdf"\r\n'
            "Content-Type: application/pdf\r\n\r\n"
        ).encode()
        tail = f"\r\n--{self.boundary}--\r\n".encode()
        self.parts = [head, *([b"%" * (256 * 1024)] * (size // (256 * 1024))), tail]
        self.length = sum(len(p) for p in self.parts)
        self.bytes_pulled = 0

    @property
    def headers(self) -> dict[str, str]:
        return {"content-type": f"multipart/form-data; boundary={self.boundary}"}

    async def stream(self) -> AsyncIterator[bytes]:
        for part in self.parts:
            self.bytes_pulled += len(part)
            yield part


@pytest.fixture
def multipart_parses(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times the server parsed a multipart body."""
    calls: list[int] = []
    original = formparsers.MultiPartParser.parse

    async def counted(self: formparsers.MultiPartParser) -> Any:
        calls.append(1)
        return await original(self)

    monkeypatch.setattr(formparsers.MultiPartParser, "parse", counted)
    return calls


async def _agency_and_people(factory: Factory) -> tuple[uuid.UUID, dict[str, httpx.AsyncClient]]:
    admin = await factory.user(Role.operator_admin)
    agency = await factory.agency_in_good_standing(admin, "Gate Police")
    other = await factory.agency_in_good_standing(admin, "Other Police")
    officer = await factory.user(Role.agency_officer, agency_id=agency)
    stranger = await factory.user(Role.agency_officer, agency_id=other)
    resident = await factory.user()
    return agency, {
        "officer": await factory.with_token(officer),
        "officer of another agency": await factory.with_token(stranger),
        "resident": await factory.with_token(resident),
        "resident, signed in": await factory.signed_in(resident),
        "reviewer": await factory.with_token(await factory.user(Role.legal_reviewer)),
    }


PATHS = [
    "/api/v1/agencies/{agency}/requests/warrants",
    "/api/v1/agencies/{agency}/requests/{request}/proof",
    "/api/v1/agencies/{agency}/approvals",
    "/agencies/{agency}/requests/new/warrant",
]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("declared", [True, False])
async def test_without_a_session_a_large_document_form_is_refused_unread(
    client: httpx.AsyncClient,
    factory: Factory,
    multipart_parses: list[int],
    path: str,
    declared: bool,
) -> None:
    agency, _ = await _agency_and_people(factory)
    body = Pulled(15 * MiB)
    headers = body.headers | ({"content-length": str(body.length)} if declared else {})
    url = path.format(agency=agency, request=uuid.uuid4())
    started = time.perf_counter()
    response = await client.post(url, content=body.stream(), headers=headers)
    assert response.status_code in (401, 413), response.text
    if path.startswith("/api/"):
        assert_error(response, response.status_code)
    # Nothing of the body was read past the ordinary limit, nothing of it was parsed.
    assert body.bytes_pulled <= 1 * MiB + 256 * 1024, body.bytes_pulled
    assert multipart_parses == []
    assert time.perf_counter() - started < 5


@pytest.mark.parametrize("path", PATHS)
async def test_a_small_document_form_without_a_session_is_401_before_it_is_parsed(
    client: httpx.AsyncClient, factory: Factory, multipart_parses: list[int], path: str
) -> None:
    agency, _ = await _agency_and_people(factory)
    url = path.format(agency=agency, request=uuid.uuid4())
    response = await client.post(
        url, data={"details": "{}"}, files={"document": ("w.pdf", pdf_bytes(), "application/pdf")}
    )
    assert response.status_code == 401, response.text
    if path.startswith("/api/"):
        assert_error(response, 401, "not_authenticated")
    assert multipart_parses == []


@pytest.mark.parametrize(
    "who",
    ["officer of another agency", "resident", "resident, signed in", "reviewer"],
)
async def test_staff_and_residents_who_may_not_file_are_refused_unread(
    factory: Factory, multipart_parses: list[int], who: str
) -> None:
    agency, people = await _agency_and_people(factory)
    for path in PATHS:
        body = Pulled(15 * MiB)
        response = await people[who].post(
            path.format(agency=agency, request=uuid.uuid4()),
            content=body.stream(),
            headers=body.headers | {"content-length": str(body.length)},
        )
        if path.startswith("/api/"):
            assert_error(response, 403)
        else:  # the page's own error page, as the route would render it
            assert response.status_code == 403 and "text/html" in response.headers["content-type"]
        assert body.bytes_pulled == 0
    assert multipart_parses == []


def _large_pdf(size: int) -> bytes:
    writer = PdfWriter()
    writer.add_blank_page(width=612, height=792)
    writer.add_metadata({"/Title": "Warrant", "/Subject": "x" * size})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


async def test_the_officer_still_files_a_document_larger_than_the_ordinary_limit(
    factory: Factory, settings: Settings
) -> None:
    agency, people = await _agency_and_people(factory)
    pdf = _large_pdf(3 * MiB)
    assert settings.max_body_bytes < len(pdf) < settings.legal_document_max_bytes
    details = warrant_details([address_item("12 Elm Street")])
    filed = await file_with_documents(people["officer"], agency, "warrants", details, document=pdf)
    assert filed.status_code == 201, filed.text
    # And past the document limit, the officer too is refused.
    huge = Pulled(25 * MiB)
    refused = await people["officer"].post(
        f"/api/v1/agencies/{agency}/requests/warrants",
        content=huge.stream(),
        headers=huge.headers | {"content-length": str(huge.length)},
    )
    assert_error(refused, 413, "payload_too_large")


@pytest.fixture
def live(settings: Settings, app: FastAPI) -> Iterator[str]:
    del app  # the database is migrated and the agency made through the in-process app
    with running_server(settings) as base_url:
        yield base_url


async def test_over_a_real_socket_the_refusal_comes_before_the_body_is_sent(
    factory: Factory, live: str
) -> None:
    """The client declares 15 MiB and sends 64 KiB: the 401 arrives without the rest.
    (Before, the server waited for all 15 MiB to parse the form and then said 401.)"""
    agency, _ = await _agency_and_people(factory)
    host, port = live.removeprefix("http://").split(":")
    body = Pulled(15 * MiB)
    head = (
        f"POST /api/v1/agencies/{agency}/requests/warrants HTTP/1.1\r\n"
        f"Host: {host}\r\nContent-Type: {body.headers['content-type']}\r\n"
        f"Content-Length: {body.length}\r\n\r\n"
    ).encode()

    def exchange() -> bytes:
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(head + body.parts[0] + body.parts[1][: 64 * 1024])
            received = b""
            while b"\r\n\r\n" not in received:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
            return received

    answer = await asyncio.wait_for(asyncio.to_thread(exchange), timeout=15)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    # And the connection is not kept for the rest of the body to be read and thrown away.
    assert b"\r\nconnection: close\r\n" in answer.lower()


def test_the_gate_knows_the_action_of_every_route_it_opens_for(app: FastAPI) -> None:
    """Each POST route under DOCUMENT_PATH declares an action the gate asks about: a route
    whose action the gate does not know would refuse its rightful caller at the gate."""
    routes, _ = inventory(app)
    seen = set()
    for route in routes:
        concrete = route.path.replace("{agency_id}", str(uuid.uuid4()))
        match = DOCUMENT_PATH.match(concrete)
        if route.method != "POST" or match is None:
            continue
        seen.add(match["section"])
        assert set(route.actions) <= set(DOCUMENT_ACTIONS[match["section"]]), route
    assert seen == set(DOCUMENT_ACTIONS)
