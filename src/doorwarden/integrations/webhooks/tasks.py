"""The scheduler job `webhooks.deliver` (every second; a ring or a test also wakes it).

A turn has two halves, as notify's dispatch does. In the job's transaction (under its
lock on PostgreSQL): new sources become deliveries (sources.py) and the due deliveries
are claimed, each pushed a lease ahead so no other turn or instance takes it meanwhile.
After that commit, with no transaction open (a receiver may take seconds, and SQLite has
one connection): each claimed delivery is sent (delivery.py); then, in a short
transaction, every attempt is recorded, and what failed is due again after the next wait
of RETRY_S (with jitter), until every retry is used: then it has failed. A crash between
sending and recording sends again after the lease, with the same webhook-id: a receiver
may see one twice (it deduplicates on the id), never not at all.

An endpoint whose attempts have all failed for `webhook_disable_after_hours`, or that
answered 410 Gone, is turned off, with the reason on the Integrations page and a
`webhook:update` entry in the household's audit trail.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import structlog
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from doorwarden.audit.service import SYSTEM, RequestContext, record
from doorwarden.audit.tags import Tag
from doorwarden.config import Settings
from doorwarden.integrations.webhooks import delivery, service, signing, sources
from doorwarden.integrations.webhooks.models import (
    DeliveryStatus,
    EventKind,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from doorwarden.scheduler import Job, Scheduler, Waker

log = structlog.get_logger("doorwarden.webhooks")
JOB_NAME = "webhooks.deliver"
SEND_BATCH = 100
LEASE = timedelta(minutes=2)  # longer than one round of sends can take (timeout 30 s max)
# The wait after the 1st, 2nd, ... failed attempt; after the last, the delivery has failed.
RETRY_S = (5, 30, 120, 600, 3600, 6 * 3600)
JITTER = 0.2  # each wait is drawn from +-20% of its value
PARALLEL_SENDS = 32
CONTEXT = RequestContext(client_address=None, user_agent="doorwarden webhooks")


def retry_wait_s(attempts: int, rng: random.Random | None = None) -> float | None:
    """Seconds until the next attempt after `attempts` failed ones; None: give up."""
    if attempts < 1 or attempts > len(RETRY_S):
        return None
    base = RETRY_S[attempts - 1]
    return base * (1 + (rng or random).uniform(-JITTER, JITTER))


@dataclass
class Claimed:
    ids: list[uuid.UUID]
    more: bool


@dataclass
class _Send:
    delivery_id: uuid.UUID
    endpoint_id: uuid.UUID
    outcome: delivery.Outcome


class Deliverer:
    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        now: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.now = now
        self._client: httpx.AsyncClient | None = None
        self.job: Job[Claimed] = Job(
            JOB_NAME,
            settings.webhook_interval_s,
            self.claim,
            after_commit=self.deliver,
            more=lambda claimed: claimed.more,
        )
        self._wake = Waker(self.job)

    # -- the job's transaction ---------------------------------------------------------

    async def claim(self, db: AsyncSession) -> Claimed:
        now = self.now()
        filled = await sources.fill(db, now=now)
        due = list(
            await db.scalars(
                select(WebhookDelivery.id)
                .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                .where(
                    WebhookDelivery.status == DeliveryStatus.pending,
                    WebhookDelivery.next_attempt_at <= now,
                    or_(
                        WebhookEndpoint.enabled.is_(True),
                        WebhookDelivery.event_kind == EventKind.ping,
                    ),
                )
                .order_by(WebhookDelivery.next_attempt_at)
                .limit(SEND_BATCH)
            )
        )
        if due:
            await db.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_(due))
                .values(next_attempt_at=now + LEASE)
            )
        return Claimed(due, filled.found >= sources.BATCH or len(due) >= SEND_BATCH)

    # -- after the commit: send, then record -------------------------------------------

    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = delivery.new_client(
                self.settings.webhook_ca_file, self.settings.webhook_timeout_s
            )
        return self._client

    async def deliver(self, claimed: Claimed) -> None:
        if not claimed.ids:
            return
        secret = self.settings.secret_key.get_secret_value().encode()
        async with self.sessionmaker() as db:
            rows = (
                await db.execute(
                    select(WebhookDelivery, WebhookEndpoint)
                    .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                    .where(WebhookDelivery.id.in_(claimed.ids))
                )
            ).all()
            db.expunge_all()  # loaded as they are; the session closes before any send
        now = self.now()
        limit = asyncio.Semaphore(PARALLEL_SENDS)
        resolve = service.resolver(self.settings)

        async def one(row: WebhookDelivery, endpoint: WebhookEndpoint) -> _Send:
            try:
                keys = [signing.unseal(secret, endpoint.id, endpoint.secret_sealed)]
                if endpoint.previous_secret_sealed is not None and (
                    endpoint.previous_until is not None and endpoint.previous_until > now
                ):
                    keys.append(
                        signing.unseal(secret, endpoint.id, endpoint.previous_secret_sealed)
                    )
            except signing.SecretUnreadable as exc:
                outcome = delivery.Outcome(None, f"{exc}: rotate the secret", 0, retryable=False)
                return _Send(row.id, endpoint.id, outcome)
            async with limit:
                outcome = await delivery.send(
                    self.client(), url=endpoint.url, keys=keys, webhook_id=row.webhook_id,
                    payload=row.payload, timestamp=int(self.now().timestamp()),
                    development=self.settings.development, resolver=resolve,
                    timeout_s=self.settings.webhook_timeout_s,
                )  # fmt: skip
            return _Send(row.id, endpoint.id, outcome)

        sent = await asyncio.gather(*(one(r, e) for r, e in rows))
        await self._record(sent)

    async def _record(self, sent: list[_Send]) -> None:
        now = self.now()
        disable_after = timedelta(hours=self.settings.webhook_disable_after_hours)
        async with self.sessionmaker.begin() as db:
            for s in sent:
                out = s.outcome
                row = await db.get(WebhookDelivery, s.delivery_id)
                endpoint = await db.get(WebhookEndpoint, s.endpoint_id)
                if row is None or endpoint is None:
                    continue  # removed meanwhile, with its attempts
                db.add(
                    WebhookAttempt(
                        id=uuid.uuid4(), delivery_id=s.delivery_id, at=now,
                        status_code=out.status_code,
                        error=out.error[:300] if out.error else None,
                        duration_ms=out.duration_ms,
                    )
                )  # fmt: skip
                row.attempts += 1
                row.last_status_code = out.status_code
                row.last_error = out.error[:300] if out.error else None
                if out.ok:
                    row.status, row.delivered_at, row.next_attempt_at = (
                        DeliveryStatus.delivered, now, None,
                    )  # fmt: skip
                    endpoint.last_success_at, endpoint.failing_since = now, None
                    continue
                log.info("webhooks.attempt_failed", endpoint=str(endpoint.id), error=out.error)
                wait = retry_wait_s(row.attempts) if out.retryable else None
                if wait is None:
                    row.status, row.next_attempt_at = DeliveryStatus.failed, None
                else:
                    wait = max(wait, min(out.retry_after_s or 0.0, RETRY_S[-1]))
                    row.next_attempt_at = now + timedelta(seconds=wait)
                if row.event_kind is EventKind.ping:
                    continue  # a test says nothing about the endpoint's health
                endpoint.failing_since = endpoint.failing_since or now
                if out.gone:
                    self._disable(db, endpoint, out.error or "410 Gone", now)
                elif endpoint.enabled and now - endpoint.failing_since >= disable_after:
                    days = disable_after.total_seconds() / 86400
                    self._disable(
                        db, endpoint,
                        f"every attempt failed for {days:g} days (last: {out.error})", now,
                    )  # fmt: skip

    def _disable(
        self, db: AsyncSession, endpoint: WebhookEndpoint, reason: str, now: datetime
    ) -> None:
        if not endpoint.enabled:
            return
        endpoint.enabled = False
        endpoint.disabled_reason = reason[:300]
        endpoint.updated_at = now
        record(
            db, tag=Tag.webhook_update, actor=SYSTEM, ctx=CONTEXT,
            household_id=endpoint.household_id, target_type="webhook", target_id=endpoint.id,
            extra={"changed": ["enabled"], "enabled": False, "reason": reason[:300]},
            occurred_at=now,
        )  # fmt: skip
        log.warning("webhooks.endpoint_disabled", endpoint=str(endpoint.id), reason=reason)

    # -- waking the job at once (scheduler.Waker) ---------------------------------------

    def waker(self, scheduler: Scheduler) -> Callable[[], None]:
        """Run a turn now: `app.state.webhooks_wake`, called after a commit."""
        return self._wake.waker(scheduler)

    async def idle(self) -> None:
        """Until a wake's turns are over (tests, the demo)."""
        await self._wake.idle()

    async def aclose(self) -> None:
        await self._wake.aclose()
        if self._client is not None:
            await self._client.aclose()


def wake(state: object) -> None:
    """`app.state.webhooks_wake` when the app set one (main.py); a no-op otherwise. A
    failure is logged, never the caller's: the job's schedule finds the delivery anyway."""
    waker = getattr(state, "webhooks_wake", None)
    if waker is None:
        return
    try:
        waker()
    except Exception:  # the delivery is committed; the tick sends it
        log.exception("webhooks.wake_failed")
