"""Property-based pass over the whole OpenAPI document (schemathesis + hypothesis), against
a real server over HTTP: whatever is sent, the answer is never a 5xx, and every answer
matches the documented schema (the error shape included)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from doorwarden.config import Settings
from doorwarden.roles import Role
from tests.factories import PASSWORD, Factory
from tests.live_server import running_server

EXAMPLES = 20
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.status_code_conformance,
]


def _token(base_url: str, email: str) -> str:
    with httpx.Client(base_url=base_url) as c:
        assert (
            c.post(
                "/api/v1/accounts",
                json={"email": email, "display_name": "Fuzz", "password": PASSWORD},
            ).status_code
            == 201
        )
        login = c.post("/api/v1/session", json={"email": email, "password": PASSWORD})
        c.headers["x-csrf-token"] = login.json()["csrf_token"]
        home = c.post("/api/v1/households", json={"name": "Fuzz home"})
        assert home.status_code == 201
        token = c.post("/api/v1/account/tokens", json={"name": "fuzz"})
        return str(token.json()["token"])


@pytest.fixture
async def staff_tokens(factory: Factory) -> dict[str, str]:
    """Bearer tokens of an officer of an agency in good standing and of a reviewer: the
    legal routes then run past their policy decision, into validation and the services."""
    admin = await factory.user(Role.operator_admin)
    agency = await factory.agency_in_good_standing(admin, "Fuzz Police")
    officer = await factory.user(Role.agency_officer, agency_id=agency)
    reviewer = await factory.user(Role.legal_reviewer)
    return {
        "officer": await factory.api_token(officer),
        "reviewer": await factory.api_token(reviewer),
        "admin": await factory.api_token(admin),
    }


@pytest.fixture
def live_api(settings: Settings, staff_tokens: dict[str, str]) -> Iterator[dict[str, Any]]:
    # Generous throttles: the fuzzer's many wrong sign-ins must not turn into 429s only.
    relaxed = settings.model_copy(
        update={"login_address_failures": 1000, "login_account_failures": 100}
    )
    with running_server(relaxed) as base_url:
        yield {
            "base_url": base_url,
            "token": _token(base_url, "fuzz-owner@example.org"),
            **staff_tokens,
        }


@pytest.mark.slow
def test_api_never_fails_on_any_input(live_api: dict[str, Any]) -> None:
    # Driven by hand rather than through schemathesis' pytest plugin, which does not run
    # on pytest 9; each operation is its own hypothesis run.
    base_url = live_api["base_url"]
    schema = schemathesis.openapi.from_url(f"{base_url}/api/v1/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20
    bearer = {"Authorization": f"Bearer {live_api['token']}"}
    staff = {
        name: {"Authorization": f"Bearer {live_api[name]}"}
        for name in ("officer", "reviewer", "admin")
    }

    for operation in operations:
        # Staff tokens only where their role gets past the policy: agencies, review, policy.
        path = operation.path
        as_staff = [
            headers
            for name, headers in staff.items()
            if (name == "officer" and path.startswith("/api/v1/agencies/"))
            or (name == "reviewer" and path.startswith("/api/v1/review/"))
            or (name == "admin" and (path.startswith(("/api/v1/agencies", "/api/v1/policy"))))
        ]

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def exercise(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=base_url, checks=CHECKS)
            case.call_and_validate(base_url=base_url, checks=CHECKS, headers=bearer)
            for headers in as_staff:  # noqa: B023 - exercise() runs in this iteration
                case.call_and_validate(base_url=base_url, checks=CHECKS, headers=headers)

        exercise()
