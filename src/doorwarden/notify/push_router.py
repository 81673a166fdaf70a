"""Web Push API: the server's VAPID public key, and one's own push subscriptions."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Response, status

from doorwarden.deps import ClockDep, ContextDep, SessionDep, SettingsDep, UserDep, authorize
from doorwarden.notify import subscriptions
from doorwarden.notify.push_schemas import (
    PushSubscriptionIn,
    PushSubscriptionOut,
    VapidPublicKeyOut,
)
from doorwarden.notify.vapid import instance_vapid_key
from doorwarden.policy import Action, Principal

router = APIRouter(prefix="/api/v1", tags=["notifications"])

Public = Annotated[Principal, authorize(Action.page_public)]
Subscribe = Annotated[Principal, authorize(Action.push_subscribe)]
Manage = Annotated[Principal, authorize(Action.push_subscriptions_manage)]


@router.get("/notify/vapid-public-key", response_model=VapidPublicKeyOut)
async def vapid_public_key(_p: Public, settings: SettingsDep) -> VapidPublicKeyOut:
    """Public: what a browser passes to PushManager.subscribe as applicationServerKey."""
    return VapidPublicKeyOut(key=instance_vapid_key(settings).public_key_b64)


@router.post(
    "/account/push-subscriptions",
    status_code=status.HTTP_201_CREATED,
    response_model=PushSubscriptionOut,
    responses={200: {"description": "This browser was already subscribed: the same row."}},
)
async def subscribe(
    body: PushSubscriptionIn,
    response: Response,
    _p: Subscribe,
    user: UserDep,
    db: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    ctx: ContextDep,
) -> PushSubscriptionOut:
    subscription, created = await subscriptions.subscribe(
        db,
        user=user,
        endpoint=body.endpoint,
        p256dh=body.keys.p256dh,
        auth=body.keys.auth,
        label=body.label,
        development=settings.development,
        ctx=ctx,
        now=clock.now(),
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return PushSubscriptionOut.model_validate(subscription)


@router.get("/account/push-subscriptions", response_model=list[PushSubscriptionOut])
async def list_subscriptions(
    _p: Manage, user: UserDep, db: SessionDep
) -> list[PushSubscriptionOut]:
    rows = await subscriptions.list_subscriptions(db, user_id=user.id)
    return [PushSubscriptionOut.model_validate(s) for s in rows]


@router.delete(
    "/account/push-subscriptions/{subscription_id}", status_code=status.HTTP_204_NO_CONTENT
)
async def unsubscribe(
    subscription_id: uuid.UUID, _p: Manage, user: UserDep, db: SessionDep, ctx: ContextDep
) -> None:
    await subscriptions.unsubscribe(db, user=user, subscription_id=subscription_id, ctx=ctx)
