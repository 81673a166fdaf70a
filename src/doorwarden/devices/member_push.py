"""Nudging a household's connected cameras when its member set changes (docs/e2e.md,
"Rotation"): `{"type": "member_set"}` over the agent's control connection (the live
hub's `tell`, as camera settings are sent: devices/settings/push.py).

The message carries nothing: the agent answers it by fetching the signed set (GET
/api/v1/device, crypto/member_set.py) at once, instead of at its next clip or heartbeat,
so that live sessions too follow a removal within a round trip. A forged or replayed
nudge can cause one request, never a change of recipients. Cameras not connected hear
of the change before they seal (the agent's pre-seal refresh), so nothing is queued.

Sent after the change is committed (else the agent could fetch the old set). This
package sits below the live relay (import layers): the hub is described here by what
is used of it, not imported.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Protocol

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.devices.models import Device
from doorwarden.households.models import HouseholdMember

log = structlog.get_logger("doorwarden.devices.member_push")
MESSAGE: dict[str, object] = {"type": "member_set"}


class Hub(Protocol):
    """What is used of live.relay.LiveHub."""

    @property
    def agents(self) -> Mapping[uuid.UUID, object]: ...

    async def tell(self, device_id: uuid.UUID, message: dict[str, object]) -> bool: ...


async def households_of(db: AsyncSession, user_id: uuid.UUID) -> list[uuid.UUID]:
    """The households whose member set includes this user's key."""
    query = select(HouseholdMember.household_id).where(HouseholdMember.user_id == user_id)
    return list((await db.scalars(query)).all())


async def nudge(db: AsyncSession, hub: Hub, household_ids: Iterable[uuid.UUID]) -> int:
    """Tell every connected camera of these households to fetch its member set now; the
    number told."""
    wanted = sorted(set(household_ids))
    if not wanted:
        return 0
    query = select(Device.id).where(Device.household_id.in_(wanted), Device.revoked_at.is_(None))
    told = 0
    for device_id in (await db.scalars(query)).all():
        if device_id in hub.agents and await hub.tell(device_id, dict(MESSAGE)):
            told += 1
    log.info("devices.member_set_nudged", households=len(wanted), cameras=told)
    return told
