"""The resident's screens: the camera grid (snapshots that switch to live in place) and
the event timeline (rings, people and motion; "new" until this member has seen them).

Both pages set the stage only. The grid's snapshots come from the clip thumbnail API and
its live tiles from the live viewer WebSocket, each making its own policy decision and
audit record; the timeline's events come from the events API (static/timeline.js), which
also marks them seen. So nothing here reads footage or events itself.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from doorwarden.clips.models import Clip, ClipStatus
from doorwarden.deps import LiveHubDep, SessionDep, authorize, household_resource
from doorwarden.devices import service as devices
from doorwarden.devices.models import Device, Encryption
from doorwarden.households import service as households
from doorwarden.live.relay import DEFAULT_CAMERA
from doorwarden.policy import Action, Principal
from doorwarden.web.render import render

router = APIRouter(include_in_schema=False)
Readers = Annotated[Principal, authorize(Action.event_read, household_resource)]
Watchers = Annotated[Principal, authorize(Action.live_view, household_resource)]

KINDS = {"ring": "Rings", "person": "People", "motion": "Motion"}
MAX_QUERY = 64


@dataclass(frozen=True)
class Tile:
    device: Device
    camera: str  # the agent's camera name ("" = its first), as the live page takes it
    thumbnail: str | None  # the newest verified clip's thumbnail API path, if it has one
    stream_path: str
    live_page: str


async def _newest_clip(db: AsyncSession, device_id: uuid.UUID) -> Clip | None:
    query = (
        select(Clip)
        .where(Clip.device_id == device_id, Clip.status == ClipStatus.verified)
        .order_by(Clip.sequence.desc())
        .limit(1)
    )
    return await db.scalar(query)


@router.get("/households/{household_id}/cameras/grid")
async def camera_grid(
    request: Request,
    household_id: uuid.UUID,
    _p: Watchers,
    db: SessionDep,
    hub: LiveHubDep,
) -> Response:
    household = await households.get_household(db, household_id)
    plan = await devices.plan_of(db, household_id)
    # End-to-end: the server cannot open a thumbnail, so the tile shows the name only.
    snapshots = plan.encryption is not Encryption.e2e
    tiles: list[Tile] = []
    for device in await devices.cameras_of(db, household_id):
        if device.revoked_at is not None:
            continue
        base = f"/households/{household_id}/cameras/{device.id}/live"
        stream = f"/api/v1/households/{household_id}/devices/{device.id}/live"
        clip = await _newest_clip(db, device.id) if snapshots else None
        thumbnail = (
            f"/api/v1/households/{household_id}/clips/{clip.id}/thumbnail"
            if clip is not None and clip.thumbnail_key
            else None
        )
        link = hub.agents.get(device.id)
        cameras = (link.cameras if link is not None else []) or [DEFAULT_CAMERA]
        for camera in cameras:
            page = f"{base}?camera={quote(camera)}" if len(cameras) > 1 else base
            tiles.append(Tile(device, camera, thumbnail, stream, page))
    context = {"household": household, "tiles": tiles, "snapshots": snapshots}
    return render(request, "resident/grid.html", context)


def _uuid(value: str | None) -> str:
    try:
        return str(uuid.UUID(value or ""))
    except ValueError:
        return ""


def _day(value: str | None) -> str:
    try:
        return date.fromisoformat((value or "")[:MAX_QUERY]).isoformat()
    except ValueError:
        return ""


@router.get("/households/{household_id}/events")
async def event_timeline(
    request: Request,
    household_id: uuid.UUID,
    _p: Readers,
    db: SessionDep,
    device_id: str | None = None,
    kind: str | None = None,
    day: str | None = None,
) -> Response:
    """The filters come back as typed; one that does not parse is dropped (and said so)
    rather than refused: a bookmarked link keeps working."""
    household = await households.get_household(db, household_id)
    cameras = [d for d in await devices.cameras_of(db, household_id) if d.revoked_at is None]
    chosen = {
        "device_id": _uuid(device_id),
        "kind": kind if kind in KINDS else "",
        "day": _day(day),
    }
    typed = {"device_id": device_id, "kind": kind, "day": day}
    dropped = [name for name, value in typed.items() if value and not chosen[name]]
    context = {
        "household": household,
        "cameras": cameras,
        "kinds": KINDS,
        "chosen": chosen,
        "dropped": dropped,
        "api": f"/api/v1/households/{household_id}/events",
    }
    return render(request, "resident/events.html", context)
