"""Integrity alerts: recorded with an audit event for the household, so the owner is
told, and committed even when the request that caused them is refused."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.audit.service import Actor, RequestContext, record
from doorwarden.audit.tags import Tag
from doorwarden.clips.models import AlertKind, IntegrityAlert
from doorwarden.devices.health import Fact
from doorwarden.devices.models import Device


def raise_alert(
    db: AsyncSession,
    *,
    device: Device,
    sequence: int,
    kind: AlertKind,
    detail: str,
    ctx: RequestContext,
    extra: dict[str, Any] | None = None,
) -> IntegrityAlert:
    alert = IntegrityAlert(
        household_id=device.household_id,
        device_id=device.id,
        sequence=sequence,
        kind=kind,
        detail=detail[:500],
        extra=extra or {},
    )
    db.add(alert)
    record(
        db,
        tag=Tag.clip_integrity_alert,
        actor=Actor(user_id=None, role="device"),
        ctx=ctx,
        household_id=device.household_id,
        target_type="device",
        target_id=device.id,
        extra={"kind": str(kind), "sequence": sequence, "detail": detail[:500]},
    )
    return alert


async def raise_health_alerts(
    db: AsyncSession, *, device: Device, facts: Sequence[Fact], ctx: RequestContext
) -> list[IntegrityAlert]:
    """Alerts for the new facts of a camera's health report (devices/health.py), each at
    most once: a held clip or an eviction already alerted (a report resent, or one that
    arrived late) is not raised again. The disk filling is a transition, alerted by the
    report that first says so."""
    kinds = {AlertKind(fact.kind) for fact in facts} - {AlertKind.camera_disk_full}
    told: set[tuple[AlertKind, int, str]] = set()
    if kinds:
        query = select(IntegrityAlert.kind, IntegrityAlert.sequence, IntegrityAlert.extra).where(
            # household_id first: the alerts' index; a camera's alerts are few.
            IntegrityAlert.household_id == device.household_id,
            IntegrityAlert.device_id == device.id,
            IntegrityAlert.kind.in_(kinds),
            IntegrityAlert.sequence.in_({fact.sequence for fact in facts}),
        )
        for kind, sequence, extra in (await db.execute(query)).all():
            key = str(sequence) if kind is AlertKind.clip_held else str(extra.get("key"))
            told.add((kind, sequence, key))
    raised = []
    for fact in facts:
        kind = AlertKind(fact.kind)
        if (kind, fact.sequence, fact.key) in told:
            continue
        told.add((kind, fact.sequence, fact.key))
        raised.append(
            raise_alert(
                db,
                device=device,
                sequence=fact.sequence,
                kind=kind,
                detail=fact.detail,
                ctx=ctx,
                extra=fact.extra,
            )
        )
    return raised
