"""Delivery: the scheduler job `notify.dispatch` (every second, and at once when an
event commits: `app.state.notify_wake`), never a request.

A turn has two halves. In the job's transaction (under its lock on PostgreSQL): the
outbox makes new notifications (outbox.py) and the due ones are claimed, each pushed a
lease ahead so no other turn or instance takes it meanwhile. After that commit, with no
transaction open (a push service may take seconds, and SQLite has one connection): each
claimed notification goes to every push subscription of its member that has not taken it
yet, and by e-mail if the member asked; then, in a short transaction, every attempt is
recorded (sent, failed or expired), dead subscriptions are removed, and what failed is
due again after a backoff (5 s doubling to an hour), until a day has passed: then it is
given up, and says so. A crash between sending and recording sends again after the
lease: a notification may arrive twice, never not at all.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from doorwarden.accounts.models import User
from doorwarden.config import Settings
from doorwarden.notify import email, outbox, subscriptions
from doorwarden.notify.models import (
    AttemptStatus,
    Channel,
    Notification,
    NotificationAttempt,
    NotificationStatus,
    NotifyKind,
)
from doorwarden.notify.payload import push_payload
from doorwarden.notify.push import PushSender, PushStatus
from doorwarden.notify.push_models import PushSubscription
from doorwarden.notify.vapid import vapid_key
from doorwarden.scheduler import Job, Scheduler, Waker

log = structlog.get_logger("doorwarden.notify")
JOB_NAME = "notify.dispatch"
SEND_BATCH = 100
LEASE = timedelta(minutes=2)  # longer than one round of sends can take
BACKOFF_MIN_S = 5.0
BACKOFF_MAX_S = 3600.0
GIVE_UP = timedelta(hours=24)
PARALLEL_SENDS = 64
# A ring is worth a minute of the push service's effort (then it is history); the rest
# may wait for a phone that is off for the night.
TTL_S = {NotifyKind.ring: 300, NotifyKind.person: 3600, NotifyKind.motion: 3600}
URGENCY = {NotifyKind.ring: "high", NotifyKind.legal_notice: "normal"}


def backoff_s(tries: int) -> float:
    return min(BACKOFF_MAX_S, BACKOFF_MIN_S * 2.0 ** max(0, tries - 1))


@dataclass
class Claimed:
    ids: list[uuid.UUID]
    more: bool


@dataclass
class _Round:
    """What one delivery round learned, to record in one transaction."""

    attempts: list[NotificationAttempt] = field(default_factory=list)
    expired: dict[uuid.UUID, int | None] = field(default_factory=dict)  # id -> HTTP status
    succeeded: set[uuid.UUID] = field(default_factory=set)
    retry: dict[uuid.UUID, float] = field(default_factory=dict)  # id -> at least this wait


class Dispatcher:
    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        now: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.now = now
        self._sender: PushSender | None = None
        self.job: Job[Claimed] = Job(
            JOB_NAME,
            settings.notify_interval_s,
            self.claim,
            after_commit=self.deliver,
            more=lambda claimed: claimed.more,
        )
        self._wake = Waker(self.job)

    # -- the job's transaction ---------------------------------------------------------

    async def claim(self, db: AsyncSession) -> Claimed:
        now = self.now()
        filled = await outbox.fill(db, now=now)
        due = list(
            await db.scalars(
                select(Notification.id)
                .where(Notification.next_attempt_at <= now)
                .order_by(Notification.next_attempt_at)
                .limit(SEND_BATCH)
            )
        )
        if due:
            await db.execute(
                update(Notification)
                .where(Notification.id.in_(due))
                .values(next_attempt_at=now + LEASE)
            )
        return Claimed(due, filled.found >= outbox.BATCH or len(due) >= SEND_BATCH)

    # -- after the commit: send, then record -------------------------------------------

    def sender(self) -> PushSender:
        if self._sender is None:
            self._sender = PushSender(
                vapid_key(self.settings),
                timeout_s=self.settings.push_timeout_s,
                development=self.settings.development,
            )
        return self._sender

    async def deliver(self, claimed: Claimed) -> None:
        if not claimed.ids:
            return
        async with self.sessionmaker() as db:
            notes = list(
                await db.scalars(select(Notification).where(Notification.id.in_(claimed.ids)))
            )
            users = {n.user_id for n in notes}
            rows = await db.execute(select(User.id, User.email).where(User.id.in_(users)))
            emails = {row[0]: row[1] for row in rows.all()}
            subs: dict[uuid.UUID, list[PushSubscription]] = defaultdict(list)
            for sub in await db.scalars(
                select(PushSubscription).where(PushSubscription.user_id.in_(users))
            ):
                subs[sub.user_id].append(sub)
            sent_before = await db.execute(
                select(
                    NotificationAttempt.notification_id,
                    NotificationAttempt.channel,
                    NotificationAttempt.subscription_id,
                ).where(
                    NotificationAttempt.notification_id.in_(claimed.ids),
                    NotificationAttempt.status == AttemptStatus.sent,
                )
            )
            done = {(n, Channel(c), s) for n, c, s in sent_before}
            db.expunge_all()  # loaded as they are; the session closes before any send
        result = _Round()
        limit = asyncio.Semaphore(PARALLEL_SENDS)
        sends: list[Any] = []
        for note in notes:
            for sub in subs.get(note.user_id, []):
                if (note.id, Channel.push, sub.id) not in done:
                    sends.append(self._push(limit, result, note, sub))
            to = emails.get(note.user_id)
            if note.email and to and (note.id, Channel.email, None) not in done:
                sends.append(self._email(limit, result, note, to))
        await asyncio.gather(*sends)
        await self._record(notes, subs, done, result)

    async def _push(
        self, limit: asyncio.Semaphore, result: _Round, note: Notification, sub: PushSubscription
    ) -> None:
        async with limit:
            sent = await self.sender().send(
                sub,
                push_payload(note),
                ttl=TTL_S.get(note.kind, 86_400),
                urgency=URGENCY.get(note.kind, "normal"),
            )
        status = AttemptStatus(str(sent.status))
        self._attempt(result, note, Channel.push, sub.id, status, sent.http_status, sent.error)
        if sent.status is PushStatus.expired:
            result.expired[sub.id] = sent.http_status
        elif sent.status is PushStatus.sent:
            result.succeeded.add(sub.id)
        elif sent.retryable:
            wait = max(sent.retry_after_s or 0.0, result.retry.get(note.id, 0.0))
            result.retry[note.id] = wait

    async def _email(
        self, limit: asyncio.Semaphore, result: _Round, note: Notification, to: str
    ) -> None:
        async with limit:
            sent = await email.send_email(self.settings, note, to)
        self._attempt(result, note, Channel.email, None, sent.status, sent.code, sent.error)
        if sent.status is AttemptStatus.failed and sent.retryable:
            result.retry.setdefault(note.id, 0.0)

    def _attempt(
        self,
        result: _Round,
        note: Notification,
        channel: Channel,
        subscription_id: uuid.UUID | None,
        status: AttemptStatus,
        http_status: int | None,
        error: str | None,
    ) -> None:
        result.attempts.append(
            NotificationAttempt(
                id=uuid.uuid4(),
                notification_id=note.id,
                channel=channel,
                subscription_id=subscription_id,
                status=status,
                http_status=http_status,
                error=error[:300] if error else None,
                at=self.now(),
            )
        )
        if status is not AttemptStatus.sent and error:
            log.info("notify.attempt_failed", channel=str(channel), status=str(status), error=error)

    async def _record(
        self,
        notes: list[Notification],
        subs: dict[uuid.UUID, list[PushSubscription]],
        done: set[tuple[uuid.UUID, Channel, uuid.UUID | None]],
        result: _Round,
    ) -> None:
        now = self.now()
        ever_sent = {n for n, _c, _s in done} | {
            a.notification_id for a in result.attempts if a.status is AttemptStatus.sent
        }
        tried = {a.notification_id for a in result.attempts}
        async with self.sessionmaker.begin() as db:
            db.add_all(result.attempts)
            for sub_id, http_status in result.expired.items():
                # Removed and audited (push:subscription:expire), as the member's own
                # revocation is; already gone (revoked meanwhile) is nothing to do.
                await subscriptions.remove_expired(
                    db, subscription_id=sub_id, http_status=http_status, now=now
                )
            if result.succeeded:
                await db.execute(
                    update(PushSubscription)
                    .where(PushSubscription.id.in_(result.succeeded))
                    .values(last_success_at=now)
                )
            for note in notes:
                row = await db.get(Notification, note.id)
                if row is None:
                    continue
                row.tries += 1 if note.id in tried else 0
                if note.id in result.retry:
                    if now - row.created_at >= GIVE_UP:
                        row.status, row.next_attempt_at, row.done_at = (
                            NotificationStatus.gave_up,
                            None,
                            now,
                        )
                    else:
                        wait = max(backoff_s(row.tries), result.retry[note.id])
                        row.status = NotificationStatus.pending
                        row.next_attempt_at = now + timedelta(seconds=min(wait, BACKOFF_MAX_S))
                    continue
                had_channel = note.email or bool(subs.get(note.user_id))
                row.status = (
                    NotificationStatus.delivered
                    if note.id in ever_sent
                    else NotificationStatus.no_channel
                    if not had_channel
                    else NotificationStatus.gave_up  # every channel refused it for good
                )
                row.next_attempt_at, row.done_at = None, now

    # -- waking the job at once (scheduler.Waker) ---------------------------------------

    def waker(self, scheduler: Scheduler) -> Callable[[], None]:
        """Run a turn now: `app.state.notify_wake`, called after a commit."""
        return self._wake.waker(scheduler)

    async def idle(self) -> None:
        """Until a wake's turns are over (tests, the demo)."""
        await self._wake.idle()

    async def aclose(self) -> None:
        await self._wake.aclose()
        if self._sender is not None:
            await self._sender.aclose()
