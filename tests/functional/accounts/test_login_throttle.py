"""Credential stuffing: a large doorbell vendor lost more than 55,000 accounts to it in
2019-2020. One account gets 1,000 wrong passwords from many addresses, concurrently."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from doorwarden.accounts.login import DEVICE_COOKIE
from doorwarden.audit.models import AuditEvent
from doorwarden.clock import ManualClock
from doorwarden.config import Settings
from tests.factories import PASSWORD, Factory, assert_error, make_client

ATTEMPTS = 1000
CONCURRENCY = 25


async def _count(app: FastAPI, tag: str) -> int:
    async with app.state.sessionmaker() as db:
        return int(
            await db.scalar(
                select(func.count()).select_from(AuditEvent).where(AuditEvent.tag == tag)
            )
            or 0
        )


async def _attempt(
    app: FastAPI, email: str, password: str, address: str, cookies: httpx.Cookies | None = None
) -> httpx.Response:
    async with make_client(app, address) as c:
        if cookies is not None:
            c.cookies = cookies
        return await c.post("/api/v1/session", json={"email": email, "password": password})


@pytest.mark.slow
async def test_a_thousand_wrong_passwords_from_many_addresses_lock_the_account_and_tell_the_owner(
    app: FastAPI, factory: Factory, clock: ManualClock, settings: Settings
) -> None:
    owner = await factory.user()
    # The owner signed in from their own browser last week: it holds a device cookie.
    first = await _attempt(app, owner.email, PASSWORD, "192.0.2.10")
    assert first.status_code == 200
    owner_browser = httpx.Cookies({DEVICE_COOKIE: first.cookies[DEVICE_COOKIE]})

    rng = random.Random(2020)
    addresses = [f"203.0.{rng.randrange(256)}.{rng.randrange(1, 255)}" for _ in range(ATTEMPTS)]
    gate = asyncio.Semaphore(CONCURRENCY)

    async def guess(i: int) -> int:
        async with gate:
            response = await _attempt(app, owner.email, f"leaked-password-{i:04d}", addresses[i])
            return response.status_code

    statuses = await asyncio.gather(*(guess(i) for i in range(ATTEMPTS)))

    # Only the first few guesses were even checked; every other one was refused unread.
    assert statuses.count(401) == settings.login_account_failures
    assert statuses.count(429) == ATTEMPTS - settings.login_account_failures
    assert set(statuses) == {401, 429}
    assert await _count(app, "account:login:failure") == settings.login_account_failures
    assert await _count(app, "account:login:locked") == 1

    # Protected: even the right password, from a new address, is refused while locked.
    attacker_hit = await _attempt(app, owner.email, PASSWORD, "198.18.0.1")
    error = assert_error(attacker_hit, 429, "too_many_attempts")
    assert int(attacker_hit.headers["retry-after"]) > 0
    assert error["details"]["retry_after"] > 0  # type: ignore[index]

    # The owner, on their usual browser, still gets in, and is told what happened.
    owner_in = await _attempt(app, owner.email, PASSWORD, "192.0.2.10", cookies=owner_browser)
    assert owner_in.status_code == 200, owner_in.text
    async with make_client(app, "192.0.2.10") as c:
        c.cookies = owner_in.cookies
        notices = (await c.get("/api/v1/account/notices")).json()
    assert len(notices) == 1
    assert notices[0]["kind"] == "login-locked"
    assert "locked" in notices[0]["message"] and "two-factor" in notices[0]["message"]

    # When the lock expires, the account works again from anywhere.
    clock.advance(timedelta(minutes=settings.login_lock_minutes, seconds=1))
    later = await _attempt(app, owner.email, PASSWORD, "198.18.0.2")
    assert later.status_code == 200, later.text


async def test_one_address_spraying_many_accounts_is_blocked(
    app: FastAPI, factory: Factory, settings: Settings
) -> None:
    victims = [await factory.user() for _ in range(8)]  # few guesses each: no account locks
    statuses = []
    for i in range(settings.login_address_failures + 5):
        victim = victims[i % len(victims)]
        statuses.append(
            (await _attempt(app, victim.email, f"guess-{i}", "203.0.113.66")).status_code
        )
    assert statuses[: settings.login_address_failures].count(401) == settings.login_address_failures
    assert set(statuses[settings.login_address_failures :]) == {429}
    # Another address is unaffected.
    assert (await _attempt(app, victims[0].email, PASSWORD, "203.0.113.67")).status_code == 200


async def test_unknown_accounts_are_throttled_the_same_way(
    app: FastAPI, settings: Settings
) -> None:
    statuses = [
        (await _attempt(app, "nobody@example.org", "whatever-pass", f"203.0.113.{i}")).status_code
        for i in range(1, settings.login_account_failures + 3)
    ]
    assert statuses.count(401) == settings.login_account_failures
    assert statuses[-1] == 429


async def test_a_forged_device_cookie_does_not_bypass_the_lock(
    app: FastAPI, factory: Factory, settings: Settings
) -> None:
    owner = await factory.user()
    for i in range(settings.login_account_failures):
        await _attempt(app, owner.email, f"wrong-{i}", f"203.0.113.{i + 1}")
    forged = httpx.Cookies({DEVICE_COOKIE: f"{owner.id}.nonce.{'0' * 64}"})
    response = await _attempt(app, owner.email, PASSWORD, "203.0.113.200", cookies=forged)
    assert_error(response, 429, "too_many_attempts")
