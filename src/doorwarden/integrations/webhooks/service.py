"""Registering, listing, changing and removing a household's webhook endpoints, and
enqueueing deliveries. Services never commit (DESIGN convention 1): the route or the job
does, so an endpoint and its audit entry, or an event's deliveries and the marker that
says they were made (sources.py), share one transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.accounts.models import User
from doorwarden.audit.service import Actor, RequestContext, record
from doorwarden.audit.tags import Tag
from doorwarden.config import Settings
from doorwarden.errors import Conflict, DomainError, NotFound
from doorwarden.households.models import Household
from doorwarden.integrations.webhooks import signing, ssrf
from doorwarden.integrations.webhooks.models import (
    DeliveryStatus,
    EventKind,
    SourceKind,
    WebhookDelivery,
    WebhookEndpoint,
)
from doorwarden.integrations.webhooks.schemas import WebhookIn, WebhookPatch

# A rotated-out secret keeps signing beside the new one this long.
PREVIOUS_SECRET_FOR = timedelta(hours=24)
DELIVERIES_SHOWN = 50


class EndpointRefused(DomainError):
    status_code = 422
    code = "endpoint_refused"


class TooManyEndpoints(Conflict):
    code = "too_many_endpoints"


def _actor(user: User) -> Actor:
    return Actor(user_id=user.id, role=str(user.role))


def _secret(settings: Settings) -> bytes:
    return settings.secret_key.get_secret_value().encode()


def resolver(settings: Settings) -> ssrf.Resolver:
    return ssrf.resolver_with(settings.webhook_resolve)


async def check_endpoint(url: str, *, settings: Settings) -> None:
    """Refused (EndpointRefused) unless the URL may be sent to now: its form, and where
    its host resolves (delivery.py checks again at every attempt)."""
    try:
        target = ssrf.check_url(url, development=settings.development)
        await ssrf.pin(target, development=settings.development, resolver=resolver(settings))
    except ssrf.Refused as exc:
        raise EndpointRefused(str(exc), details={"field": "url"}) from exc


async def endpoints_of(db: AsyncSession, household_id: uuid.UUID) -> Sequence[WebhookEndpoint]:
    rows = await db.scalars(
        select(WebhookEndpoint)
        .where(WebhookEndpoint.household_id == household_id)
        .order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
    )
    return rows.all()


async def get_endpoint(
    db: AsyncSession, household_id: uuid.UUID, endpoint_id: uuid.UUID
) -> WebhookEndpoint:
    """The household's endpoint; another household's is as absent as one that never was."""
    endpoint = await db.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.household_id != household_id:
        raise NotFound("No such webhook in this household.")
    return endpoint


async def register(
    db: AsyncSession, *, household_id: uuid.UUID, body: WebhookIn, actor: User,
    settings: Settings, ctx: RequestContext, now: datetime,
) -> tuple[WebhookEndpoint, str]:  # fmt: skip
    """The new endpoint and its secret (`whsec_...`, never readable again)."""
    await check_endpoint(body.url, settings=settings)
    # One registration at a time per household, so two at once cannot pass the limit.
    await db.execute(select(Household.id).where(Household.id == household_id).with_for_update())
    count = await db.scalar(
        select(func.count()).where(WebhookEndpoint.household_id == household_id)
    )
    if (count or 0) >= settings.webhook_max_endpoints:
        raise TooManyEndpoints(
            f"A household may have at most {settings.webhook_max_endpoints} webhooks; "
            "remove one first.",
            details={"limit": settings.webhook_max_endpoints},
        )
    key = signing.new_key()
    endpoint_id = uuid.uuid4()
    endpoint = WebhookEndpoint(
        id=endpoint_id,
        household_id=household_id,
        url=body.url,
        description=body.description,
        event_kinds=sorted(set(body.event_kinds)),
        secret_sealed=signing.seal(_secret(settings), endpoint_id, key),
        enabled=True,
        enabled_at=now,
        created_by=actor.id,
        created_at=now,
        updated_at=now,
    )
    db.add(endpoint)
    record(
        db, tag=Tag.webhook_create, actor=_actor(actor), ctx=ctx, household_id=household_id,
        target_type="webhook", target_id=endpoint_id,
        extra={"event_kinds": endpoint.event_kinds},
    )  # fmt: skip
    return endpoint, signing.secret_text(key)


async def update(
    db: AsyncSession, *, endpoint: WebhookEndpoint, body: WebhookPatch, actor: User,
    settings: Settings, ctx: RequestContext, now: datetime,
) -> str | None:  # fmt: skip
    """Apply the change; returns the new secret when one was asked for, else None."""
    changed: list[str] = []
    if body.url is not None and body.url != endpoint.url:
        await check_endpoint(body.url, settings=settings)
        endpoint.url = body.url
        changed.append("url")
    if body.description is not None and body.description != endpoint.description:
        endpoint.description = body.description
        changed.append("description")
    if body.event_kinds is not None and sorted(set(body.event_kinds)) != endpoint.event_kinds:
        endpoint.event_kinds = sorted(set(body.event_kinds))
        changed.append("event_kinds")
    if body.enabled is not None and body.enabled != endpoint.enabled:
        endpoint.enabled = body.enabled
        endpoint.enabled_at = now
        endpoint.disabled_reason = None
        endpoint.failing_since = None  # a fresh start: the days-failing clock restarts
        changed.append("enabled")
    secret = None
    if body.rotate_secret:
        secret = rotate(endpoint, settings=settings, now=now)
        changed.append("secret")
    if not changed:
        return None
    endpoint.updated_at = now
    record(
        db, tag=Tag.webhook_update, actor=_actor(actor), ctx=ctx,
        household_id=endpoint.household_id, target_type="webhook", target_id=endpoint.id,
        extra={"changed": changed, "enabled": endpoint.enabled},
    )  # fmt: skip
    return secret


def rotate(endpoint: WebhookEndpoint, *, settings: Settings, now: datetime) -> str:
    """A new secret; the current one keeps signing beside it for PREVIOUS_SECRET_FOR."""
    key = signing.new_key()
    endpoint.previous_secret_sealed = endpoint.secret_sealed
    endpoint.previous_until = now + PREVIOUS_SECRET_FOR
    endpoint.secret_sealed = signing.seal(_secret(settings), endpoint.id, key)
    return signing.secret_text(key)


async def delete(
    db: AsyncSession, *, endpoint: WebhookEndpoint, actor: User, ctx: RequestContext
) -> None:
    """Removed with its deliveries (nothing more is sent to it)."""
    record(
        db, tag=Tag.webhook_delete, actor=_actor(actor), ctx=ctx,
        household_id=endpoint.household_id, target_type="webhook", target_id=endpoint.id,
        extra={"event_kinds": endpoint.event_kinds},
    )  # fmt: skip
    await db.delete(endpoint)


def payload(kind: EventKind, at: datetime, data: dict[str, Any]) -> dict[str, Any]:
    """The body every delivery sends (Standard Webhooks' recommended shape)."""
    return {"type": str(kind), "timestamp": at.isoformat(), "data": data}


async def enqueue(
    db: AsyncSession, *, household_id: uuid.UUID, kind: EventKind, source: SourceKind,
    source_id: uuid.UUID | None, body: dict[str, Any], now: datetime,
    endpoints: Sequence[WebhookEndpoint] | None = None, since: datetime | None = None,
) -> list[WebhookDelivery]:  # fmt: skip
    """One delivery per enabled endpoint of the household that wants `kind` (on since
    before `since`, when given: an endpoint hears of what happened while it was on), in
    the caller's transaction. `endpoints`: the household's, when the caller has them."""
    if endpoints is None:
        endpoints = await endpoints_of(db, household_id)
    made = []
    for endpoint in endpoints:
        if not endpoint.enabled or str(kind) not in endpoint.event_kinds:
            continue
        if since is not None and endpoint.enabled_at > since:
            continue
        made.append(_delivery(endpoint, kind, source, source_id, body, now))
    db.add_all(made)
    return made


def _delivery(
    endpoint: WebhookEndpoint, kind: EventKind, source: SourceKind,
    source_id: uuid.UUID | None, body: dict[str, Any], now: datetime,
) -> WebhookDelivery:  # fmt: skip
    return WebhookDelivery(
        id=uuid.uuid4(),
        endpoint_id=endpoint.id,
        event_kind=kind,
        source=source,
        source_id=source_id,
        payload=body,
        attempts=0,
        status=DeliveryStatus.pending,
        next_attempt_at=now,
        created_at=now,
    )


def ping(db: AsyncSession, *, endpoint: WebhookEndpoint, now: datetime) -> WebhookDelivery:
    """A test delivery to this endpoint alone, whatever kinds it wants (even disabled:
    an owner checks a receiver before turning it on)."""
    body = payload(
        EventKind.ping,
        now,
        {"household_id": str(endpoint.household_id), "webhook": str(endpoint.id)},
    )
    delivery = _delivery(endpoint, EventKind.ping, SourceKind.ping, None, body, now)
    db.add(delivery)
    return delivery


async def deliveries_of(
    db: AsyncSession, endpoint: WebhookEndpoint, *, limit: int = DELIVERIES_SHOWN
) -> Sequence[WebhookDelivery]:
    rows = await db.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint.id)
        .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
        .limit(limit)
    )
    return rows.all()
