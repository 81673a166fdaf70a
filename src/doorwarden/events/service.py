"""Recording rings, listing a household's events for one member, and what they have seen.

Services never commit (DESIGN convention 1). A refused ring is counted in the caller's
session before `TooManyRings` is raised: the router commits, then answers the refusal.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import structlog
from sqlalchemy import and_, exists, func, insert, literal, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.devices.models import Device
from doorwarden.errors import Conflict, DomainError
from doorwarden.events.models import Event, EventKind, EventSeen, EventSource, RingRefusals
from doorwarden.events.schemas import EventIn

log = structlog.get_logger("doorwarden.events")

RING_LIMIT = 6  # new rings per camera (device) in any minute of the camera's time
RING_WINDOW = timedelta(minutes=1)
# However the camera dates them: at most this many rings received from it in a minute
# (a camera that dates a flood across the past week cannot get around the limit above).
RING_RECEIVE_LIMIT = 60
MAX_PAST = timedelta(days=7)
MAX_AHEAD = timedelta(minutes=5)


class TooManyRings(DomainError):
    status_code = 429
    code = "too_many_rings"

    def __init__(self, message: str, *, retry_after: int, refused: int) -> None:
        super().__init__(
            message,
            details={"retry_after": retry_after, "refused": refused},
            headers={"Retry-After": str(retry_after)},
        )
        self.retry_after = retry_after


class TimeOutOfRange(DomainError):
    status_code = 422
    code = "time_out_of_range"


class UnknownCamera(DomainError):
    status_code = 422
    code = "unknown_camera"


class EventIdReused(Conflict):
    code = "event_id_reused"


@dataclass(frozen=True)
class Recorded:
    event: Event
    created: bool  # False: a replay of a ring already recorded (the same event)


async def record_ring(
    db: AsyncSession,
    *,
    device: Device,
    ring: EventIn,
    now: datetime,
    cameras: Collection[str] | None = None,
) -> Recorded:
    """The camera's ring, or the same event again for a replayed id. `cameras`: the names
    the agent announced on its control connection, when it has one (None: not known, any
    valid name is taken). Raises UnknownCamera, TimeOutOfRange, EventIdReused or
    TooManyRings (counted first, in this session)."""
    existing = await _by_agent_id(db, device.id, ring.id)
    if existing is not None:
        return Recorded(_same_ring(existing, ring), created=False)
    if cameras is not None and ring.camera not in cameras:
        raise UnknownCamera(
            f"This camera's agent has no camera named {ring.camera!r}.",
            details={"cameras": sorted(cameras)},
        )
    if not now - MAX_PAST <= ring.at <= now + MAX_AHEAD:
        raise TimeOutOfRange(
            "A ring's time must lie within the last 7 days and at most 5 minutes ahead "
            "of the server's clock (check the camera's clock).",
            details={"server_time": now.isoformat()},
        )
    # One ring decision at a time per camera (PostgreSQL; SQLite has one writer anyway).
    await db.execute(select(Device.id).where(Device.id == device.id).with_for_update())
    await _check_ring_rate(db, device, ring.at, now)
    event = Event(
        id=uuid.uuid4(),
        household_id=device.household_id,
        device_id=device.id,
        camera=ring.camera,
        kind=EventKind.ring,
        occurred_at=ring.at,
        received_at=now,
        source=EventSource(ring.source),
        agent_event_id=ring.id,
    )
    try:
        async with db.begin_nested():
            db.add(event)
    except IntegrityError:  # the same ring, recorded by a concurrent retry
        existing = await _by_agent_id(db, device.id, ring.id)
        if existing is None:
            raise
        return Recorded(_same_ring(existing, ring), created=False)
    return Recorded(event, created=True)


async def _by_agent_id(db: AsyncSession, device_id: uuid.UUID, agent_id: str) -> Event | None:
    return await db.scalar(
        select(Event).where(Event.device_id == device_id, Event.agent_event_id == agent_id)
    )


def _same_ring(event: Event, ring: EventIn) -> Event:
    if (event.camera, event.kind, event.occurred_at) != (ring.camera, EventKind.ring, ring.at):
        raise EventIdReused(
            "This camera already sent a different event with this id.",
            details={"event_id": str(event.id)},
        )
    return event


async def _check_ring_rate(db: AsyncSession, device: Device, at: datetime, now: datetime) -> None:
    """Any 60 s of the camera's time holds at most RING_LIMIT rings: a ring is refused
    when RING_LIMIT others lie within a minute of it, either side (so rings sent out of
    order cannot get around it)."""
    rings = and_(Event.device_id == device.id, Event.kind == EventKind.ring)
    near = await db.execute(
        select(func.count(), func.min(Event.occurred_at)).where(
            rings,
            Event.occurred_at > at - RING_WINDOW,
            Event.occurred_at < at + RING_WINDOW,
        )
    )
    count, earliest = near.one()
    retry_after = None
    if count >= RING_LIMIT:
        retry_after = max(1, min(60, math.ceil((earliest + RING_WINDOW - at).total_seconds())))
    else:
        received = await db.scalar(
            select(func.count()).where(rings, Event.received_at > now - RING_WINDOW)
        )
        if (received or 0) >= RING_RECEIVE_LIMIT:
            retry_after = 60
    if retry_after is None:
        return
    refused = await _count_refusal(db, device, now)
    log.warning(
        "events.ring_rate_limited",
        device=str(device.id),
        household=str(device.household_id),
        refused_total=refused,
    )
    raise TooManyRings(
        f"At most {RING_LIMIT} rings a minute from one camera; this one is refused "
        f"({refused} refused so far).",
        retry_after=retry_after,
        refused=refused,
    )


async def _count_refusal(db: AsyncSession, device: Device, now: datetime) -> int:
    row = await db.get(RingRefusals, device.id, with_for_update=True)
    if row is None:
        row = RingRefusals(
            device_id=device.id,
            household_id=device.household_id,
            refused=0,
            first_refused_at=now,
            last_refused_at=now,
        )
        db.add(row)
    row.refused += 1
    row.last_refused_at = now
    await db.flush()
    return row.refused


async def ring_refusals(db: AsyncSession, household_id: uuid.UUID) -> Sequence[RingRefusals]:
    rows = await db.scalars(
        select(RingRefusals)
        .where(RingRefusals.household_id == household_id)
        .order_by(RingRefusals.last_refused_at.desc())
    )
    return rows.all()


@dataclass(frozen=True)
class Listed:
    event: Event
    new: bool


async def events_for(
    db: AsyncSession,
    household_id: uuid.UUID,
    member: uuid.UUID,
    *,
    device_id: uuid.UUID | None = None,
    camera: str | None = None,
    kind: EventKind | None = None,
    day: date | None = None,
    limit: int = 100,
) -> list[Listed]:
    """The household's events, newest first, each `new` unless `member` has seen it.
    `day`: a UTC day of occurred_at."""
    seen = exists().where(EventSeen.event_id == Event.id, EventSeen.user_id == member)
    query = select(Event, ~seen).where(Event.household_id == household_id)
    if device_id is not None:
        query = query.where(Event.device_id == device_id)
    if camera is not None:
        query = query.where(Event.camera == camera)
    if kind is not None:
        query = query.where(Event.kind == kind)
    if day is not None:
        start = datetime.combine(day, time(), tzinfo=UTC)
        query = query.where(Event.occurred_at >= start, Event.occurred_at < start + timedelta(1))
    query = query.order_by(Event.occurred_at.desc(), Event.id.desc()).limit(limit)
    rows = await db.execute(query)
    return [Listed(event, bool(new)) for event, new in rows.all()]


async def mark_seen(
    db: AsyncSession,
    household_id: uuid.UUID,
    member: uuid.UUID,
    *,
    ids: Collection[uuid.UUID] | None,
    now: datetime,
) -> None:
    """`member` has seen these events of the household (ids=None: all of them). Ids of
    another household's events, or of none, are ignored: nothing is said about them."""
    unseen = select(Event.id, literal(member), literal(now, type_=EventSeen.seen_at.type)).where(
        Event.household_id == household_id,
        ~exists().where(EventSeen.event_id == Event.id, EventSeen.user_id == member),
    )
    if ids is not None:
        if not ids:
            return
        unseen = unseen.where(Event.id.in_(set(ids)))
    await db.execute(insert(EventSeen).from_select(["event_id", "user_id", "seen_at"], unseen))
