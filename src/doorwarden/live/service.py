"""Database look-ups for live view (the relay itself keeps no state in the database)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.audit.models import AuditEvent
from doorwarden.audit.tags import Tag
from doorwarden.devices.models import Device


async def live_device(
    db: AsyncSession, *, household_id: uuid.UUID, device_id: uuid.UUID
) -> Device | None:
    """The household's camera `device_id`, unless it was removed (revoked)."""
    return await db.scalar(
        select(Device).where(
            Device.id == device_id,
            Device.household_id == household_id,
            Device.revoked_at.is_(None),
        )
    )


async def last_talks(
    db: AsyncSession, *, household_id: uuid.UUID, device_ids: list[uuid.UUID]
) -> dict[uuid.UUID, datetime]:
    """When each camera was last talked through: its newest `talk:end` in the household's
    trail (the audit log is the only record of a talk; no audio is ever kept)."""
    if not device_ids:
        return {}
    query = (
        select(AuditEvent.target_id, func.max(AuditEvent.occurred_at))
        .where(
            AuditEvent.household_id == household_id,
            AuditEvent.tag == str(Tag.talk_end),
            AuditEvent.target_type == "device",
            AuditEvent.target_id.in_([str(d) for d in device_ids]),
        )
        .group_by(AuditEvent.target_id)
    )
    return {uuid.UUID(target): at for target, at in (await db.execute(query)).all() if target}
