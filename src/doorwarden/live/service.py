"""Database look-ups for live view (the relay itself keeps no state in the database)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

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
