"""The schedule as a job: every `modes_interval_s` (15 s) the scheduler applies each household's
scheduled switches (service.apply_schedules), then, once that has committed, tells the
households' connected agents (push.py). Ended snoozes are forgotten on the same turn."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from doorwarden.audit.service import RequestContext
from doorwarden.live.relay import LiveHub
from doorwarden.modes import push, service, snoozes
from doorwarden.scheduler import Job

CONTEXT = RequestContext(client_address=None, user_agent="doorwarden mode schedule")
# Schedules are in minutes: a switch at 07:00 reaches the agents by 07:00:15.
MODES_INTERVAL_S = 15.0


def modes_job(
    sessionmaker: async_sessionmaker[AsyncSession],
    hub: LiveHub,
    now: Callable[[], datetime],
    interval_s: float = MODES_INTERVAL_S,
) -> Job[list[uuid.UUID]]:
    async def apply(db: AsyncSession) -> list[uuid.UUID]:
        moment = now()
        await snoozes.forget_ended(db, moment)
        return await service.apply_schedules(db, moment, CONTEXT)

    async def tell_agents(changed: list[uuid.UUID]) -> None:
        if not changed:
            return
        async with sessionmaker() as db:
            for household_id in changed:
                await push.send_modes(db, hub, household_id, now())

    return Job("modes.schedule", interval_s, apply, after_commit=tell_agents)
