"""A camera's health report (PUT /api/v1/device/health; CONTEXT23 decision 4).

The agent sends the whole picture each time (when it changes, and with each heartbeat):
its spool's disk, the clips it holds back (final for now: a person must retry them), the
clips it defers (retried on their own backoff) and the undelivered clips it had to evict.
The server keeps the latest report per camera and tells the owner each *new* fact once,
as an integrity alert: the disk filling, a clip first held, an eviction first reported.

A fact is new when the report that came before did not contain it; clips/alerts.py checks
the household's alerts as well, so a report that arrives late or twice (the agent resends
until it gets its 204) never alerts again. This module is below clips in the layers, so it
names alert kinds by their value and leaves raising them to clips/alerts.py.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.crypto import strict_json
from doorwarden.devices.models import Device, DeviceHealth
from doorwarden.devices.schemas import HEALTH_MAX_BYTES, HealthIn, HealthOut

# clips.models.AlertKind values (that layer is above this one).
DISK_FULL = "camera_disk_full"
HELD = "clip_held"
EVICTED = "clips_evicted"

REASONS = {"spool_limit": "its spool reached its size limit", "disk_full": "its disk was full"}


@dataclass(frozen=True)
class Fact:
    """Something the owner must be told once: an alert to raise unless already raised."""

    kind: str
    sequence: int
    detail: str
    # Tells this fact from another of its kind at the same sequence (evictions).
    key: str
    extra: dict[str, Any] = field(default_factory=dict)


def parse(body: bytes) -> HealthIn:
    """The report in `body`, or MalformedError (not JSON, nested too deep, numbers no JSON
    reader agrees on) or pydantic's ValidationError (the wrong shape)."""
    strict_json.loads(body, max_bytes=HEALTH_MAX_BYTES)  # bounds checked before any parse
    # Validated from the JSON text itself: strict mode then reads ISO-8601 times as times
    # while refusing "5" for 5 and 1 for true.
    return HealthIn.model_validate_json(body)


def eviction_key(entry: dict[str, Any]) -> str:
    """One eviction episode as the camera logs it: where it began, why, and when. An
    episode that grows (a disk full for a while: clips 0..3, then 0..40) keeps its key,
    so it is alerted once; the page shows its count from the latest report."""
    return f"{entry['first']}:{entry['reason']}:{entry['at']}"


def _eviction_detail(entry: dict[str, Any]) -> str:
    why = REASONS[entry["reason"]]
    if entry["first"] is None:
        # Not sealed yet: evicted from the plain spool, or a recording the full disk
        # could not hold at all. Either way it never had a sequence number.
        return (
            f"{entry['count']} recording(s) not yet sealed were lost on the camera (evicted, "
            f"or never written) because {why}."
        )
    return f"{entry['count']} clip(s) not yet sent were deleted on the camera because {why}."


def _facts(device: Device, report: dict[str, Any], previous: dict[str, Any] | None) -> list[Fact]:
    facts: list[Fact] = []
    spool = report["spool"]
    if spool["disk_full"] and not (previous and previous["spool"]["disk_full"]):
        facts.append(
            Fact(
                kind=DISK_FULL,
                # The chain head when it filled: clips after it are the ones at risk.
                sequence=device.last_sequence or 0,
                detail=(
                    f"Its disk is full ({spool['free_bytes']} of {spool['total_bytes']} bytes "
                    f"free, {spool['pending_clips']} clips not yet sent): it keeps the newest "
                    "clips it can and evicts older ones. Free space on the camera's computer."
                ),
                key=DISK_FULL,
                extra={k: spool[k] for k in ("free_bytes", "total_bytes", "pending_clips")},
            )
        )
    held_before = {h["sequence"] for h in (previous or {}).get("held", [])}
    for held in report["held"]:
        if held["sequence"] in held_before:
            continue
        facts.append(
            Fact(
                kind=HELD,
                sequence=held["sequence"],
                detail=f"{held['code']}: {held['message']}",
                key=str(held["sequence"]),
                extra={"code": held["code"], "since": held["since"]},
            )
        )
    evicted_before = {eviction_key(e) for e in (previous or {}).get("evicted", [])}
    for entry in report["evicted"]:
        key = eviction_key(entry)
        if key in evicted_before:
            continue
        evicted_before.add(key)  # the same entry twice in one report is one fact
        first, last = entry["first"], entry["last"]
        facts.append(
            Fact(
                kind=EVICTED,
                sequence=first if first is not None else (last if last is not None else 0),
                detail=_eviction_detail(entry),
                key=key,
                extra={"first": first, "last": last, "count": entry["count"]}
                | {"reason": entry["reason"], "at": entry["at"], "key": key},
            )
        )
    return facts


async def record_report(
    db: AsyncSession, *, device: Device, report: HealthIn, now: datetime
) -> list[Fact]:
    """Keep `report` as the camera's latest; the facts in it that the report before did not
    have. The same report again changes nothing but reported_at."""
    # One report at a time per camera: two at once would both see the same "before" and
    # both tell the owner (PostgreSQL row lock; SQLite already has one writer).
    await db.execute(select(Device.id).where(Device.id == device.id).with_for_update())
    row = await db.get(DeviceHealth, device.id, populate_existing=True)
    current = report.model_dump(mode="json")
    previous = row.report if row is not None else None
    facts = _facts(device, current, previous)
    if row is None:
        row = DeviceHealth(device_id=device.id, reported_at=now, report=current)
        db.add(row)
    elif row.report != current:
        row.report = current
    row.reported_at = now
    if not report.spool.disk_full:
        row.disk_full_since = None
    elif row.disk_full_since is None:
        row.disk_full_since = now
    return facts


def health_out(row: DeviceHealth) -> HealthOut:
    return HealthOut.model_validate(
        {"reported_at": row.reported_at, "disk_full_since": row.disk_full_since, **row.report}
    )


async def health_of(db: AsyncSession, device_ids: list[uuid.UUID]) -> dict[uuid.UUID, HealthOut]:
    """The latest report of each camera that sent one."""
    if not device_ids:
        return {}
    rows = await db.scalars(select(DeviceHealth).where(DeviceHealth.device_id.in_(device_ids)))
    return {row.device_id: health_out(row) for row in rows}
