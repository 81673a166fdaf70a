"""Which member set each camera of an end-to-end household was given, and when
(key_history_models.DeliveredMemberSet): a camera seals to the last set it heard of, so a
clip recorded while it was offline across a member's removal is wrapped to that member
too. Ingest accepts such a clip when the camera had been given no newer set by the time
the clip ended (clips/ingest.py); a camera that had heard of the removal gets
`not_a_member`, as does a key the server never gave it."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.crypto.keys import key_id
from doorwarden.devices.key_history_models import DeliveredMemberSet


def _joined(key_ids: Iterable[str]) -> str:
    return ",".join(sorted(set(key_ids)))


async def note_delivered(
    db: AsyncSession, device_id: uuid.UUID, keys: Iterable[bytes], now: datetime
) -> None:
    """Record the set this camera is being given, unless it is the one it was last given
    (the heartbeat asks every minute: one row per change, not per request)."""
    joined = _joined(key_id(k) for k in keys)
    latest = (
        await db.execute(
            select(DeliveredMemberSet.key_ids, DeliveredMemberSet.served_at)
            .where(DeliveredMemberSet.device_id == device_id)
            .order_by(DeliveredMemberSet.served_at.desc())
            .limit(1)
        )
    ).first()
    if latest is not None and latest.key_ids == joined:
        return
    # Strictly after the previous one, so "the last set given" is never a tie.
    at = now if latest is None else max(now, latest.served_at + timedelta(microseconds=1))
    db.add(DeliveredMemberSet(device_id=device_id, key_ids=joined, served_at=at))


async def held_between(
    db: AsyncSession, device_id: uuid.UUID, begin: datetime, end: datetime
) -> set[str]:
    """The key ids of every set the camera may have held at some moment in [begin, end]:
    the last one given before `begin`, and any given within. Empty if none is recorded."""
    before = await db.scalar(
        select(DeliveredMemberSet.key_ids)
        .where(DeliveredMemberSet.device_id == device_id, DeliveredMemberSet.served_at <= begin)
        .order_by(DeliveredMemberSet.served_at.desc())
        .limit(1)
    )
    within = await db.scalars(
        select(DeliveredMemberSet.key_ids).where(
            DeliveredMemberSet.device_id == device_id,
            DeliveredMemberSet.served_at > begin,
            DeliveredMemberSet.served_at <= end,
        )
    )
    held: set[str] = set()
    for joined in [before, *within]:
        if joined:
            held.update(joined.split(","))
    return held
