"""Accounts through the API: sign-up, sessions, password change, tokens, two-factor."""

from __future__ import annotations

from datetime import timedelta

import argon2
import httpx
import pyotp
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from doorwarden.accounts import service
from doorwarden.accounts.models import ApiToken, User, UserSession
from doorwarden.accounts.secrets import hash_password, secret_digest, verify_password
from doorwarden.clock import ManualClock
from doorwarden.config import PasswordCost, Settings, SignupMode
from doorwarden.main import create_app
from doorwarden.roles import Role
from tests.factories import PASSWORD, Factory, assert_error, make_client

NEW_PASSWORD = "another long passphrase"


async def test_open_sign_up_creates_a_resident_and_rejects_duplicates(
    client: httpx.AsyncClient,
) -> None:
    body = {"email": "  Ada@Example.org ", "display_name": "Ada", "password": PASSWORD}
    created = await client.post("/api/v1/accounts", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["email"] == "ada@example.org"
    assert created.json()["role"] == "resident"
    assert_error(await client.post("/api/v1/accounts", json=body), 409, "conflict")


@pytest.mark.parametrize(
    ("password", "reason"),
    [("short", "at least"), ("ada@example.org", "e-mail")],
)
async def test_weak_passwords_are_refused(
    client: httpx.AsyncClient, password: str, reason: str
) -> None:
    body = {"email": "ada@example.org", "display_name": "Ada", "password": password}
    error = assert_error(await client.post("/api/v1/accounts", json=body), 400, "invalid_input")
    assert reason in str(error["message"])


async def test_invite_only_sign_up_needs_a_valid_unused_invite(
    settings: Settings, clock: ManualClock, factory: Factory
) -> None:
    invite_only = create_app(
        settings.model_copy(update={"signup_mode": SignupMode.invite}), clock=clock
    )
    admin = await factory.user(Role.operator_admin)
    async with invite_only.router.lifespan_context(invite_only), make_client(invite_only) as c:
        body = {"email": "bo@example.org", "display_name": "Bo", "password": PASSWORD}
        assert_error(await c.post("/api/v1/accounts", json=body), 403, "forbidden")
        assert_error(
            await c.post("/api/v1/accounts", json={**body, "invite_code": "dwi_nope"}), 403
        )
        admin_client = await factory.signed_in(admin)
        invite = await admin_client.post("/api/v1/admin/invites", json={"role": "legal_reviewer"})
        assert invite.status_code == 201, invite.text
        code = invite.json()["code"]
        # A reviewer's invite is a proposal until a second operator confirms it.
        assert_error(
            await c.post("/api/v1/accounts", json={**body, "invite_code": code}),
            403,
            "invite_unconfirmed",
        )
        second = await factory.signed_in(await factory.user(Role.operator_admin))
        confirmed = await second.post(f"/api/v1/admin/invites/{invite.json()['id']}/confirm")
        assert confirmed.status_code == 200, confirmed.text
        await second.aclose()
        created = await c.post("/api/v1/accounts", json={**body, "invite_code": code})
        assert created.status_code == 201, created.text
        assert created.json()["role"] == "legal_reviewer"
        again = {**body, "email": "cy@example.org", "invite_code": code}
        assert_error(await c.post("/api/v1/accounts", json=again), 403)  # single use
        await admin_client.aclose()


async def test_login_sets_a_hardened_cookie_and_logout_ends_the_session(
    app: FastAPI, factory: Factory
) -> None:
    user = await factory.user()
    async with make_client(app) as c:
        response = await c.post("/api/v1/session", json={"email": user.email, "password": PASSWORD})
        assert response.status_code == 200
        cookie = next(
            h for h in response.headers.get_list("set-cookie") if h.startswith("dw_session=")
        )
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
        c.headers["x-csrf-token"] = response.json()["csrf_token"]
        assert (await c.get("/api/v1/account")).json()["email"] == user.email
        stolen = c.cookies["dw_session"]
        assert (await c.delete("/api/v1/session")).status_code == 204
    async with make_client(app) as replay:
        replay.cookies.set("dw_session", stolen)
        assert_error(await replay.get("/api/v1/account"), 401, "not_authenticated")


async def test_the_database_holds_no_usable_session_or_token_secret(
    app: FastAPI, factory: Factory
) -> None:
    user = await factory.user()
    c = await factory.signed_in(user)
    raw_token = await factory.api_token(user)
    async with app.state.sessionmaker() as db:
        stored = (await db.scalars(select(UserSession))).all()
        tokens = (await db.scalars(select(ApiToken))).all()
        stored_user = await db.get(User, user.id)
    assert [s.token_hash for s in stored] == [secret_digest(c.cookies["dw_session"])]
    assert (
        tokens[0].token_hash == secret_digest(raw_token) and raw_token not in tokens[0].prefix + "x"
    )
    assert stored_user is not None and stored_user.password_hash.startswith("$argon2id$")
    await c.aclose()


async def test_expired_and_idle_sessions_are_refused(
    app: FastAPI, factory: Factory, clock: ManualClock, settings: Settings
) -> None:
    user = await factory.user()
    c = await factory.signed_in(user)
    clock.advance(timedelta(minutes=settings.session_idle_minutes + 1))
    assert_error(await c.get("/api/v1/account"), 401, "not_authenticated")
    await c.aclose()


async def test_password_change_ends_other_sessions_but_not_this_one(factory: Factory) -> None:
    user = await factory.user()
    laptop, phone = await factory.signed_in(user), await factory.signed_in(user)
    wrong = await laptop.post(
        "/api/v1/account/password",
        json={"current_password": "not it at all", "new_password": NEW_PASSWORD},
    )
    assert_error(wrong, 403, "forbidden")
    changed = await laptop.post(
        "/api/v1/account/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json() == {"sessions_ended": 1}
    assert (await laptop.get("/api/v1/account")).status_code == 200
    assert_error(await phone.get("/api/v1/account"), 401)
    assert (await factory.signed_in(user, password=NEW_PASSWORD)).cookies.get("dw_session")
    await laptop.aclose()
    await phone.aclose()


async def test_api_tokens_are_shown_once_listed_used_and_revoked(
    app: FastAPI, factory: Factory
) -> None:
    user = await factory.user()
    browser = await factory.signed_in(user)
    created = await browser.post("/api/v1/account/tokens", json={"name": "backup script"})
    assert created.status_code == 201, created.text
    secret, token_id = created.json()["token"], created.json()["id"]
    listed = (await browser.get("/api/v1/account/tokens")).json()
    assert [t["id"] for t in listed] == [token_id]
    assert "token" not in listed[0]
    async with make_client(app) as script:
        script.headers["authorization"] = f"Bearer {secret}"
        assert (await script.get("/api/v1/account")).json()["email"] == user.email
        # A token cannot mint tokens or change the password: that needs a person.
        assert_error(await script.post("/api/v1/account/tokens", json={"name": "x"}), 403)
        assert_error(
            await script.post(
                "/api/v1/account/password",
                json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
            ),
            403,
        )
        assert (await browser.delete(f"/api/v1/account/tokens/{token_id}")).status_code == 204
        assert_error(await script.get("/api/v1/account"), 401, "not_authenticated")
    assert_error(await browser.delete(f"/api/v1/account/tokens/{token_id}"), 404)
    await browser.aclose()


async def test_tokens_of_someone_else_cannot_be_revoked_and_expired_tokens_fail(
    app: FastAPI, factory: Factory, clock: ManualClock
) -> None:
    alice, bob = await factory.user(), await factory.user()
    alice_browser, bob_browser = await factory.signed_in(alice), await factory.signed_in(bob)
    expires = (clock.now() + timedelta(hours=1)).isoformat()
    created = (
        await alice_browser.post(
            "/api/v1/account/tokens", json={"name": "short", "expires_at": expires}
        )
    ).json()
    assert_error(await bob_browser.delete(f"/api/v1/account/tokens/{created['id']}"), 404)
    naive = await alice_browser.post(
        "/api/v1/account/tokens", json={"name": "n", "expires_at": "2030-01-01T00:00:00"}
    )
    assert_error(naive, 422, "validation_error")
    clock.advance(timedelta(hours=2))
    async with make_client(app) as script:
        script.headers["authorization"] = f"Bearer {created['token']}"
        assert_error(await script.get("/api/v1/account"), 401)
    await alice_browser.aclose()
    await bob_browser.aclose()


async def _enrol(c: httpx.AsyncClient, clock: ManualClock) -> tuple[str, list[str]]:
    begun = await c.post("/api/v1/account/totp", json={})
    assert begun.status_code == 200, begun.text
    secret = begun.json()["secret"]
    assert begun.json()["otpauth_uri"].startswith("otpauth://totp/doorwarden")
    assert_error(await c.post("/api/v1/account/totp/confirm", json={"code": "000000"}), 400)
    confirmed = await c.post(
        "/api/v1/account/totp/confirm", json={"code": pyotp.TOTP(secret).at(clock.now())}
    )
    assert confirmed.status_code == 200, confirmed.text
    codes = confirmed.json()["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    return secret, codes


async def _password_step(app: FastAPI, user: User) -> httpx.AsyncClient:
    c = make_client(app)
    first = await c.post("/api/v1/session", json={"email": user.email, "password": PASSWORD})
    assert first.json() == {"account": None, "second_factor_required": True, "csrf_token": None}
    # The half-signed-in session grants nothing.
    assert_error(await c.get("/api/v1/account"), 401)
    return c


async def test_totp_sign_in_refuses_replayed_codes_and_accepts_recovery_codes_once(
    app: FastAPI, factory: Factory, clock: ManualClock
) -> None:
    user = await factory.user()
    browser = await factory.signed_in(user)
    secret, recovery = await _enrol(browser, clock)
    assert (await browser.get("/api/v1/account")).json()["totp_enabled"] is True

    clock.advance(timedelta(seconds=30))
    code = pyotp.TOTP(secret).at(clock.now())
    c = await _password_step(app, user)
    pending_cookie = c.cookies["dw_session"]
    done = await c.post("/api/v1/session/second-factor", json={"code": code})
    assert done.status_code == 200, done.text
    assert done.json()["account"]["email"] == user.email
    assert c.cookies["dw_session"] != pending_cookie  # a fresh session after the second factor

    replay = await _password_step(app, user)
    assert_error(await replay.post("/api/v1/session/second-factor", json={"code": code}), 401)
    used = await replay.post("/api/v1/session/second-factor", json={"code": recovery[0].upper()})
    assert used.status_code == 200, used.text
    again = await _password_step(app, user)
    assert_error(await again.post("/api/v1/session/second-factor", json={"code": recovery[0]}), 401)
    for client in (browser, c, replay, again):
        await client.aclose()


async def test_second_factor_without_a_pending_sign_in_is_refused(
    client: httpx.AsyncClient,
) -> None:
    assert_error(await client.post("/api/v1/session/second-factor", json={"code": "123456"}), 401)


async def test_disabling_totp_needs_the_password(factory: Factory, clock: ManualClock) -> None:
    user = await factory.user()
    browser = await factory.signed_in(user)
    await _enrol(browser, clock)
    assert_error(
        await browser.post("/api/v1/account/totp/disable", json={"password": "nope-nope-nope"}), 403
    )
    assert (
        await browser.post("/api/v1/account/totp/disable", json={"password": PASSWORD})
    ).status_code == 204
    assert (await browser.get("/api/v1/account")).json()["totp_enabled"] is False
    await browser.aclose()


async def test_deactivated_accounts_lose_sessions_and_tokens(
    app: FastAPI, factory: Factory
) -> None:
    admin, user = await factory.user(Role.operator_admin), await factory.user()
    admin_browser, user_browser = await factory.signed_in(admin), await factory.signed_in(user)
    script = await factory.with_token(user)
    changed = await admin_browser.patch(f"/api/v1/admin/users/{user.id}", json={"is_active": False})
    assert changed.status_code == 200 and changed.json()["is_active"] is False
    assert_error(await user_browser.get("/api/v1/account"), 401)
    assert_error(await script.get("/api/v1/account"), 401)
    async with make_client(app, "192.0.2.99") as c:
        login = await c.post("/api/v1/session", json={"email": user.email, "password": PASSWORD})
        assert_error(login, 401)
    assert_error(
        await admin_browser.patch(f"/api/v1/admin/users/{admin.id}", json={"is_active": False}), 400
    )
    for client in (admin_browser, user_browser, script):
        await client.aclose()


async def test_a_hash_of_an_older_cost_is_replaced_at_the_next_sign_in(
    app: FastAPI, factory: Factory, settings: Settings
) -> None:
    # As if the operator changed the cost since the account was made.
    older = PasswordCost(time_cost=2, memory_kib=2048, parallelism=1)
    user = await factory.user()
    async with app.state.sessionmaker.begin() as db:
        stored = await db.get(User, user.id)
        assert stored is not None
        stored.password_hash = await hash_password(PASSWORD, older)
    async with make_client(app) as c:
        wrong = await c.post("/api/v1/session", json={"email": user.email, "password": "x" * 12})
        assert_error(wrong, 401, "not_authenticated")
    async with app.state.sessionmaker() as db:
        kept = (await db.get(User, user.id)).password_hash  # type: ignore[union-attr]
    assert argon2.extract_parameters(kept).time_cost == 2  # a wrong password changes nothing
    await (await factory.signed_in(user)).aclose()
    async with app.state.sessionmaker() as db:
        renewed = (await db.get(User, user.id)).password_hash  # type: ignore[union-attr]
    made = argon2.extract_parameters(renewed)
    assert (made.time_cost, made.memory_cost, made.parallelism) == (
        settings.password_hash_time_cost,
        settings.password_hash_memory_kib,
        settings.password_hash_parallelism,
    )
    assert await verify_password(renewed, PASSWORD)
    await (await factory.signed_in(user)).aclose()  # and the same password still signs in


async def test_a_password_changed_meanwhile_is_not_overwritten_by_a_re_hash(
    app: FastAPI, factory: Factory, settings: Settings
) -> None:
    user = await factory.user()
    async with app.state.sessionmaker() as db:
        checked = (await db.get(User, user.id)).password_hash  # type: ignore[union-attr]
    async with app.state.sessionmaker.begin() as db:
        changed = await db.get(User, user.id)
        assert changed is not None
        changed.password_hash = await hash_password("a brand new password", settings.password_cost)
    async with app.state.sessionmaker.begin() as db:
        stale = await hash_password(PASSWORD, settings.password_cost)
        await service.replace_password_hash(db, user.id, checked, stale)
    async with app.state.sessionmaker() as db:
        now_stored = (await db.get(User, user.id)).password_hash  # type: ignore[union-attr]
    assert await verify_password(now_stored, "a brand new password")
    assert not await verify_password(now_stored, PASSWORD)
