"""The settings side of the agent's control connection, for the live router: what to
send a camera's agent when it connects, and storing its `settings_applied` reports. Each
uses a database session of its own (the connection outlives any request), and a fault of
ours is logged, never fatal to the link: it carries live view and rings too."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from doorwarden.devices.settings import push, service

log = structlog.get_logger("doorwarden.devices.settings")


async def on_connect(
    sessionmaker: async_sessionmaker[AsyncSession],
    signer: push.Signer,
    device_id: uuid.UUID,
    now: datetime,
) -> list[dict[str, Any]]:
    """The `settings` messages for a connecting agent (the caller holds
    push.device_lock and sends them before attaching the agent). If they cannot be read
    now the agent keeps what it saved, and hears the next change."""
    try:
        async with sessionmaker() as db:
            return await push.messages_for(db, signer, device_id, now)
    except Exception as exc:  # noqa: BLE001 - the link lives; the agent keeps its settings
        log.warning("settings.connect_read_failed", device=str(device_id), error=repr(exc))
        return []


async def applied(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    device_id: uuid.UUID,
    cameras: Collection[str],
    message: dict[str, Any],
    now: datetime,
) -> None:
    """Store the agent's report, committed in a session of its own."""
    try:
        async with sessionmaker() as db:
            await service.record_applied(
                db, device_id=device_id, cameras=cameras, message=message, now=now
            )
            await db.commit()
    except service.BadReport as exc:
        log.warning("settings.report_refused", device=str(device_id), error=str(exc))
    except Exception as exc:  # noqa: BLE001 - the agent reports again on its next change
        log.warning("settings.report_failed", device=str(device_id), error=repr(exc))
