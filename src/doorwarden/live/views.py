"""The live page of one camera. The page only sets the stage: the stream comes over the
viewer WebSocket (live/router.py), which makes its own policy decision and audits it."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Request
from starlette.responses import Response

from doorwarden.deps import LiveHubDep, SessionDep, authorize, household_resource
from doorwarden.errors import NotFound
from doorwarden.households import service as households
from doorwarden.live.relay import DEFAULT_CAMERA
from doorwarden.live.service import live_device
from doorwarden.policy import Action, HouseholdResource, Principal, can
from doorwarden.web.render import render

router = APIRouter(include_in_schema=False)


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
        # The Talk button (static/talk.js); the socket decides again when a talk starts.
        "can_talk": can(principal, Action.talk, HouseholdResource(household_id)),
    }
    response = render(request, "live/live.html", context)
    if context["can_talk"]:
        # Every other page keeps the microphone off (middleware.SECURITY_HEADERS); this
        # one may ask for it, for this site only, to talk through the camera.
        response.headers["permissions-policy"] = "camera=(), microphone=(self), geolocation=()"
    return response
