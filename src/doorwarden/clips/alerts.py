"""Integrity alerts: recorded with an audit event for the household, so the owner is
told, and committed even when the request that caused them is refused."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.audit.service import Actor, RequestContext, record
from doorwarden.audit.tags import Tag
from doorwarden.clips.models import AlertKind, IntegrityAlert
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
