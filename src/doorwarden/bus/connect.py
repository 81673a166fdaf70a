"""Which bus the settings ask for, and what happens when it does not answer at start."""

from __future__ import annotations

import nats.errors
import structlog

from doorwarden.bus.base import Bus, BusUnavailable
from doorwarden.bus.local import LocalBus
from doorwarden.bus.natsbus import NatsBus
from doorwarden.config import Settings

log = structlog.get_logger("doorwarden.bus")


def _servers(url: str) -> list[str]:
    return [s.strip() for s in url.split(",") if s.strip()]


async def connect_bus(settings: Settings, *, database_is_sqlite: bool) -> Bus:
    """LocalBus without DOORWARDEN_NATS_URL. With it, NATS; when NATS does not answer at
    start: on PostgreSQL (several instances may share the database, and an instance that
    cannot hear the others would serve a partial live view) `BusUnavailable`; on SQLite
    (one instance by nature) a warning, and this process alone."""
    prefix = settings.nats_subject_prefix
    if not settings.nats_url:
        return LocalBus(prefix)
    try:
        return await NatsBus.connect(_servers(settings.nats_url), prefix)
    except (nats.errors.Error, OSError, TimeoutError) as exc:
        if not database_is_sqlite:
            raise BusUnavailable(
                f"NATS does not answer at {settings.nats_url} (DOORWARDEN_NATS_URL): "
                f"{type(exc).__name__}. Several server instances need it to reach each "
                "other's cameras: start NATS there, or unset DOORWARDEN_NATS_URL to run a "
                "single instance."
            ) from exc
        log.warning(
            "bus.unavailable_in_process",
            url=settings.nats_url,
            error=repr(exc),
            message="NATS does not answer; on SQLite this is one instance: live view runs "
            "in-process.",
        )
        return LocalBus(prefix)


async def check_bus(settings: Settings, *, database_is_sqlite: bool) -> None:
    """Raise BusUnavailable as `connect_bus` would (for `doorwarden serve` to say so before
    uvicorn starts, as a message rather than a lifespan traceback)."""
    bus = await connect_bus(settings, database_is_sqlite=database_is_sqlite)
    await bus.close()
