"""A ring over the agent's control connection (docs/live-view.md): the `event` message
in, the `event_ack` out. The live router gives it a session of its own and commits; the
ack is sent only after that commit, so an acked ring is a stored ring.

Every refusal is an ack with `refused` (the agent drops the ring and logs why): a bad
message (`malformed`), a camera the agent's hello did not name (`unknown_camera`), a time
outside the accepted range (`time_out_of_range`), an id reused for a different ring
(`event_id_reused`), or the rate limit (`too_many_rings`, counted in the same session).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.crypto.errors import MalformedError
from doorwarden.devices.models import Device
from doorwarden.errors import DomainError
from doorwarden.events import service
from doorwarden.events.parse import problems, ring_from_message

log = structlog.get_logger("doorwarden.events")


@dataclass(frozen=True)
class LinkAck:
    message: dict[str, Any]  # the event_ack to send, after the commit
    created: bool  # a new event: wake notify after the commit


def _refused(agent_id: str | None, code: str, text: str) -> LinkAck:
    return LinkAck(
        {"type": "event_ack", "id": agent_id, "refused": code, "message": text}, created=False
    )


async def record_from_link(
    db: AsyncSession,
    *,
    device_id: uuid.UUID,
    cameras: Collection[str],
    message: dict[str, Any],
    now: datetime,
) -> LinkAck:
    raw_id = message.get("id")
    agent_id = raw_id if isinstance(raw_id, str) and len(raw_id) <= 64 else None
    try:
        ring = ring_from_message(message)
    except (MalformedError, ValidationError) as exc:
        log.warning("events.link_malformed", device=str(device_id), error=problems(exc))
        return _refused(agent_id, "malformed", problems(exc))
    device = await db.get(Device, device_id)
    if device is None:  # removed while connected: its connection is being closed
        return _refused(agent_id, "unknown_device", "This camera is no longer paired.")
    try:
        recorded = await service.record_ring(db, device=device, ring=ring, now=now, cameras=cameras)
    except DomainError as exc:
        log.info("events.link_refused", device=str(device_id), code=exc.code)
        ack = _refused(ring.id, exc.code, exc.message)
        if isinstance(exc, service.TooManyRings):
            ack.message["retry_after"] = exc.retry_after
        return ack
    return LinkAck(
        {"type": "event_ack", "id": ring.id, "event_id": str(recorded.event.id)},
        created=recorded.created,
    )
