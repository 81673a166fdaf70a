"""Events a household sees and is told of: a doorbell ring (from the camera's agent, at
once, over its control connection or the HTTP fallback), a person or motion (made by the
server from a verified clip's labels, events/clip_events.py).

A ring keeps the camera's own time (`occurred_at`; a ring queued while the agent was
offline keeps when it happened) and the server's (`received_at`). `agent_event_id` is
unique per device: a replayed ring is the same event. `clip_id` is unique: a clip makes
or links one event at most, which is what makes the clip job idempotent.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from doorwarden.db import Base, SafeString, UUIDPrimaryKey, str_enum


class EventKind(StrEnum):
    ring = "ring"
    person = "person"
    motion = "motion"


class EventSource(StrEnum):
    button = "button"
    gpio = "gpio"
    onvif = "onvif"
    mqtt = "mqtt"
    cli = "cli"
    detector = "detector"  # the server, from a verified clip's labels


class Event(UUIDPrimaryKey, Base):
    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("device_id", "agent_event_id"),
        UniqueConstraint("clip_id"),
        # The timeline: a household's events, newest first.
        Index("ix_events_household_id_occurred_at", "household_id", "occurred_at"),
        # The ring limit and the clip job's "the ring of this camera before the clip's end".
        Index("ix_events_device_id_kind_occurred_at", "device_id", "kind", "occurred_at"),
        # Notify's outbox asks every second for the events nobody was told of yet: a
        # partial index holds only those, so the question stays small as events pile up.
        Index(
            "ix_events_unnotified",
            "received_at",
            postgresql_where=text("notified_at IS NULL"),
            sqlite_where=text("notified_at IS NULL"),
        ),
    )

    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("households.id", ondelete="CASCADE"))
    device_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    camera: Mapped[str] = mapped_column(SafeString(64))
    kind: Mapped[EventKind] = mapped_column(str_enum(EventKind))
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime]
    source: Mapped[EventSource] = mapped_column(str_enum(EventSource))
    # The agent's id for it; none for events the server made from a clip.
    agent_event_id: Mapped[str | None] = mapped_column(SafeString(64))
    clip_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("clips.id", ondelete="SET NULL"))
    # The notify outbox's marker: set by notify once the event's notifications are made.
    notified_at: Mapped[datetime | None]


class EventSeen(Base):
    """A member has seen this event: it is no longer `new` for them (and only for them)."""

    __tablename__ = "event_seen"

    event_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("events.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    seen_at: Mapped[datetime]


class RingRefusals(Base):
    """Rings a camera sent beyond the limit (events.service.RING_LIMIT a minute): refused
    and counted here, per camera, for its owners to see (GET .../events/refusals)."""

    __tablename__ = "event_ring_refusals"

    device_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    household_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("households.id", ondelete="CASCADE"), index=True
    )
    refused: Mapped[int] = mapped_column(default=0)
    first_refused_at: Mapped[datetime]
    last_refused_at: Mapped[datetime]
