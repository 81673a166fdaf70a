"""Notification rules (a member's own, per household) and one's own deliveries."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from doorwarden.deps import ClockDep, ContextDep, SessionDep, UserDep, authorize, household_resource
from doorwarden.notify import rules as service
from doorwarden.notify.models import Notification, NotificationAttempt
from doorwarden.notify.schemas import AttemptOut, NotificationOut, RulesIn, RulesOut
from doorwarden.policy import Action, Principal

router = APIRouter(tags=["notifications"])
RULES = "/api/v1/households/{household_id}/notification-rules"


@router.get(RULES, response_model=RulesOut)
async def read_rules(
    household_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.notify_rules, household_resource)],
    user: UserDep,
    db: SessionDep,
) -> RulesOut:
    """The caller's own rules for this household (the defaults until saved)."""
    return (await service.rule_of(db, household_id=household_id, user_id=user.id)).out()


@router.put(RULES, response_model=RulesOut)
async def save_rules(
    household_id: uuid.UUID,
    body: RulesIn,
    _p: Annotated[Principal, authorize(Action.notify_rules, household_resource)],
    user: UserDep,
    db: SessionDep,
    ctx: ContextDep,
    clock: ClockDep,
) -> RulesOut:
    rule = await service.save_rules(
        db, household_id=household_id, user=user, rules=body, ctx=ctx, now=clock.now()
    )
    return rule.out()


@router.get("/api/v1/account/notifications", response_model=list[NotificationOut])
async def my_notifications(
    _p: Annotated[Principal, authorize(Action.notifications_read)],
    user: UserDep,
    db: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[NotificationOut]:
    """One's own notifications, newest first, each with every delivery attempt."""
    notes = list(
        await db.scalars(
            select(Notification)
            .where(Notification.user_id == user.id)
            .order_by(Notification.created_at.desc(), Notification.id)
            .limit(limit)
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
