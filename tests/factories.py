"""Fixtures and factories: the app, HTTP clients signed in as each kind of principal,
and the objects they own. Factories call the real services; nothing is mocked."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from doorwarden.accounts import api_tokens, service
from doorwarden.accounts.models import User
from doorwarden.agencies import service as legal
from doorwarden.agencies.documents import Upload
from doorwarden.agencies.governance import service as governance
from doorwarden.audit.service import RequestContext
from doorwarden.clock import ManualClock
from doorwarden.config import PasswordCost, Settings, SignupMode
from doorwarden.crypto.keys import SigningKey, b64d, b64e
from doorwarden.devices import service as devices
from doorwarden.households import service as households
from doorwarden.main import create_app
from doorwarden.roles import Role
from tests.pdfs import pdf_bytes

SECRET = "test-secret-key-" + "k" * 40
PASSWORD = "correct horse battery staple"
BASE_URL = "http://testserver"
CTX = RequestContext(client_address="192.0.2.1", user_agent="pytest")
# argon2id at its cheapest for the suite's thousands of accounts: at the production cost
# (~0.16 s a hash on a 2-core machine) hashing took over half of the database tests' time.
# A stored hash carries its cost, so sign-in checks run the same code either way;
# tests/unit/accounts/test_passwords.py checks the production profile and the re-hash.
CHEAP_COST = PasswordCost(time_cost=1, memory_kib=1024, parallelism=1)
CHEAP_PASSWORDS: dict[str, int] = {
    "password_hash_time_cost": CHEAP_COST.time_cost,
    "password_hash_memory_kib": CHEAP_COST.memory_kib,
    "password_hash_parallelism": CHEAP_COST.parallelism,
}
CHEAP_PASSWORDS_ENV = {f"DOORWARDEN_{k.upper()}": str(v) for k, v in CHEAP_PASSWORDS.items()}
# Where factory households are (51.5, -0.1) and factory agencies' jurisdiction.
TESTSHIRE: dict[str, Any] = {
    "type": "Polygon",
    "coordinates": [[[-0.3, 51.4], [0.1, 51.4], [0.1, 51.6], [-0.3, 51.6], [-0.3, 51.4]]],
}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


# Every job that runs more often than once a minute (the log appender, notifications,
# webhooks, events from clips, the mode schedule, and any added later) is off: a test that
# is about one runs it, or sets an interval. Off by rule rather than by name, because such
# a job must never run in a test's own event loop beside a server in a thread: on SQLite
# its transaction holds the write lock, and a test blocked in a synchronous request to
# that server would never let the job finish (it timed out live tests once, in CI).
FREQUENT_JOBS_OFF: dict[str, float] = {
    name: 0
    for name, field in Settings.model_fields.items()
    if name.endswith("_interval_s") and 0 < float(field.default) < 60
}


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(
        development=False,
        secret_key=SECRET,
        database_url=db_url,
        data_dir=tmp_path,
        signup_mode=SignupMode.open,
        public_base_url=BASE_URL,
        **FREQUENT_JOBS_OFF,
        **CHEAP_PASSWORDS,
    )


@pytest.fixture
async def app(settings: Settings, clock: ManualClock) -> AsyncIterator[FastAPI]:
    application = create_app(settings, clock=clock)
    async with application.router.lifespan_context(application):
        # The jobs' first turns (those of a minute or more still run once at start) end
        # before the test may block this loop in a synchronous call to a server in a
        # thread: a turn stalled half-way would hold rows that server waits for.
        await asyncio.wait_for(application.state.scheduler.settled(), 30)
        yield application


def make_client(app: FastAPI, address: str = "198.51.100.7") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url=BASE_URL)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(app) as c:
        yield c


@dataclass
class Camera:
    """A paired camera: its id, key, the keys its clips are wrapped to, and an HTTP client
    carrying its device token."""

    id: uuid.UUID
    household_id: uuid.UUID
    key: SigningKey
    recipients: list[bytes]
    client: httpx.AsyncClient


@dataclass
class Factory:
    app: FastAPI
    counter: int = 0

    def email(self, stem: str = "user") -> str:
        self.counter += 1
        return f"{stem}{self.counter}-{uuid.uuid4().hex[:6]}@example.org"

    async def user(
        self,
        role: Role = Role.resident,
        *,
        email: str | None = None,
        password: str = PASSWORD,
        agency_id: uuid.UUID | None = None,
    ) -> User:
        async with self.app.state.sessionmaker.begin() as db:
            user = await service.create_user(
                db,
                email=email or self.email(role.value),
                display_name=role.value.title(),
                password=password,
                role=role,
                password_cost=self.app.state.settings.password_cost,
                agency_id=agency_id,
            )
            if agency_id is not None:
                await legal.add_officer(db, user=user, agency_id=agency_id)
            return user

    async def household(self, owner: User, name: str = "Home") -> uuid.UUID:
        async with self.app.state.sessionmaker.begin() as db:
            household = await households.create_household(
                db,
                owner=owner,
                name=name,
                address="1 Door Lane",
                latitude=51.5,
                longitude=-0.1,
                time_zone="Europe/London",
                ctx=CTX,
            )
            return household.id

    async def share(self, household_id: uuid.UUID, owner: User, member: User) -> None:
        async with self.app.state.sessionmaker.begin() as db:
            await households.add_member(
                db, household_id=household_id, email=member.email, actor=owner, ctx=CTX
            )

    async def agency(
        self,
        admin: User,
        name: str | None = None,
        *,
        area: dict[str, Any] | None = None,
    ) -> uuid.UUID:
        """A registered agency, not verified and without an approval: it can do nothing."""
        async with self.app.state.sessionmaker.begin() as db:
            agency = await legal.create_agency(
                db,
                name=name or f"Agency {uuid.uuid4().hex[:6]}",
                jurisdiction="Testshire",
                jurisdiction_area=area or TESTSHIRE,
                actor=admin,
                ctx=CTX,
            )
            return agency.id

    async def agency_in_good_standing(
        self, admin: User, name: str | None = None, *, area: dict[str, Any] | None = None
    ) -> uuid.UUID:
        """An agency verified, with a municipal approval on file. Two other operators did
        those (policy rule 8: one cannot do both), so `admin`, who registered it, may still
        verify other agencies or record approvals in a test."""
        agency_id = await self.agency(admin, name, area=area)
        verifier = await self.user(Role.operator_admin)
        recorder = await self.user(Role.operator_admin)
        now = self.app.state.clock.now()
        async with self.app.state.sessionmaker.begin() as db:
            agency = await legal.get_agency(db, agency_id)
            await legal.verify_agency(db, agency=agency, actor=verifier, ctx=CTX, now=now)
            await governance.record_approval(
                db,
                agency_id=agency_id,
                approving_body="Testshire Borough Council",
                approved_on=now.date(),
                reference=f"Ordinance {uuid.uuid4().hex[:6]}",
                expires_on=None,
                policy=Upload(pdf_bytes(f"Use policy {agency_id}"), "policy.pdf"),
                store=self.app.state.clip_store,
                max_bytes=10_000_000,
                actor=recorder,
                ctx=CTX,
                now=now,
            )
        return agency_id

    async def api_token(self, user: User) -> str:
        async with self.app.state.sessionmaker.begin() as db:
            _, secret = await api_tokens.create_token(
                db,
                user=user,
                name="script",
                expires_at=None,
                ctx=CTX,
                now=self.app.state.clock.now(),
            )
            return secret

    async def signed_in(
        self, user: User, *, password: str = PASSWORD, address: str = "198.51.100.7"
    ) -> httpx.AsyncClient:
        """A client with the session cookie and the CSRF header, as a browser script has."""
        c = make_client(self.app, address)
        response = await c.post("/api/v1/session", json={"email": user.email, "password": password})
        assert response.status_code == 200, response.text
        c.headers["x-csrf-token"] = response.json()["csrf_token"]
        return c

    async def camera(
        self, owner: User, household_id: uuid.UUID, name: str = "Front door"
    ) -> Camera:
        """A camera paired to the household through the real pairing code flow."""
        key = SigningKey.generate()
        async with self.app.state.sessionmaker.begin() as db:
            now = self.app.state.clock.now()
            _, code = await devices.create_pairing_code(
                db, household_id=household_id, user=owner, ctx=CTX, now=now
            )
        c = make_client(self.app, "203.0.113.50")
        paired = await c.post(
            "/api/v1/devices/pair",
            json={"code": code, "name": name, "public_key": b64e(key.public)},
        )
        assert paired.status_code == 201, paired.text
        body = paired.json()
        c.headers["authorization"] = f"Bearer {body['token']}"
        recipients = [b64d(r["public_key"], what="key", length=32) for r in body["recipients"]]
        return Camera(uuid.UUID(body["device_id"]), household_id, key, recipients, c)

    async def with_token(self, user: User) -> httpx.AsyncClient:
        c = make_client(self.app)
        c.headers["authorization"] = f"Bearer {await self.api_token(user)}"
        return c


@pytest.fixture
def factory(app: FastAPI) -> Factory:
    return Factory(app)


def assert_error(
    response: httpx.Response, status: int, code: str | None = None
) -> dict[str, object]:
    """The one error shape, with the expected status (and code)."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]  # type: ignore[no-any-return]
