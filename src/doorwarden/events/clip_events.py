"""Events from verified clips, on the scheduler (job `events.clips`): a clip labelled
"ring" is linked to its ring event (the one the agent sent at once, over its control
connection); any other clip makes a `person` event (labels include "person") or a
`motion` event.

Idempotent by construction: `events.clip_id` is unique, and a clip is looked at only
while no event names it. Which ring a ring clip belongs to: the latest ring of the same
camera (device, and camera name when the clip carries a `camera:<name>` label) that
occurred within the clip's span, from RING_SLACK before its start to RING_SLACK after its
end, and is not linked to a clip yet. A ring clip whose ring has not arrived is left for
RING_WAIT after it was verified (the ring may still be queued on the agent); then it is
taken as a person or motion clip, so no clip is left without its event.

Clips verified more than LOOKBACK after they started are not considered (the scan reads
the recent clips by their indexed start time, not the whole table every two seconds).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.clips.models import Clip, ClipStatus
from doorwarden.events.models import Event, EventKind, EventSource
from doorwarden.scheduler import Job

log = structlog.get_logger("doorwarden.events")

JOB_NAME = "events.clips"
BATCH = 200
LOOKBACK = timedelta(days=8)
RING_SLACK = timedelta(seconds=5)
RING_WAIT = timedelta(minutes=2)
CAMERA_LABEL = "camera:"


@dataclass
class ClipEvents:
    made: list[Event] = field(default_factory=list)  # new person/motion events
    linked: list[Event] = field(default_factory=list)  # ring events that got their clip
    waiting: int = 0  # ring clips whose ring has not arrived yet
    full_batch: bool = False

    @property
    def progressed(self) -> bool:
        return bool(self.made or self.linked)


def camera_of(labels: list[str]) -> str | None:
    for label in labels:
        if label.startswith(CAMERA_LABEL) and 0 < len(label) - len(CAMERA_LABEL) <= 64:
            return label[len(CAMERA_LABEL) :]
    return None


async def events_from_clips(db: AsyncSession, *, now: datetime) -> ClipEvents:
    """One batch: the verified clips without an event, oldest first."""
    result = ClipEvents()
    clips = (
        await db.scalars(
            select(Clip)
            .where(
                Clip.status == ClipStatus.verified,
                Clip.start_at >= now - LOOKBACK,
                ~exists().where(Event.clip_id == Clip.id),
            )
            .order_by(Clip.start_at, Clip.id)
            .limit(BATCH)
        )
    ).all()
    result.full_batch = len(clips) == BATCH
    for clip in clips:
        labels = [str(label) for label in clip.labels or []]
        camera = camera_of(labels)
        if "ring" in labels:
            ring = await _ring_for(db, clip, camera)
            if ring is not None:
                ring.clip_id = clip.id
                result.linked.append(ring)
                continue
            if clip.verified_at is not None and now - clip.verified_at < RING_WAIT:
                result.waiting += 1
                continue
        kind = EventKind.person if "person" in labels else EventKind.motion
        event = Event(
            household_id=clip.household_id,
            device_id=clip.device_id,
            camera=camera or "",
            kind=kind,
            occurred_at=clip.start_at,
            received_at=now,
            source=EventSource.detector,
            agent_event_id=None,
            clip_id=clip.id,
        )
        db.add(event)
        result.made.append(event)
    await db.flush()
    if result.made or result.linked:
        log.info("events.from_clips", made=len(result.made), linked=len(result.linked))
    return result


async def _ring_for(db: AsyncSession, clip: Clip, camera: str | None) -> Event | None:
    query = select(Event).where(
        Event.device_id == clip.device_id,
        Event.kind == EventKind.ring,
        Event.clip_id.is_(None),
        Event.occurred_at >= clip.start_at - RING_SLACK,
        Event.occurred_at <= clip.end_at + RING_SLACK,
    )
    if camera is not None:
        query = query.where(Event.camera == camera)
    found: Event | None = await db.scalar(query.order_by(Event.occurred_at.desc()).limit(1))
    return found


def clip_events_job(
    now: Callable[[], datetime],
    interval_s: float = 0,
    on_new: Callable[[], Awaitable[None]] | None = None,
) -> Job[ClipEvents]:
    """`on_new`: called after a run that made events has committed (the notify wake)."""

    async def body(db: AsyncSession) -> ClipEvents:
        return await events_from_clips(db, now=now())

    async def after(result: ClipEvents) -> None:
        if result.made and on_new is not None:
            await on_new()

    # Another batch at once only while this one got somewhere: ring clips still waiting
    # for their ring are looked at again on the next turn, not in a loop.
    more = lambda r: r.full_batch and r.progressed  # noqa: E731
    return Job(JOB_NAME, interval_s, body, after_commit=after, more=more)
