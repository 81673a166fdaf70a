"""Notification rules (a member's own, per household) and one's own deliveries."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from doorwarden.deps import ClockDep, ContextDep, SessionDep, UserDep, authorize, household_resource
from doorwarden.notify import history
from doorwarden.notify import rules as service
from doorwarden.notify.schemas import NotificationOut, RulesIn, RulesOut
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
    return await history.deliveries(db, user_id=user.id, limit=limit)
