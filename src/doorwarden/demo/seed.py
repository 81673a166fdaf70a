"""The demo's people and places, made through the real services and only once: each
account, home, membership, the agency, its verification and its municipal approval is
looked up first and made only if missing, so a second run adds nothing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.accounts import service as accounts
from doorwarden.accounts.models import User
from doorwarden.agencies import service as legal
from doorwarden.agencies.documents import Upload
from doorwarden.agencies.governance import service as governance
from doorwarden.agencies.models import Agency
from doorwarden.audit.service import RequestContext
from doorwarden.config import PasswordCost
from doorwarden.db import create_engine, create_sessionmaker, upgrade_database
from doorwarden.demo.cast import (
    ACCOUNTS,
    ADMIN,
    AGENCY_JURISDICTION,
    AGENCY_NAME,
    APPROVAL_REFERENCE,
    APPROVING_BODY,
    DEMO_PASSWORD,
    E2E_HOME,
    E2E_PASSPHRASE,
    HOMES,
    JURISDICTION_AREA,
    OFFICER,
    SECOND_ADMIN,
    TIME_ZONE,
    DemoAccount,
    DemoHome,
)
from doorwarden.demo.documents import text_pdf
from doorwarden.demo.e2e_home import end_to_end
from doorwarden.devices import service as devices
from doorwarden.households import service as households
from doorwarden.roles import Role
from doorwarden.storage import ClipStore

CTX = RequestContext(client_address="127.0.0.1", user_agent="doorwarden-demo")
POLICY_MAX_BYTES = 10_000_000


@dataclass(frozen=True)
class Seeded:
    agency_id: uuid.UUID
    households: dict[str, uuid.UUID]  # by DemoHome.slug
    made: list[str]  # what this run added (nothing on a second run)
    pairing_codes: dict[str, str]  # one-time codes for the homes asked, by slug


async def _user(
    db: AsyncSession,
    account: DemoAccount,
    agency_id: uuid.UUID | None,
    cost: PasswordCost,
    made: list[str],
) -> User:
    found = await accounts.find_user_by_email(db, account.email)
    if found is not None:
        return found
    made.append(f"account: {account.email}")
    officer_of = agency_id if account.role is Role.agency_officer else None
    user = await accounts.create_user(
        db,
        email=account.email,
        display_name=account.name,
        password=DEMO_PASSWORD,
        role=account.role,
        password_cost=cost,
        agency_id=officer_of,
    )
    if officer_of is not None:
        # Made as the server's shell makes one: the agency's officer-administrator.
        await legal.add_officer(db, user=user, agency_id=officer_of, is_admin=True)
    return user


async def _agency(
    db: AsyncSession,
    admin: User,
    recorder: User,
    now: datetime,
    store: ClipStore,
    made: list[str],
) -> Agency:
    """`admin` registers and verifies the agency; `recorder`, a second operator, records
    its approval (policy rule 8: one operator cannot do both)."""
    agency = (await db.scalars(select(Agency).where(Agency.name == AGENCY_NAME))).first()
    if agency is None:
        made.append(f"agency: {AGENCY_NAME}, verified")
        agency = await legal.create_agency(
            db,
            name=AGENCY_NAME,
            jurisdiction=AGENCY_JURISDICTION,
            jurisdiction_area=JURISDICTION_AREA,
            contacts=[{"name": "Sgt. Lee", "role": "Records desk", "phone": "020 7946 0000"}],
            actor=admin,
            ctx=CTX,
        )
    await legal.verify_agency(db, agency=agency, actor=admin, ctx=CTX, now=now)  # once
    if not await governance.approvals(db, agency.id):
        made.append(f"approval: {APPROVAL_REFERENCE}")
        policy = text_pdf(
            f"{AGENCY_NAME}: use policy for residents' camera footage",
            [
                f"Approved by {APPROVING_BODY} under {APPROVAL_REFERENCE}, {now:%d %B %Y}.",
                "Footage is requested only through doorwarden, by warrant, emergency",
                "request with proof, or a community request residents may ignore.",
                "No live view. No request for a whole area. Every request is published",
                "in the instance's transparency report.",
                "(A demonstration document.)",
            ],
        )
        await governance.record_approval(
            db,
            agency_id=agency.id,
            approving_body=APPROVING_BODY,
            approved_on=now.date(),
            reference=APPROVAL_REFERENCE,
            expires_on=None,
            policy=Upload(policy, "use-policy.pdf", "application/pdf"),
            store=store,
            max_bytes=POLICY_MAX_BYTES,
            actor=recorder,
            ctx=CTX,
            now=now,
        )
    return agency


async def _home(
    db: AsyncSession, home: DemoHome, users: dict[str, User], made: list[str]
) -> uuid.UUID:
    owner = users[home.owner.email]
    for household, _role in await households.households_of(db, owner.id):
        if household.name == home.name:
            found = household
            break
    else:
        made.append(f"household: {home.name}, {home.address}")
        found = await households.create_household(
            db,
            owner=owner,
            name=home.name,
            address=home.address,
            latitude=home.latitude,
            longitude=home.longitude,
            time_zone=TIME_ZONE,
            ctx=CTX,
        )
    members = {user.id for _member, user in await households.list_members(db, found.id)}
    for account in home.shared_with:
        if users[account.email].id not in members:
            made.append(f"shared user: {account.email} in {home.name}")
            await households.add_member(
                db, household_id=found.id, email=account.email, actor=owner, ctx=CTX
            )
    return found.id


async def seed(
    url: str,
    store: ClipStore,
    *,
    password_cost: PasswordCost,
    pair: frozenset[str] = frozenset(),
    now: datetime | None = None,
    e2e_home: bool = False,
) -> Seeded:
    """Migrate the database at `url`, then make whatever of the cast is missing, and a
    pairing code for each home in `pair` (the owner's, as the Cameras page makes it: it
    saves signing in as each owner just to pair their camera). `e2e_home`: the
    end-to-end household too (demo/e2e_home.py), as `doorwarden demo` runs it."""
    await upgrade_database(url)
    now = now or datetime.now(UTC)
    engine = create_engine(url)
    try:
        async with create_sessionmaker(engine).begin() as db:
            made: list[str] = []
            users = {
                a.email: await _user(db, a, None, password_cost, made)
                for a in (ADMIN, SECOND_ADMIN)
            }
            agency = await _agency(
                db, users[ADMIN.email], users[SECOND_ADMIN.email], now, store, made
            )
            for account in ACCOUNTS:
                if account.email not in users:
                    users[account.email] = await _user(db, account, agency.id, password_cost, made)
            officer = users[OFFICER.email]
            if await legal.officer_agency(db, officer.id) != agency.id:
                raise RuntimeError(f"{OFFICER.email} is not an officer of {AGENCY_NAME}")
            homes = {home.slug: await _home(db, home, users, made) for home in HOMES}
            seeded_homes = list(HOMES)
            if e2e_home:
                homes[E2E_HOME.slug] = await _home(db, E2E_HOME, users, made)
                await end_to_end(
                    db, homes[E2E_HOME.slug], users[E2E_HOME.owner.email],
                    passphrase=E2E_PASSPHRASE, ctx=CTX, now=now, made=made,
                )  # fmt: skip
                seeded_homes.append(E2E_HOME)
            codes = {}
            for home in seeded_homes:
                if home.slug in pair:
                    _, codes[home.slug] = await devices.create_pairing_code(
                        db,
                        household_id=homes[home.slug],
                        user=users[home.owner.email],
                        ctx=CTX,
                        now=now,
                    )
        return Seeded(agency.id, homes, made, codes)
    finally:
        await engine.dispose()
