"""No request type, role or path gives an agency, a reviewer, an operator or an auditor
live view or any stream of footage: every live and streaming endpoint of the app is
found by walking its routes, and each is refused to each of them, on a real server,
even for an officer whose warrant for that very camera was approved."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI, routing
from sqlalchemy import select
from starlette.routing import WebSocketRoute
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin

from doorwarden.accounts.models import User
from doorwarden.accounts.sessions import SESSION_COOKIE
from doorwarden.clips.models import Clip
from doorwarden.config import Settings
from doorwarden.policy import Action
from doorwarden.roles import Role
from tests.factories import PASSWORD, Factory
from tests.functional.app.route_inventory import inventory
from tests.legal_flow import cast, decide, device_item, file_warrant, home
from tests.live_server import running_server

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:websockets")

# What a viewer reads footage through: every GET route that declares one of these
# policy actions (live view, a clip or its list, a clip's bytes in any form).
READS_FOOTAGE = {Action.live_view, Action.clip_view, Action.clip_download}
# A cross-check on the declarations: whatever is named like a stream must declare one.
STREAMING = re.compile(r"/live\b|/(video|download|thumbnail|sealed|stream|snapshot|hls)\b")
PARAM = re.compile(r"{(\w+)}")


@dataclass(frozen=True)
class Target:
    household_id: uuid.UUID
    device_id: uuid.UUID
    clip_id: uuid.UUID

    def fill(self, path: str) -> str:
        values = {
            "household_id": self.household_id,
            "device_id": self.device_id,
            "clip_id": self.clip_id,
        }
        return PARAM.sub(lambda m: str(values[m.group(1)]), path)


def websocket_paths(app: FastAPI) -> list[str]:
    """Every WebSocket route (FastAPI keeps included routers nested: walk their contexts)."""
    return sorted(
        {
            context.path
            for context in routing.iter_route_contexts(app.routes)
            if isinstance(getattr(context, "original_route", None), WebSocketRoute)
        }
    )


def streaming_http_paths(app: FastAPI) -> list[tuple[str, str]]:
    routes, _ = inventory(app)
    # GET: what a viewer reads (the camera's own upload routes take a device token only).
    viewer = [r for r in routes if r.method == "GET"]
    undeclared = [r.path for r in viewer if STREAMING.search(r.path) and not r.actions]
    assert undeclared == [], f"streaming routes that declare no policy action: {undeclared}"
    named = {r.path for r in viewer if STREAMING.search(r.path)}
    footage = {(r.method, r.path) for r in viewer if READS_FOOTAGE & set(r.actions)}
    assert named <= {path for _, path in footage}, "a stream that is not declared as footage"
    return sorted(footage)


async def test_every_live_and_streaming_endpoint_is_refused_to_staff_and_agencies(
    factory: Factory, app: FastAPI, settings: Settings
) -> None:
    people = await cast(factory)
    elm = await home(factory, "12 Elm Street")
    # The officer's agency holds an approved warrant for this very camera.
    filed = await file_warrant(
        people.officer_client, people.agency_id, [device_item(elm.camera.id)]
    )
    assert filed.status_code == 201, filed.text
    approved = await decide(
        people.reviewer_client, filed.json()["id"], "approve", {"attest": ["signed"]}
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["packages"], "the warrant produced its package"
    auditor = await factory.user(Role.auditor)
    principals: dict[str, User] = {
        "officer with an approved warrant": people.officer,
        "legal reviewer": people.reviewer,
        "operator admin": people.admin,
        "auditor": auditor,
    }
    async with app.state.sessionmaker() as db:
        clip_id = (await db.scalars(select(Clip.id).where(Clip.device_id == elm.camera.id))).first()
    assert clip_id is not None
    target = Target(elm.household_id, elm.camera.id, clip_id)
    http_paths = streaming_http_paths(app)
    ws_paths = websocket_paths(app)  # the viewers' and the cameras' own
    # The walk found the endpoints it must (so an empty walk cannot pass).
    assert ("GET", "/households/{household_id}/cameras/{device_id}/live") in http_paths
    assert ("GET", "/api/v1/households/{household_id}/clips/{clip_id}/video") in http_paths
    assert ("GET", "/households/{household_id}/clips/{clip_id}") in http_paths
    assert "/api/v1/households/{household_id}/devices/{device_id}/live" in ws_paths
    assert "/api/v1/device/live" in ws_paths
    await people.close()

    with running_server(settings.model_copy(update={"development": True})) as url:
        # The owner can: the paths are real and the ids right.
        owner_cookie = _cookie(url, elm.owner)
        async with httpx.AsyncClient(base_url=url, cookies=_jar(owner_cookie)) as owner:
            for method, path in http_paths:
                response = await owner.request(method, target.fill(path))
                if response.status_code == 409:  # the end-to-end routes, on a standard clip
                    assert response.json()["error"]["code"] == "not_end_to_end", path
                    continue
                assert response.status_code == 200, (path, response.status_code)
        refusals = []
        for name, user in principals.items():
            cookie = _cookie(url, user)
            async with httpx.AsyncClient(base_url=url, cookies=_jar(cookie)) as client:
                for method, path in http_paths:
                    response = await client.request(method, target.fill(path))
                    if response.status_code != 403:
                        refusals.append(f"{name}: {method} {path} -> {response.status_code}")
            for path in ws_paths:
                ws_url = url.replace("http://", "ws://") + target.fill(path)
                try:
                    async with connect(
                        ws_url,
                        additional_headers={"Cookie": f"{SESSION_COOKIE}={cookie}"},
                        origin=Origin(url),
                    ):
                        refusals.append(f"{name}: WebSocket {path} opened")
                except InvalidStatus as exc:
                    # A camera's socket takes a device token: a person is not authenticated.
                    refused = {401} if "household_id" not in path else {403}
                    if exc.response.status_code not in refused:
                        refusals.append(f"{name}: WebSocket {path} -> {exc.response.status_code}")
    assert refusals == [], "\n".join(refusals)


def _cookie(url: str, user: User) -> str:
    response = httpx.post(f"{url}/api/v1/session", json={"email": user.email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return response.cookies[SESSION_COOKIE]


def _jar(token: str) -> dict[str, str]:
    return {SESSION_COOKIE: token}
