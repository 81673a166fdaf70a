"""What the webhook tests share: running the delivery job, registering an endpoint."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from doorwarden.integrations.webhooks.models import WebhookAttempt, WebhookDelivery
from doorwarden.scheduler import run_now


async def deliver(app: FastAPI) -> None:
    """Run the job (every batch) as the scheduler would, once a wake's turns are over."""
    await app.state.webhooks_dispatcher.idle()
    job = app.state.webhooks_dispatcher.job
    while (await run_now(app.state.sessionmaker, job)).more:
        pass


async def register(
    client: httpx.AsyncClient, household_id: uuid.UUID, url: str, kinds: list[str], **extra: Any
) -> dict[str, Any]:
    response = await client.post(
        f"/api/v1/households/{household_id}/webhooks",
        json={"url": url, "event_kinds": kinds, **extra},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def deliveries(app: FastAPI, endpoint_id: str) -> list[WebhookDelivery]:
    async with app.state.sessionmaker() as db:
        rows = await db.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == uuid.UUID(endpoint_id))
            .order_by(WebhookDelivery.created_at)
        )
        return list(rows)


async def attempts(app: FastAPI, delivery_id: uuid.UUID) -> list[WebhookAttempt]:
    async with app.state.sessionmaker() as db:
        rows = await db.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id == delivery_id)
            .order_by(WebhookAttempt.at)
        )
        return list(rows)
