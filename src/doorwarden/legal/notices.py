"""Telling households about legal process, and keeping quiet only as a court orders.

By default a household is told at once of every request that names it, of its decision,
of any hold and of exactly what was disclosed. A court's non-disclosure order (with an
end date) delays the notices to that date; `deliver_due` sends them then. While an order
runs, the audit events about the household are written without its id (the household is
in their private details, committed to in the public log), so neither the household's
activity page nor the public log gives the secret away early; the delivery event names
the household and the events that were held back.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.audit.models import AuditEvent
from doorwarden.audit.service import SYSTEM, Actor, RequestContext, record
from doorwarden.audit.tags import Tag
from doorwarden.legal.models import LegalRequest, Notice, NoticeKind


def is_secret(request: LegalRequest, now: datetime) -> bool:
    """A court's non-disclosure order still runs for this request."""
    return request.nondisclosure_until is not None and now < request.nondisclosure_until


def household_event(
    db: AsyncSession,
    *,
    request: LegalRequest,
    household_id: uuid.UUID,
    tag: Tag,
    actor: Actor,
    ctx: RequestContext,
    now: datetime,
    target_type: str = "legal_request",
    target_id: uuid.UUID | None = None,
    extra: dict[str, Any] | None = None,
) -> AuditEvent:
    """An audit event about one household's part in a request (see the module note)."""
    details = {"request": str(request.id), **(extra or {})}
    secret = is_secret(request, now)
    if secret:
        details["household"] = str(household_id)
        details["nondisclosure_until"] = request.nondisclosure_until.isoformat()  # type: ignore[union-attr]
    return record(
        db,
        tag=tag,
        actor=actor,
        ctx=ctx,
        household_id=None if secret else household_id,
        agency_id=request.agency_id,
        target_type=target_type,
        target_id=target_id or request.id,
        extra=details,
        occurred_at=now,
    )


async def notify(
    db: AsyncSession,
    *,
    request: LegalRequest,
    household_ids: Iterable[uuid.UUID],
    kind: NoticeKind,
    message: str,
    ctx: RequestContext,
    now: datetime,
    package_id: uuid.UUID | None = None,
) -> list[Notice]:
    notices = []
    secret = is_secret(request, now)
    for household_id in sorted(set(household_ids)):
        notice = Notice(
            id=uuid.uuid4(),
            household_id=household_id,
            request_id=request.id,
            package_id=package_id,
            kind=kind,
            message=message,
            created_at=now,
            deliver_after=request.nondisclosure_until if secret else None,
            delivered_at=None if secret else now,
        )
        db.add(notice)
        notices.append(notice)
        household_event(
            db,
            request=request,
            household_id=household_id,
            tag=Tag.legal_notice_delay if secret else Tag.legal_notice_deliver,
            actor=SYSTEM,
            ctx=ctx,
            now=now,
            target_type="legal_notice",
            target_id=notice.id,
            extra={"kind": str(kind)},
        )
    return notices


async def deliver_due(db: AsyncSession, *, now: datetime, ctx: RequestContext) -> int:
    """Deliver the notices whose non-disclosure order has ended. Each delivery names the
    household and the events about it that were held back meanwhile."""
    due = (
        await db.scalars(
            select(Notice)
            .where(Notice.delivered_at.is_(None), Notice.deliver_after <= now)
            .order_by(Notice.deliver_after, Notice.id)
            .limit(1000)
        )
    ).all()
    for notice in due:
        notice.delivered_at = now
        held_back = (
            await db.scalars(
                select(AuditEvent.id).where(
                    AuditEvent.household_id.is_(None),
                    AuditEvent.target_id.is_not(None),
                    AuditEvent.extra["household"].as_string() == str(notice.household_id),
                    AuditEvent.extra["request"].as_string() == str(notice.request_id),
                )
            )
        ).all()
        record(
            db,
            tag=Tag.legal_notice_deliver,
            actor=SYSTEM,
            ctx=ctx,
            household_id=notice.household_id,
            target_type="legal_notice",
            target_id=notice.id,
            extra={
                "request": str(notice.request_id),
                "kind": str(notice.kind),
                "delayed_until": notice.deliver_after.isoformat() if notice.deliver_after else None,
                "held_back_events": sorted(str(e) for e in held_back),
            },
            occurred_at=now,
        )
    return len(due)


async def delivered(db: AsyncSession, household_id: uuid.UUID) -> Sequence[Notice]:
    query = (
        select(Notice)
        .where(Notice.household_id == household_id, Notice.delivered_at.is_not(None))
        .order_by(Notice.delivered_at.desc(), Notice.created_at.desc())
    )
    return (await db.scalars(query)).all()


async def told_requests(db: AsyncSession, household_id: uuid.UUID) -> set[uuid.UUID]:
    """The requests this household has been told of (its view shows nothing else)."""
    query = select(Notice.request_id).where(
        Notice.household_id == household_id, Notice.delivered_at.is_not(None)
    )
    return set((await db.scalars(query)).all())
