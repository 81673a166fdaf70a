"""The live page of one camera. The page only sets the stage: the stream comes over the
viewer WebSocket (live/router.py), which makes its own policy decision and audits it.

`.../live/key` gives an end-to-end household's page what it needs to check a live
session (static/e2e/live.js): the camera's Ed25519 public key, which signs each session's
wrapped keys, and where a member unlocks their own key. A public key is no footage: the
members who may watch may read it, without an audit event."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from doorwarden.deps import LiveHubDep, SessionDep, authorize, household_resource
from doorwarden.devices.models import Encryption
from doorwarden.devices.service import plan_of
from doorwarden.errors import NotFound
from doorwarden.households import service as households
from doorwarden.live.relay import DEFAULT_CAMERA
from doorwarden.live.service import live_device
from doorwarden.policy import Action, HouseholdResource, Principal, can
from doorwarden.web.render import render

router = APIRouter(include_in_schema=False)
# The page where a member creates or unlocks their end-to-end key on this device
# (keyring/, templates/keyring/); the live page links to it when it cannot decrypt.
KEY_PAGE = "/account/keyring"


@router.get("/households/{household_id}/cameras/{device_id}/live")
async def live_page(
    request: Request,
    household_id: uuid.UUID,
    device_id: uuid.UUID,
    principal: Annotated[Principal, authorize(Action.live_view, household_resource)],
    db: SessionDep,
    hub: LiveHubDep,
    camera: str = DEFAULT_CAMERA,
) -> Response:
    device = await live_device(db, household_id=household_id, device_id=device_id)
    if device is None:
        raise NotFound("No such camera in this household.")
    household = await households.get_household(db, household_id)
    link = hub.agents.get(device_id)
    streams = link.cameras if link is not None else []
    stream_path = f"/api/v1/households/{household_id}/devices/{device_id}/live"
    context = {
        "household": household,
        "device": device,
        "streams": streams if len(streams) > 1 else [],
        "camera": camera or (streams[0] if streams else ""),
        "stream_path": stream_path,
        # The page refuses a plain stream for an end-to-end household (static/live.js).
        "e2e_required": (await plan_of(db, household_id)).encryption is Encryption.e2e,
        # The Talk button (static/talk.js); the socket decides again when a talk starts.
        "can_talk": can(principal, Action.talk, HouseholdResource(household_id)),
    }
    response = render(request, "live/live.html", context)
    if context["can_talk"]:
        # Every other page keeps the microphone off (middleware.SECURITY_HEADERS); this
        # one may ask for it, for this site only, to talk through the camera.
        response.headers["permissions-policy"] = "camera=(), microphone=(self), geolocation=()"
    return response


@router.get("/api/v1/households/{household_id}/devices/{device_id}/live/key")
async def live_key(
    household_id: uuid.UUID,
    device_id: uuid.UUID,
    _principal: Annotated[Principal, authorize(Action.live_view, household_resource)],
    db: SessionDep,
) -> Response:
    """{"device_id", "public_key" (base64url Ed25519), "key_page"} for a member's page."""
    device = await live_device(db, household_id=household_id, device_id=device_id)
    if device is None:
        raise NotFound("No such camera in this household.")
    body = {"device_id": str(device.id), "public_key": device.public_key, "key_page": KEY_PAGE}
    return JSONResponse(body, headers={"cache-control": "no-store"})
