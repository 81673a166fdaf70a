"""Which household events become webhook deliveries: run inside the delivery job's
transaction (delivery.py), never on a request.

The sources are rows their own domains commit: events (a ring from the camera; a person
or motion event the clip job made from a verified clip's labels) and audit entries (a
mode switched by an owner or by the schedule, `mode:set`; a privacy zone removed or
shrunk, `camera:privacy:reduce`). Reading them here, rather than calling in from each
place that commits one, keeps the layers as DESIGN.md orders them (events and modes sit
below integrations and never import it) and still ties each enqueue to its source
exactly: a source is seen only once committed, and its deliveries and the marker saying
"handled" (webhook_sources) commit together, so a source makes its deliveries once, and
one rolled back makes none. A ring wakes the job at once (main.py), so a webhook does not
wait for the tick.

Only households with an enabled endpoint are read, only sources within HORIZON, and an
endpoint hears only of what happens while it is on (registered and enabled).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.audit.models import AuditEvent
from doorwarden.audit.tags import Tag
from doorwarden.clips.models import Clip
from doorwarden.devices.models import Device
from doorwarden.events.models import Event
from doorwarden.integrations.webhooks import service
from doorwarden.integrations.webhooks.models import (
    EventKind,
    SourceKind,
    WebhookEndpoint,
    WebhookSource,
)

BATCH = 200
HORIZON = timedelta(hours=6)
AUDIT_KINDS = {
    str(Tag.mode_set): EventKind.mode_changed,
    str(Tag.camera_privacy_reduce): EventKind.privacy_reduced,
}
CAMERA_LABEL = "camera:"


@dataclass
class Filled:
    made: int = 0
    found: int = 0  # sources handled (a full batch: run again at once)


def _unmarked(source: SourceKind, column: Any) -> Any:
    return ~exists().where(and_(WebhookSource.source == source, WebhookSource.source_id == column))


async def _endpoints(db: AsyncSession) -> dict[uuid.UUID, list[WebhookEndpoint]]:
    by_household: dict[uuid.UUID, list[WebhookEndpoint]] = defaultdict(list)
    for endpoint in await db.scalars(
        select(WebhookEndpoint).where(WebhookEndpoint.enabled.is_(True))
    ):
        by_household[endpoint.household_id].append(endpoint)
    return by_household


def _labels(clip: Clip | None, kind: str) -> list[str]:
    if clip is None:
        return [kind]
    labels = [str(x) for x in clip.labels or [] if not str(x).startswith(CAMERA_LABEL)]
    return sorted(set(labels) | {kind})


async def _event_body(db: AsyncSession, event: Event) -> dict[str, Any]:
    device = await db.get(Device, event.device_id)
    clip = await db.get(Clip, event.clip_id) if event.clip_id is not None else None
    kind = EventKind(str(event.kind))
    # Ids, times, names and labels: never an image, a clip or a link that would let the
    # receiver (or whoever reads its logs) past the household's authorisation.
    data = {
        "event_id": str(event.id),
        "household_id": str(event.household_id),
        "device_id": str(event.device_id),
        "device_name": device.name if device is not None else None,
        "camera": event.camera or None,
        "occurred_at": event.occurred_at.isoformat(),
        "labels": _labels(clip, str(kind)),
        "clip_id": str(event.clip_id) if event.clip_id is not None else None,
    }
    return service.payload(kind, event.occurred_at, data)


def _audit_body(entry: AuditEvent, kind: EventKind) -> dict[str, Any] | None:
    extra = entry.extra or {}
    data: dict[str, Any] = {"household_id": str(entry.household_id)}
    if kind is EventKind.mode_changed:
        if extra.get("mode") == extra.get("from"):
            return None  # set to the mode already in force: nothing changed
        data |= {
            "mode": extra.get("mode"),
            "previous": extra.get("from"),
            "source": extra.get("source"),
            "changed_at": entry.occurred_at.isoformat(),
        }
    else:
        data |= {
            "device_id": entry.target_id if entry.target_type == "device" else None,
            "camera": extra.get("camera"),
            "zones_before": extra.get("zones_before"),
            "zones_after": extra.get("zones_after"),
            "changed_at": entry.occurred_at.isoformat(),
        }
    return service.payload(kind, entry.occurred_at, data)


async def fill(db: AsyncSession, *, now: datetime) -> Filled:
    """Turn up to BATCH new events and BATCH new audit entries into deliveries."""
    filled = Filled()
    since = now - HORIZON
    # Reads first, and a write only when there is something to write: this runs every
    # second on every instance, and on SQLite any write statement (even a DELETE of no
    # rows) takes the database's one write lock, which requests would then queue behind.
    stale = WebhookSource.noted_at < since - HORIZON
    if await db.scalar(select(exists().where(stale))):
        await db.execute(delete(WebhookSource).where(stale))
    hooks = await _endpoints(db)
    if not hooks:
        return filled
    households = list(hooks)
    events: Sequence[Event] = (
        await db.scalars(
            select(Event)
            .where(
                Event.household_id.in_(households),
                Event.received_at >= since,
                _unmarked(SourceKind.event, Event.id),
            )
            .order_by(Event.received_at)
            .limit(BATCH)
        )
    ).all()
    for event in events:
        db.add(WebhookSource(source=SourceKind.event, source_id=event.id, noted_at=now))
        kind = EventKind(str(event.kind))
        endpoints = hooks[event.household_id]
        if not any(str(kind) in e.event_kinds for e in endpoints):
            continue
        made = await service.enqueue(
            db, household_id=event.household_id, kind=kind, source=SourceKind.event,
            source_id=event.id, body=await _event_body(db, event), now=now,
            endpoints=endpoints, since=event.received_at,
        )  # fmt: skip
        filled.made += len(made)
    entries: Sequence[AuditEvent] = (
        await db.scalars(
            select(AuditEvent)
            .where(
                AuditEvent.household_id.in_(households),
                AuditEvent.tag.in_(list(AUDIT_KINDS)),
                AuditEvent.occurred_at >= since,
                _unmarked(SourceKind.audit, AuditEvent.id),
            )
            .order_by(AuditEvent.occurred_at)
            .limit(BATCH)
        )
    ).all()
    for entry in entries:
        db.add(WebhookSource(source=SourceKind.audit, source_id=entry.id, noted_at=now))
        body = _audit_body(entry, AUDIT_KINDS[entry.tag])
        if body is None or entry.household_id is None:
            continue
        made = await service.enqueue(
            db, household_id=entry.household_id, kind=AUDIT_KINDS[entry.tag],
            source=SourceKind.audit, source_id=entry.id, body=body, now=now,
            endpoints=hooks[entry.household_id], since=entry.occurred_at,
        )  # fmt: skip
        filled.made += len(made)
    await db.flush()
    filled.found = max(len(events), len(entries))
    return filled
