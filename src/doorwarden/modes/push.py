"""Telling agents their household's mode, over their control connection (docs/live-view.md):

    {"type": "mode", "mode": "away", "cameras": {"front": {"record": true, "detect": true}}}

Sent when an agent connects (right after its hello, before any other message: the live
router sends `message_for` and attaches the agent under `household_lock`) and after every
committed change: set by hand, definitions changed, or a scheduled switch. Each send
reads the state afresh, under one lock per household in this process, so two sends for
the same household cannot pass each other and leave an agent with the older mode, and a
change committed while an agent connects reaches it either way. Every camera name an agent announced
gets its device's setting (a device's cameras share its settings).
"""

from __future__ import annotations

import asyncio
import uuid
import weakref
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.live.relay import LiveHub
from doorwarden.modes import definitions as defs
from doorwarden.modes import service

log = structlog.get_logger("doorwarden.modes")
_locks: weakref.WeakValueDictionary[uuid.UUID, asyncio.Lock] = weakref.WeakValueDictionary()


def message(mode: str, cameras: Iterable[str], setting: defs.Setting) -> dict[str, Any]:
    per_camera = {"record": setting.record, "detect": setting.detect}
    return {"type": "mode", "mode": mode, "cameras": {name: dict(per_camera) for name in cameras}}


def household_lock(household_id: uuid.UUID) -> asyncio.Lock:
    """The lock that orders every send of this household's mode in this process."""
    lock = _locks.get(household_id)
    if lock is None:
        lock = _locks[household_id] = asyncio.Lock()
    return lock


async def message_for(
    db: AsyncSession, household_id: uuid.UUID, device_id: uuid.UUID, cameras: Iterable[str],
    at: datetime,
) -> dict[str, Any]:  # fmt: skip
    """The mode message for one agent, as the database says now."""
    row = await service.row_of(db, household_id)
    current = service.evaluate(row, await service.zone_of(db, household_id), at)
    definitions = (row.definitions if row is not None else None) or {}
    return message(current.mode, cameras, defs.setting(definitions, current.mode, str(device_id)))


async def send_modes(
    db: AsyncSession,
    hub: LiveHub,
    household_id: uuid.UUID,
    at: datetime,
    *,
    device_ids: Iterable[uuid.UUID] | None = None,
) -> int:
    """Send the mode to the household's connected agents (or only `device_ids`); how
    many were sent. Call after the change has committed."""
    async with household_lock(household_id):
        if device_ids is None:
            targets = [c.id for c in await service.cameras_of(db, household_id)]
        else:
            targets = list(device_ids)
        targets = [d for d in targets if d in hub.agents]
        if not targets:
            return 0
        row = await service.row_of(db, household_id)
        current = service.evaluate(row, await service.zone_of(db, household_id), at)
        definitions = (row.definitions if row is not None else None) or {}
        sent = 0
        for device_id in targets:
            link = hub.agents.get(device_id)
            if link is None:
                continue
            setting = defs.setting(definitions, current.mode, str(device_id))
            if await hub.tell(device_id, message(current.mode, link.cameras, setting)):
                sent += 1
        log.info("modes.sent", household=str(household_id), mode=current.mode, agents=sent)
        return sent
