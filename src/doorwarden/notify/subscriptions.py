"""Members' Web Push subscriptions: subscribe (idempotent per endpoint), list and revoke
one's own, and what the dispatcher needs (who to push to, mark a success, drop the dead).

Services never commit (DESIGN convention 1): the router or the job does.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Collection, Sequence
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.accounts.models import User
from doorwarden.accounts.service import actor_of
from doorwarden.audit.service import SYSTEM, RequestContext, record
from doorwarden.audit.tags import Tag
from doorwarden.errors import Conflict, InvalidInput, NotFound
from doorwarden.notify.push import EndpointRefused, check_endpoint
from doorwarden.notify.push_models import PushSubscription
from doorwarden.notify.vapid import b64url_decode

MAX_PER_USER = 20
AUTH_BYTES = 16  # RFC 8291 section 3.2
TARGET = "push_subscription"
SYSTEM_CONTEXT = RequestContext(client_address=None, user_agent="doorwarden notifications")


class TooManySubscriptions(Conflict):
    code = "too_many_subscriptions"


def endpoint_digest(endpoint: str) -> str:
    return hashlib.sha256(endpoint.encode("utf-8")).hexdigest()


def parse_keys(p256dh: str, auth: str) -> tuple[bytes, bytes]:
    """The browser's keys, decoded and checked: p256dh an uncompressed point on P-256,
    auth 16 bytes. InvalidInput names which is wrong."""
    try:
        point = b64url_decode(p256dh)
    except ValueError:
        raise InvalidInput(
            "keys.p256dh is not base64url.", details={"field": "keys.p256dh"}
        ) from None
    if len(point) != 65 or point[0] != 4:
        raise InvalidInput(
            "keys.p256dh must be an uncompressed P-256 point (65 bytes).",
            details={"field": "keys.p256dh"},
        )
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        raise InvalidInput(
            "keys.p256dh is not a point on P-256.", details={"field": "keys.p256dh"}
        ) from None
    try:
        secret = b64url_decode(auth)
    except ValueError:
        raise InvalidInput("keys.auth is not base64url.", details={"field": "keys.auth"}) from None
    if len(secret) != AUTH_BYTES:
        raise InvalidInput(f"keys.auth must be {AUTH_BYTES} bytes.", details={"field": "keys.auth"})
    return point, secret


async def _own(db: AsyncSession, user_id: uuid.UUID, digest: str) -> PushSubscription | None:
    query = select(PushSubscription).where(
        PushSubscription.user_id == user_id, PushSubscription.endpoint_sha256 == digest
    )
    return (await db.scalars(query)).first()


async def subscribe(
    db: AsyncSession,
    *,
    user: User,
    endpoint: str,
    p256dh: str,
    auth: str,
    label: str | None,
    development: bool,
    ctx: RequestContext,
    now: datetime,
) -> tuple[PushSubscription, bool]:
    """(the subscription, whether it is new). The same endpoint again is the same row,
    its keys and label brought up to date (a browser that subscribes again sends what
    is current)."""
    try:
        host = check_endpoint(endpoint, development=development)
    except EndpointRefused as exc:
        raise InvalidInput(str(exc), details={"field": "endpoint"}) from None
    point, secret = parse_keys(p256dh, auth)
    label = label or None
    digest = endpoint_digest(endpoint)
    existing = await _own(db, user.id, digest)
    if existing is not None:
        existing.p256dh, existing.auth = point, secret
        if label is not None:
            existing.label = label
        return existing, False
    count = await db.scalar(
        select(func.count())
        .select_from(PushSubscription)
        .where(PushSubscription.user_id == user.id)
    )
    if (count or 0) >= MAX_PER_USER:
        raise TooManySubscriptions(
            f"At most {MAX_PER_USER} devices may receive notifications; remove one first.",
            details={"limit": MAX_PER_USER},
        )
    subscription = PushSubscription(
        user_id=user.id,
        endpoint=endpoint,
        endpoint_sha256=digest,
        endpoint_host=host.lower()[:255],
        p256dh=point,
        auth=secret,
        label=label,
        created_at=now,
    )
    try:
        async with db.begin_nested():  # the same browser subscribing twice at once
            db.add(subscription)
            await db.flush()
    except IntegrityError:
        raced = await _own(db, user.id, digest)
        if raced is None:
            raise
        return raced, False
    record(
        db,
        tag=Tag.push_subscription_create,
        actor=actor_of(user),
        ctx=ctx,
        target_type=TARGET,
        target_id=subscription.id,
        extra={"endpoint_host": subscription.endpoint_host, "label": label},
    )
    return subscription, True


async def list_subscriptions(db: AsyncSession, *, user_id: uuid.UUID) -> Sequence[PushSubscription]:
    query = (
        select(PushSubscription)
        .where(PushSubscription.user_id == user_id)
        .order_by(PushSubscription.created_at.desc(), PushSubscription.id)
    )
    return (await db.scalars(query)).all()


async def unsubscribe(
    db: AsyncSession, *, user: User, subscription_id: uuid.UUID, ctx: RequestContext
) -> None:
    subscription = await db.get(PushSubscription, subscription_id)
    # Someone else's subscription is reported as missing: its existence is not ours to say.
    if subscription is None or subscription.user_id != user.id:
        raise NotFound("No such push subscription.")
    await db.delete(subscription)
    record(
        db,
        tag=Tag.push_subscription_delete,
        actor=actor_of(user),
        ctx=ctx,
        target_type=TARGET,
        target_id=subscription.id,
        extra={"endpoint_host": subscription.endpoint_host},
    )


async def subscriptions_for(
    db: AsyncSession, *, user_ids: Collection[uuid.UUID]
) -> Sequence[PushSubscription]:
    """Every subscription of these users (the dispatcher's recipients)."""
    if not user_ids:
        return []
    query = (
        select(PushSubscription)
        .where(PushSubscription.user_id.in_(list(user_ids)))
        .order_by(PushSubscription.user_id, PushSubscription.created_at)
    )
    return (await db.scalars(query)).all()


async def mark_success(db: AsyncSession, *, subscription_id: uuid.UUID, now: datetime) -> None:
    subscription = await db.get(PushSubscription, subscription_id)
    if subscription is not None:
        subscription.last_success_at = now


async def remove_expired(
    db: AsyncSession, *, subscription_id: uuid.UUID, http_status: int | None, now: datetime
) -> bool:
    """Drop a subscription its push service says is gone (404/410). False if it already
    was (a member revoked it meanwhile)."""
    subscription = await db.get(PushSubscription, subscription_id)
    if subscription is None:
        return False
    await db.delete(subscription)
    record(
        db,
        tag=Tag.push_subscription_expire,
        actor=SYSTEM,
        ctx=SYSTEM_CONTEXT,
        target_type=TARGET,
        target_id=subscription.id,
        extra={"endpoint_host": subscription.endpoint_host, "http_status": http_status},
        occurred_at=now,
    )
    return True
