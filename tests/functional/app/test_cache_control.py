"""API answers about someone (their account, homes, clips, legal requests, the session's
CSRF token, a camera's device token) must not be kept by a browser or a shared cache:
every /api/ answer says `Cache-Control: no-store`, errors included, except the public
reads whose answer is the same for everyone (the log, the transparency report, published
approvals and programmes, the OpenAPI document)."""

from __future__ import annotations

import re
import uuid

import httpx
from fastapi import FastAPI

from doorwarden.middleware import PUBLIC_READS
from doorwarden.roles import Role
from tests.factories import PASSWORD, Factory
from tests.functional.app.route_inventory import inventory


def _no_store(response: httpx.Response) -> bool:
    return "no-store" in response.headers.get("cache-control", "")


async def test_every_private_api_read_says_no_store(app: FastAPI, factory: Factory) -> None:
    owner = await factory.user()
    home = await factory.household(owner)
    admin = await factory.user(Role.operator_admin)
    agency = await factory.agency_in_good_standing(admin, "Cache Police")
    officer = await factory.user(Role.agency_officer, agency_id=agency)
    ids = {"household_id": home, "agency_id": agency, "user_id": owner.id}
    callers = [
        await factory.with_token(owner),
        await factory.with_token(admin),
        await factory.with_token(officer),
        await factory.signed_in(owner),
    ]
    routes, _ = inventory(app)
    checked = 0
    for route in routes:
        if route.method != "GET" or not route.path.startswith("/api/"):
            continue
        path = re.sub(r"\{(\w+)\}", lambda m: str(ids.get(m.group(1), uuid.uuid4())), route.path)
        public = set(route.actions) <= PUBLIC_READS
        for caller in callers:
            response = await caller.get(path)
            if public and response.status_code == 200:
                assert not _no_store(response), (path, response.headers)
            elif not public:
                assert _no_store(response), (path, response.status_code, response.headers)
                checked += 1
    assert checked > 40


async def test_sign_in_pairing_and_errors_say_no_store(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    anonymous = [
        await client.get("/api/v1/account"),  # 401
        await client.post("/api/v1/devices/pair", json={"code": "x"}),  # 422
        await client.get("/api/v1/no-such-thing"),  # 404: no policy decision made
        await client.post("/api/v1/session", content=b"x" * 2_000_000),  # 413: never ran
    ]
    assert [r.status_code for r in anonymous] == [401, 422, 404, 413]
    user = await factory.user()
    signed_in = await client.post(
        "/api/v1/session", json={"email": user.email, "password": PASSWORD}
    )
    assert signed_in.status_code == 200 and "csrf_token" in signed_in.json()
    households = await client.get("/api/v1/households")
    assert households.status_code == 200
    for response in [*anonymous, signed_in, households]:
        assert _no_store(response), (response.request.url, response.status_code)


async def test_public_reads_stay_cacheable_and_pages_are_unchanged(
    client: httpx.AsyncClient,
) -> None:
    for path in (
        "/api/v1/transparency/report",
        "/api/v1/log/checkpoint",
        "/api/v1/log/key",
        "/api/v1/openapi.json",
        "/api/v1/programmes",
    ):
        response = await client.get(path)
        assert response.status_code == 200, (path, response.text)
        assert not _no_store(response), path
    assert _no_store(await client.get("/login"))  # pages: as before (web/render.py)
