"""Sign-in throttling per account, per client address and per trusted device.

Credential stuffing spreads guesses over many addresses, so the account bucket counts
failures from everywhere and locks the account (doubling each time, up to a day) once
the limit is reached; while locked, no password is even checked, so a correct guess in
the flood is refused too. The address bucket stops one address spraying many accounts.

So the owner is not locked out by the attack, a browser that signed in to the account
before carries a signed device cookie (OWASP's "device cookies"): its attempts count
against its own bucket instead of the account's.

Counters are reserved before the password is checked, each in its own short
transaction, so concurrent attempts cannot all slip under the limit; a success gives
the reservation back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.accounts.models import LoginThrottle, ThrottleScope
from doorwarden.config import Settings
from doorwarden.errors import TooManyAttempts

MAX_LOCK = timedelta(days=1)


@dataclass(frozen=True)
class BucketKey:
    scope: ThrottleScope
    key: str


@dataclass(frozen=True)
class LockOutcome:
    """A failure that locked the account bucket: the owner must be told."""

    locked_until: datetime
    lock_count: int


def _limit(settings: Settings, scope: ThrottleScope) -> int:
    if scope is ThrottleScope.address:
        return settings.login_address_failures
    return settings.login_account_failures


async def _load_for_update(db: AsyncSession, key: BucketKey, now: datetime) -> LoginThrottle:
    insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
    await db.execute(
        insert(LoginThrottle)
        .values(
            scope=key.scope,
            key=key.key,
            failures=0,
            window_started_at=now,
            lock_count=0,
            blocked_attempts=0,
        )
        .on_conflict_do_nothing()
    )
    query = select(LoginThrottle).where(
        LoginThrottle.scope == key.scope, LoginThrottle.key == key.key
    )
    return (
        await db.scalars(query.with_for_update().execution_options(populate_existing=True))
    ).one()


def _retry_after(until: datetime, now: datetime) -> int:
    return max(1, int((until - now).total_seconds()) + 1)


async def reserve(
    db: AsyncSession, settings: Settings, keys: list[BucketKey], now: datetime
) -> None:
    """Count this attempt as a failure up front, or refuse it unevaluated.

    Raises TooManyAttempts when any bucket is locked or full. The caller commits."""
    window = timedelta(minutes=settings.login_window_minutes)
    buckets = [await _load_for_update(db, key, now) for key in keys]
    refusal: datetime | None = None
    for bucket in buckets:
        if bucket.locked_until and bucket.locked_until > now:
            bucket.blocked_attempts += 1
            refusal = max(refusal or now, bucket.locked_until)
        elif bucket.locked_until or now - bucket.window_started_at >= window:
            bucket.failures, bucket.window_started_at, bucket.locked_until = 0, now, None
        if bucket.failures >= _limit(settings, bucket.scope) and not (
            bucket.locked_until and bucket.locked_until > now
        ):
            # Full but not yet locked: other attempts hold the reservations. Wait them out.
            refusal = max(refusal or now, now + timedelta(seconds=1))
    if refusal is not None:
        raise TooManyAttempts(
            "Too many failed sign-in attempts. Try again later.",
            retry_after=_retry_after(refusal, now),
        )
    for bucket in buckets:
        bucket.failures += 1


async def settle_failure(
    db: AsyncSession, settings: Settings, keys: list[BucketKey], now: datetime
) -> LockOutcome | None:
    """The reserved attempt failed: lock any bucket that is now full.

    Returns the lock of the account bucket, if this failure set one."""
    account_lock: LockOutcome | None = None
    for key in keys:
        bucket = await _load_for_update(db, key, now)
        if bucket.failures < _limit(settings, key.scope) or (
            bucket.locked_until and bucket.locked_until > now
        ):
            continue
        duration = min(
            timedelta(minutes=settings.login_lock_minutes) * 2**bucket.lock_count, MAX_LOCK
        )
        bucket.locked_until = now + duration
        bucket.lock_count += 1
        bucket.blocked_attempts = 0
        if key.scope in (ThrottleScope.account, ThrottleScope.device):
            account_lock = LockOutcome(
                locked_until=bucket.locked_until, lock_count=bucket.lock_count
            )
    return account_lock


async def settle_success(db: AsyncSession, keys: list[BucketKey], now: datetime) -> int:
    """Give the reservation back; the account's counters start over.

    Returns how many attempts were refused during locks since the last success."""
    blocked = 0
    for key in keys:
        bucket = await _load_for_update(db, key, now)
        if key.scope is ThrottleScope.address:
            bucket.failures = max(0, bucket.failures - 1)
            continue
        blocked += bucket.blocked_attempts
        bucket.failures, bucket.locked_until, bucket.lock_count = 0, None, 0
        bucket.blocked_attempts = 0
    return blocked
