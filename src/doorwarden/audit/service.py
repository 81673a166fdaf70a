"""Writing and reading audit events. Writers add to the caller's session, so the event
commits or rolls back with the change it records (conventions 1 and 4). Events are read
only through `household_events` and `instance_events`, which show each reader what
readers.py allows it: no route gets the rows themselves."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, not_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.audit import readers
from doorwarden.audit.models import AuditEvent
from doorwarden.audit.tags import Tag
from doorwarden.db import utcnow

USER_AGENT_MAX = 512


@dataclass(frozen=True)
class RequestContext:
    """Who is calling from where: recorded with every event."""

    client_address: str | None = None
    user_agent: str | None = None
    request_id: str | None = None


@dataclass(frozen=True)
class Actor:
    user_id: uuid.UUID | None
    role: str | None


SYSTEM = Actor(user_id=None, role="system")


def record(
    db: AsyncSession,
    *,
    tag: Tag,
    actor: Actor,
    ctx: RequestContext,
    household_id: uuid.UUID | None = None,
    agency_id: uuid.UUID | None = None,
    target_type: str | None = None,
    target_id: str | uuid.UUID | None = None,
    extra: dict[str, Any] | None = None,
    occurred_at: datetime | None = None,
) -> AuditEvent:
    event = AuditEvent(
        occurred_at=occurred_at or utcnow(),
        tag=str(tag),
        actor_user_id=actor.user_id,
        actor_role=actor.role,
        household_id=household_id,
        agency_id=agency_id,
        target_type=target_type,
        target_id=str(target_id) if target_id is not None else None,
        client_address=ctx.client_address,
        user_agent=(ctx.user_agent or "")[:USER_AGENT_MAX] or None,
        request_id=ctx.request_id,
        extra=extra or {},
    )
    db.add(event)
    return event


def _newest_first(*, tag_prefix: str | None, before: datetime | None) -> Select[AuditEvent]:
    query = select(AuditEvent).order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
    if tag_prefix:
        query = query.where(AuditEvent.tag.startswith(tag_prefix, autoescape=True))
    if before is not None:
        query = query.where(AuditEvent.occurred_at < before)
    return query


async def household_events(
    db: AsyncSession,
    *,
    household_id: uuid.UUID,
    before: datetime | None = None,
    limit: int = 100,
) -> list[readers.EventView]:
    """One household's events, newest first, as the household is shown them."""
    query = _newest_first(tag_prefix=None, before=before)
    query = query.where(AuditEvent.household_id == household_id)
    events = (await db.scalars(query.limit(limit))).all()
    return [readers.for_household(e) for e in events]


async def instance_events(
    db: AsyncSession,
    *,
    household_id: uuid.UUID | None = None,
    tag_prefix: str | None = None,
    before: datetime | None = None,
    limit: int = 100,
) -> list[readers.EventView]:
    """The instance's events, newest first, as operators and auditors are shown them.
    Asked for one household, the events that would tie it to an agency are left out,
    not only blanked: that they matched would say what the blank hides."""
    query = _newest_first(tag_prefix=tag_prefix, before=before)
    if household_id is not None:
        scoped = or_(*(AuditEvent.tag.startswith(t, autoescape=True) for t in readers.SCOPED_TAGS))
        query = query.where(AuditEvent.household_id == household_id, not_(scoped))
    events = (await db.scalars(query.limit(limit))).all()
    return [readers.for_instance(e) for e in events]
