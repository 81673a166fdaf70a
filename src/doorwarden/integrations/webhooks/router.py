"""Webhooks API (docs/webhooks.md): a household's endpoints, a test ping, and the recent
deliveries. Owners only (policy: integration:webhooks); another household's endpoint is
404, as one that never was."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Request, status

from doorwarden.deps import (
    ClockDep,
    ContextDep,
    SessionDep,
    SettingsDep,
    UserDep,
    authorize,
    household_resource,
)
from doorwarden.households import service as households
from doorwarden.integrations.webhooks import service, tasks
from doorwarden.integrations.webhooks.models import WebhookDelivery, WebhookEndpoint
from doorwarden.integrations.webhooks.schemas import (
    DeliveryOut,
    TestOut,
    WebhookCreated,
    WebhookIn,
    WebhookOut,
    WebhookPatch,
)
from doorwarden.policy import Action, Principal

router = APIRouter(prefix="/api/v1/households/{household_id}/webhooks", tags=["webhooks"])
Owner = Annotated[Principal, authorize(Action.webhooks_manage, household_resource)]


def webhook_out(e: WebhookEndpoint) -> WebhookOut:
    return WebhookOut(
        id=e.id, url=e.url, description=e.description, event_kinds=list(e.event_kinds),
        enabled=e.enabled, disabled_reason=e.disabled_reason, failing_since=e.failing_since,
        last_success_at=e.last_success_at, created_at=e.created_at, updated_at=e.updated_at,
    )  # fmt: skip


def delivery_out(d: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut(
        id=d.id, webhook_id=d.webhook_id, event_kind=str(d.event_kind), status=str(d.status),
        attempts=d.attempts, created_at=d.created_at, next_attempt_at=d.next_attempt_at,
        last_status_code=d.last_status_code, last_error=d.last_error,
        delivered_at=d.delivered_at, payload=d.payload,
    )  # fmt: skip


@router.get("", response_model=list[WebhookOut])
async def list_webhooks(household_id: uuid.UUID, _p: Owner, db: SessionDep) -> list[WebhookOut]:
    await households.get_household(db, household_id)
    return [webhook_out(e) for e in await service.endpoints_of(db, household_id)]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=WebhookCreated)
async def create_webhook(
    household_id: uuid.UUID, body: WebhookIn, _p: Owner, user: UserDep, db: SessionDep,
    settings: SettingsDep, ctx: ContextDep, clock: ClockDep,
) -> WebhookCreated:  # fmt: skip
    await households.get_household(db, household_id)
    endpoint, secret = await service.register(
        db, household_id=household_id, body=body, actor=user, settings=settings, ctx=ctx,
        now=clock.now(),
    )  # fmt: skip
    return WebhookCreated(**webhook_out(endpoint).model_dump(), secret=secret)


@router.patch("/{webhook_id}", response_model=WebhookCreated | WebhookOut)
async def update_webhook(
    household_id: uuid.UUID, webhook_id: uuid.UUID, body: WebhookPatch, _p: Owner,
    user: UserDep, db: SessionDep, settings: SettingsDep, ctx: ContextDep, clock: ClockDep,
) -> WebhookCreated | WebhookOut:  # fmt: skip
    endpoint = await service.get_endpoint(db, household_id, webhook_id)
    secret = await service.update(
        db, endpoint=endpoint, body=body, actor=user, settings=settings, ctx=ctx,
        now=clock.now(),
    )  # fmt: skip
    out = webhook_out(endpoint)
    return WebhookCreated(**out.model_dump(), secret=secret) if secret else out


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_webhook(
    household_id: uuid.UUID, webhook_id: uuid.UUID, _p: Owner, user: UserDep,
    db: SessionDep, ctx: ContextDep,
) -> None:  # fmt: skip
    endpoint = await service.get_endpoint(db, household_id, webhook_id)
    await service.delete(db, endpoint=endpoint, actor=user, ctx=ctx)


@router.post("/{webhook_id}/test", status_code=status.HTTP_202_ACCEPTED, response_model=TestOut)
async def send_test(
    request: Request, household_id: uuid.UUID, webhook_id: uuid.UUID, _p: Owner,
    db: SessionDep, clock: ClockDep,
) -> TestOut:  # fmt: skip
    endpoint = await service.get_endpoint(db, household_id, webhook_id)
    delivery = service.ping(db, endpoint=endpoint, now=clock.now())
    await db.commit()
    tasks.wake(request.app.state)
    return TestOut(delivery_id=delivery.id, webhook_id=delivery.webhook_id)


@router.get("/{webhook_id}/deliveries", response_model=list[DeliveryOut])
async def list_deliveries(
    household_id: uuid.UUID, webhook_id: uuid.UUID, _p: Owner, db: SessionDep
) -> list[DeliveryOut]:
    endpoint = await service.get_endpoint(db, household_id, webhook_id)
    return [delivery_out(d) for d in await service.deliveries_of(db, endpoint)]
