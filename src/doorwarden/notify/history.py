"""One's own notifications, newest first, each with every delivery attempt: what the
account API (`GET /api/v1/account/notifications`) and the notifications page show."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.notify.models import Notification, NotificationAttempt
from doorwarden.notify.schemas import AttemptOut, NotificationOut


async def deliveries(
    db: AsyncSession,
    *,
    user_id: uuid.UUID,
    limit: int,
    household_id: uuid.UUID | None = None,
) -> list[NotificationOut]:
    """The member's newest `limit` notifications (one household's, when given)."""
    query = select(Notification).where(Notification.user_id == user_id)
    if household_id is not None:
        query = query.where(Notification.household_id == household_id)
    notes = list(
        await db.scalars(
            query.order_by(Notification.created_at.desc(), Notification.id).limit(limit)
        )
    )
    attempts: dict[uuid.UUID, list[AttemptOut]] = {n.id: [] for n in notes}
    if notes:
        for attempt in await db.scalars(
            select(NotificationAttempt)
            .where(NotificationAttempt.notification_id.in_(list(attempts)))
            .order_by(NotificationAttempt.at, NotificationAttempt.id)
        ):
            attempts[attempt.notification_id].append(AttemptOut.model_validate(attempt))
    return [
        NotificationOut(
            id=n.id,
            household_id=n.household_id,
            kind=n.kind,
            device_id=n.device_id,
            title=n.title,
            body=n.body,
            url=n.url,
            thumbnail=n.thumbnail,
            occurred_at=n.occurred_at,
            created_at=n.created_at,
            status=n.status,
            email=n.email,
            next_attempt_at=n.next_attempt_at,
            attempts=attempts[n.id],
        )
        for n in notes
    ]
