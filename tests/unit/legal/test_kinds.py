"""The filing routes made from legal/requests/kinds.py: one per kind, each taking what
its kind files and nothing else, under the names the API has always had (the OpenAPI
operation ids agencies' scripts may use). Checked against a list written out here."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.routing import APIRoute

from doorwarden.legal.models import RequestKind
from doorwarden.legal.requests import actions
from doorwarden.legal.requests.kinds import KINDS
from doorwarden.legal.requests.router import router

PREFIX = "/api/v1/agencies/{agency_id}/requests"
# kind: (path, route name, form parts (None: a JSON body), required parts)
EXPECTED: dict[RequestKind, tuple[str, str, set[str] | None, set[str]]] = {
    RequestKind.warrant: (
        "warrants",
        "file_warrant",
        {"details", "document", "nondisclosure_order"},
        {"details", "document"},
    ),
    RequestKind.subpoena: (
        "subpoenas",
        "file_subpoena",
        {"details", "document", "nondisclosure_order"},
        {"details", "document"},
    ),
    RequestKind.preservation: (
        "preservations",
        "file_preservation",
        {"details", "nondisclosure_order"},
        {"details"},
    ),
    RequestKind.emergency: ("emergencies", "file_emergency", None, {"body"}),
    RequestKind.community: ("community", "file_community_request", None, {"body"}),
}


def _routes() -> dict[tuple[str, str], APIRoute]:
    return {
        (route.path, method): route
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    }


def test_every_kind_has_a_row() -> None:
    assert set(KINDS) == set(RequestKind) == set(EXPECTED)


@pytest.mark.parametrize("kind", list(RequestKind), ids=[k.value for k in RequestKind])
def test_the_filing_route_takes_what_the_kind_files(kind: RequestKind) -> None:
    path, name, parts, required = EXPECTED[kind]
    route = _routes()[(f"{PREFIX}/{path}", "POST")]
    assert route.name == name
    assert route.status_code == 201
    body: dict[str, Any] = {p.name: p for p in route.dependant.body_params}
    if parts is None:
        assert set(body) == {"body"}
        assert body["body"].field_info.annotation is KINDS[kind].schema
    else:
        assert set(body) == parts
    assert {n for n, p in body.items() if p.field_info.is_required()} == required
    assert {p.name for p in route.dependant.path_params} == {"agency_id"}


def test_an_officers_actions_have_their_routes() -> None:
    routes = _routes()
    for name, action in actions.ACTIONS.items():
        route = routes[(f"{PREFIX}/{{request_id}}/{name}", "POST")]
        if action.operation is not None:
            assert route.name == action.operation
    assert {r.name for r in routes.values()} >= {
        "withdraw_request",
        "extend_preservation",
        "close_community_request",
        "file_proof",
        "package_shared_clips",
    }
