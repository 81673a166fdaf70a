"""Events API: a camera's ring (the HTTP fallback of the control connection's `event`
message, docs/live-view.md), and a household's timeline for its members."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from doorwarden.deps import (
    ClockDep,
    DeviceDep,
    LiveHubDep,
    SessionDep,
    UserDep,
    authorize,
    household_resource,
    parse_or_422,
    read_bounded,
)
from doorwarden.events import service
from doorwarden.events.models import EventKind
from doorwarden.events.parse import parse_ring
from doorwarden.events.schemas import (
    EVENT_MAX_BYTES,
    MAX_LIMIT,
    EventCreated,
    EventIn,
    EventOut,
    RefusalsOut,
    SeenIn,
)
from doorwarden.events.wake import notify_wake
from doorwarden.policy import Action, Principal

router = APIRouter(tags=["events"])


@router.post(
    "/api/v1/device/events",
    status_code=status.HTTP_201_CREATED,
    response_model=EventCreated,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": EventIn.model_json_schema()}},
        }
    },
    responses={200: {"model": EventCreated, "description": "A replay: the same event"}},
)
async def report_event(
    request: Request,
    response: Response,
    _p: Annotated[Principal, authorize(Action.event_report)],
    device: DeviceDep,
    db: SessionDep,
    clock: ClockDep,
    hub: LiveHubDep,
) -> EventCreated:
    """A doorbell ring from the calling camera, for an agent without its control
    connection. 201 with the new event's id; 200 with the same id for a replayed `id`;
    429 too_many_rings (with Retry-After) beyond 6 rings a minute, counted for the owners."""
    ring = parse_or_422(parse_ring, await read_bounded(request, EVENT_MAX_BYTES, "An event"))
    link = hub.agents.get(device.id)
    try:
        recorded = await service.record_ring(
            db,
            device=device,
            ring=ring,
            now=clock.now(),
            cameras=link.cameras if link is not None else None,
        )
    except service.TooManyRings:
        await db.commit()  # the refusal's count
        raise
    await db.commit()
    if recorded.created:
        await notify_wake(request.app.state)
    else:
        response.status_code = status.HTTP_200_OK
    return EventCreated(event_id=recorded.event.id)


@router.get("/api/v1/households/{household_id}/events", response_model=list[EventOut])
async def list_events(
    household_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.event_read, household_resource)],
    user: UserDep,
    db: SessionDep,
    device_id: uuid.UUID | None = None,
    kind: EventKind | None = None,
    day: Annotated[date | None, Query(description="A UTC day, YYYY-MM-DD")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
) -> list[EventOut]:
    """Rings, people and motion, newest first; `new` until the caller has seen it."""
    rows = await service.events_for(
        db, household_id, user.id, device_id=device_id, kind=kind, day=day, limit=limit
    )
    return [
        EventOut(
            id=r.event.id,
            device_id=r.event.device_id,
            camera=r.event.camera,
            kind=r.event.kind,
            occurred_at=r.event.occurred_at,
            clip_id=r.event.clip_id,
            new=r.new,
        )
        for r in rows
    ]


@router.post(
    "/api/v1/households/{household_id}/events/seen", status_code=status.HTTP_204_NO_CONTENT
)
async def mark_seen(
    household_id: uuid.UUID,
    body: SeenIn,
    _p: Annotated[Principal, authorize(Action.event_read, household_resource)],
    user: UserDep,
    db: SessionDep,
    clock: ClockDep,
) -> None:
    """The caller has seen these events (`{"ids": [...]}`) or all (`{"all": true}`); for
    the other members they stay new."""
    await service.mark_seen(db, household_id, user.id, ids=body.ids, now=clock.now())


@router.get("/api/v1/households/{household_id}/events/refusals", response_model=list[RefusalsOut])
async def ring_refusals(
    household_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.event_read, household_resource)],
    db: SessionDep,
) -> list[RefusalsOut]:
    """Rings each camera sent beyond the limit, refused and counted."""
    return [RefusalsOut.model_validate(r) for r in await service.ring_refusals(db, household_id)]
