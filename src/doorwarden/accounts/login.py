"""The sign-in flow: throttle, password, second factor, session, device cookie."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from doorwarden.accounts import service, throttle, totp
from doorwarden.accounts.models import ThrottleScope, User
from doorwarden.accounts.secrets import (
    hash_password,
    needs_rehash,
    new_secret,
    verify_sign_in,
)
from doorwarden.audit.service import Actor, RequestContext, record
from doorwarden.audit.tags import Tag
from doorwarden.config import Settings
from doorwarden.errors import NotAuthenticated
from doorwarden.signing import sign, signature_ok

DEVICE_COOKIE = "dw_device"
BAD_CREDENTIALS = "The e-mail address or password is not correct."


def make_device_cookie(secret_key: str, user_id: uuid.UUID) -> str:
    nonce = new_secret(nbytes=12)
    payload = f"{user_id}.{nonce}"
    return f"{payload}.{sign(secret_key, 'device:' + payload)}"


def trusted_device_key(secret_key: str, cookie: str | None, user_id: uuid.UUID) -> str | None:
    """The device's bucket key if `cookie` is a device cookie issued to this user."""
    if not cookie or cookie.count(".") != 2:
        return None
    cookie_user, nonce, signature = cookie.split(".")
    payload = f"{cookie_user}.{nonce}"
    if cookie_user != str(user_id) or not signature_ok(secret_key, "device:" + payload, signature):
        return None
    return payload


@dataclass(frozen=True)
class Attempt:
    email: str
    password: str
    client_address: str
    device_cookie: str | None


async def _buckets(
    db: AsyncSession, settings: Settings, attempt: Attempt
) -> tuple[User | None, list[throttle.BucketKey]]:
    secret = settings.secret_key.get_secret_value()
    email = service.normalise_email(attempt.email)
    user = await service.find_user_by_email(db, email)
    keys = [throttle.BucketKey(ThrottleScope.address, attempt.client_address)]
    device = trusted_device_key(secret, attempt.device_cookie, user.id) if user else None
    if device is not None:
        keys.append(throttle.BucketKey(ThrottleScope.device, device))
    else:
        # Keyed by e-mail, so guesses at unknown addresses are throttled the same way.
        keys.append(throttle.BucketKey(ThrottleScope.account, email[:320]))
    return user, keys


def _lock_message(attempt: Attempt, lock: throttle.LockOutcome) -> str:
    return (
        f"Sign-in to your account was locked until {lock.locked_until:%Y-%m-%d %H:%M} UTC after "
        f"repeated wrong passwords (the last from {attempt.client_address}). While locked, no "
        "password is checked, even a correct one. If this was not you, someone may be trying "
        "passwords leaked from another site: choose a unique password and turn on two-factor "
        "sign-in. Browsers you signed in with before can still sign in."
    )


async def check_password(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    attempt: Attempt,
    ctx: RequestContext,
    now: datetime,
) -> User:
    """The user whose password this is, or NotAuthenticated / TooManyAttempts.

    Runs its own short transactions: the reservation must be visible to concurrent
    attempts before the (slow) hash is checked, and a failure must be recorded even
    though the request fails."""
    async with sessionmaker.begin() as db:
        user, keys = await _buckets(db, settings, attempt)
        await throttle.reserve(db, settings, keys, now)
    cost = settings.password_cost
    ok = await verify_sign_in(user.password_hash if user else None, attempt.password, cost)
    if ok and user is not None and user.is_active:
        # The only moment the password is known: a hash made at an older cost is
        # replaced by one at the current settings' cost.
        rehashed = (
            await hash_password(attempt.password, cost)
            if needs_rehash(user.password_hash, cost)
            else None
        )
        async with sessionmaker.begin() as db:
            await throttle.settle_success(db, keys, now)
            if rehashed is not None:
                await service.replace_password_hash(db, user.id, user.password_hash, rehashed)
        return user
    async with sessionmaker.begin() as db:
        lock = await throttle.settle_failure(db, settings, keys, now)
        actor = Actor(user_id=None, role=None)
        target = {"target_type": "user", "target_id": user.id} if user else {}
        record(db, tag=Tag.account_login_failure, actor=actor, ctx=ctx, **target)  # type: ignore[arg-type]
        if lock is not None and user is not None:
            record(
                db,
                tag=Tag.account_login_locked,
                actor=actor,
                ctx=ctx,
                target_type="user",
                target_id=user.id,
                extra={"locked_until": lock.locked_until.isoformat()},
            )
            service.add_notice(
                db,
                user_id=user.id,
                kind="login-locked",
                message=_lock_message(attempt, lock),
                now=now,
            )
    raise NotAuthenticated(BAD_CREDENTIALS)


async def check_second_factor(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    *,
    user_id: uuid.UUID,
    code: str,
    client_address: str,
    ctx: RequestContext,
    now: datetime,
) -> bool:
    """A TOTP code or a recovery code. Failures count against the same throttle buckets
    as passwords, so the six digits cannot be brute-forced either."""
    keys = [
        throttle.BucketKey(ThrottleScope.address, client_address),
        throttle.BucketKey(ThrottleScope.account, f"2fa:{user_id}"),
    ]
    async with sessionmaker.begin() as db:
        await throttle.reserve(db, settings, keys, now)
    async with sessionmaker.begin() as db:
        user = await service.get_user(db, user_id)
        secret = settings.secret_key.get_secret_value()
        ok = totp.verify_code(secret, user, code, now)
        if not ok and await totp.use_recovery_code(db, user, code, now):
            ok = True
            record(
                db,
                tag=Tag.account_recovery_code_use,
                actor=service.actor_of(user),
                ctx=ctx,
                target_type="user",
                target_id=user.id,
            )
        if ok:
            await throttle.settle_success(db, keys, now)
        else:
            await throttle.settle_failure(db, settings, keys, now)
            record(
                db,
                tag=Tag.account_login_failure,
                actor=Actor(None, None),
                ctx=ctx,
                target_type="user",
                target_id=user.id,
                extra={"factor": "totp"},
            )
    return ok
