"""Every JSON body the API accepts, sent hostile, against a real server: JSON bodies (each
operation in the OpenAPI document), the `details` part of every multipart form, and a
camera's signed manifest. Each is sent whole as a hostile document (nested past the
recursion limit, unclosed, huge numbers, NaN, lone surrogates) and as an ordinary body
with each value in it, at any depth, replaced by one: none may be answered with a 5xx.

Bounded for CI: one base body per operation (schemathesis' first example, no shrinking),
each value to a depth of three: about 2,500 requests, ~20 s on a 2-core machine."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from doorwarden.accounts.sessions import SESSION_COOKIE
from doorwarden.agencies.governance.schemas import ApprovalIn
from doorwarden.config import Settings
from doorwarden.legal.requests.kinds import KINDS
from doorwarden.legal.requests.schemas import ProofIn
from doorwarden.roles import Role
from tests.factories import Factory, assert_error
from tests.functional.app.hostile_json import hostile_bodies
from tests.legal_flow import address_item, file_warrant, warrant_details
from tests.live_server import running_server
from tests.pdfs import pdf_bytes
from tests.sealed_clips import seal_clip

# Who sends each operation's body: someone the policy lets through, so that the body is
# validated and, where it passes, reaches the service.
CALLERS = [
    (r"^/api/v1/(accounts|session|devices/pair)", None),
    (r"^/api/v1/agencies/\{agency_id\}/requests", "officer"),
    (r"^/api/v1/review/", "reviewer"),
    (r"^/api/v1/account/", "owner, signed in"),  # interactive: a token may not change these
    (r"^/api/v1/(admin|agencies|policy)", "admin"),
    (r"^/api/v1/", "owner"),
]
# The models of the multipart forms' `details` parts (documented only as a string).
DETAILS = {kind.path: kind.schema for kind in KINDS.values() if kind.multipart} | {
    "proof": ProofIn,
    "approvals": ApprovalIn,
}


@pytest.fixture
async def world(factory: Factory) -> dict[str, Any]:
    """People with tokens, and the ids the operations' paths name, made in-process on the
    test's database (the live server then serves that same database)."""
    owner = await factory.user()
    home = await factory.household(owner)
    camera = await factory.camera(owner, home)
    admin = await factory.user(Role.operator_admin)
    agency = await factory.agency_in_good_standing(admin, "Hostile JSON Police")
    officer = await factory.user(Role.agency_officer, agency_id=agency)
    officer_client = await factory.with_token(officer)
    filed = await file_warrant(officer_client, agency, [address_item("12 Elm Street")])
    assert filed.status_code == 201, filed.text
    spare = await factory.user()  # the admin's PATCH acts on a user nobody here needs
    sealed = seal_clip(camera.id, camera.key, camera.recipients, 0, size=10_000)
    browser = await factory.signed_in(owner)
    cookie = browser.cookies[SESSION_COOKIE]
    return {
        "session": {
            "cookie": f"{SESSION_COOKIE}={cookie}",
            "x-csrf-token": browser.headers["x-csrf-token"],
        },
        "tokens": {
            "owner": await factory.api_token(owner),
            "officer": await factory.api_token(officer),
            "reviewer": await factory.api_token(await factory.user(Role.legal_reviewer)),
            "admin": await factory.api_token(admin),
            "camera": camera.client.headers["authorization"].removeprefix("Bearer "),
        },
        "ids": {
            "household_id": home,
            "agency_id": agency,
            "request_id": filed.json()["id"],
            "device_id": camera.id,
            "user_id": spare.id,
        },
        "manifest": json.loads(sealed.manifest),
    }


@pytest.fixture
def live(settings: Settings, world: dict[str, Any]) -> Iterator[str]:
    del world  # made first, through the in-process app
    with running_server(settings) as base_url:
        yield base_url


def _base_bodies(schema: Any) -> dict[tuple[str, str], Any]:
    """One body per operation with a request body: schemathesis' first example."""
    bodies: dict[tuple[str, str], Any] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        if not operation.body:
            continue

        @given(case=operation.as_strategy())
        @settings(
            max_examples=1,
            phases=[Phase.generate],
            database=None,
            derandomize=True,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        def first(case: schemathesis.Case) -> None:
            bodies[(case.operation.method.upper(), case.operation.path)] = case.body

        first()
    return bodies


def _headers(world: dict[str, Any], who: str | None) -> dict[str, str]:
    if who is None:
        return {}
    if who == "owner, signed in":
        return dict(world["session"])
    return {"authorization": f"Bearer {world['tokens'][who]}"}


def _requests(
    world: dict[str, Any], openapi: dict[str, Any], bodies: dict[Any, Any]
) -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    """(operation, what, method, httpx request arguments) for every hostile body."""
    components = openapi["components"]["schemas"]
    for path, operations in openapi["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            if not content:
                continue
            url = re.sub(r"\{(\w+)\}", lambda m: str(world["ids"].get(m[1], uuid.uuid4())), path)
            who = next(w for pattern, w in CALLERS if re.match(pattern, path))
            headers = _headers(world, who)
            name = f"{method.upper()} {path}"
            schema = next(iter(content.values()))["schema"]
            schema = components[schema["$ref"].rsplit("/", 1)[1]] if "$ref" in schema else schema
            if "application/json" in content:
                base = bodies.get((method.upper(), path))
                keys = list(schema.get("properties", {}))
                for what, text in hostile_bodies(base, keys):
                    yield (
                        name,
                        what,
                        method,
                        {
                            "url": url,
                            "content": text.encode(),
                            "headers": headers | {"content-type": "application/json"},
                        },
                    )
            else:  # multipart: a `details` JSON part, PDFs for the file parts
                model = DETAILS[path.rsplit("/", 1)[1]]
                files = {
                    part: ("d.pdf", pdf_bytes(), "application/pdf")
                    for part in schema.get("properties", {})
                    if part != "details"
                }
                base = (
                    warrant_details([address_item("12 Elm Street")])
                    if path.endswith("/warrants")
                    else {}
                )
                for what, text in hostile_bodies(base, model.model_json_schema()["properties"]):
                    yield (
                        name,
                        f"details: {what}",
                        method,
                        {
                            "url": url,
                            "data": {"details": text},
                            "files": files,
                            "headers": headers,
                        },
                    )
    for what, text in hostile_bodies(world["manifest"]):
        yield (
            "PUT /api/v1/device/clips/{sequence}",
            what,
            "PUT",
            {
                "url": "/api/v1/device/clips/0",
                "content": text.encode(),
                "headers": _headers(world, "camera"),
            },
        )


def test_no_json_body_the_api_accepts_fails_the_server(world: dict[str, Any], live: str) -> None:
    with httpx.Client(base_url=live, timeout=30) as client:
        openapi = client.get("/api/v1/openapi.json").json()
        bodies = _base_bodies(schemathesis.openapi.from_dict(openapi))
        failures: list[str] = []
        sent = 0
        operations = set()
        for operation, what, method, arguments in _requests(world, openapi, bodies):
            url = arguments.pop("url")
            try:
                response = client.request(method, url, **arguments)
            except httpx.HTTPError as exc:
                failures.append(f"{operation} [{what}]: {type(exc).__name__}")
                continue
            sent += 1
            operations.add(operation)
            if response.status_code >= 500:
                failures.append(f"{operation} [{what}]: {response.status_code} {response.text}")
    assert not failures, "\n".join(failures[:30])
    # Every JSON and multipart body in the document, and the manifest, was exercised.
    assert len(operations) == len(bodies) + 1
    assert sent > 2000


async def test_a_json_body_nested_too_deep_is_refused_before_it_is_parsed(
    factory: Factory,
) -> None:
    """Found by the test above: an agency's jurisdiction (a GeoJSON object, any dict)
    300 levels deep passed validation and broke pydantic's serializer (a 500). No JSON
    body deeper than the limit reaches the app now, whatever its fields' types."""
    admin = await factory.user(Role.operator_admin)
    agency = await factory.agency(admin, "Deep Police")
    client = await factory.with_token(admin)
    deep = '{"jurisdiction_area": ' + '{"type":' * 300 + "1" + "}" * 300 + "}"
    response = await client.patch(
        f"/api/v1/agencies/{agency}", content=deep, headers={"content-type": "application/json"}
    )
    error = assert_error(response, 400, "json_too_deep")
    assert error["details"] == {"max_depth": 32}
    # Within the limit, the same field is the service's to judge, as before.
    shallow = '{"jurisdiction_area": ' + '{"type":' * 5 + "1" + "}" * 5 + "}"
    response = await client.patch(
        f"/api/v1/agencies/{agency}", content=shallow, headers={"content-type": "application/json"}
    )
    assert 400 <= response.status_code < 500, response.text
    assert assert_error(response, response.status_code)["code"] != "json_too_deep"
