"""`doorwarden demo`: a development instance with one account of every kind, ready to use.

Seeding is idempotent: running the demo again reuses the accounts in its data directory.
(The simulated cameras playing real footage join the demo with the clip pipeline.)
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from doorwarden.accounts import service
from doorwarden.accounts.models import Role
from doorwarden.audit.service import RequestContext
from doorwarden.config import Settings, SignupMode
from doorwarden.db import create_engine, create_sessionmaker, upgrade_database
from doorwarden.households import service as households
from doorwarden.legal import service as legal

DEMO_PASSWORD = "doorwarden-demo"
CTX = RequestContext(client_address="demo", user_agent="doorwarden-demo")


@dataclass(frozen=True)
class DemoAccount:
    email: str
    role: Role
    what: str


ACCOUNTS = [
    DemoAccount("admin@demo.doorwarden", Role.operator_admin, "runs the instance; sees no footage"),
    DemoAccount("resident@demo.doorwarden", Role.resident, "owns the household 'Demo House'"),
    DemoAccount("partner@demo.doorwarden", Role.resident, "shared user of 'Demo House'"),
    DemoAccount("neighbour@demo.doorwarden", Role.resident, "owns a different household"),
    DemoAccount("officer@demo.doorwarden", Role.agency_officer, "officer of 'Demo Police'"),
    DemoAccount("reviewer@demo.doorwarden", Role.legal_reviewer, "reviews legal demands"),
    DemoAccount("auditor@demo.doorwarden", Role.auditor, "reads the audit trail"),
]


async def seed(url: str) -> None:
    await upgrade_database(url)
    engine = create_engine(url)
    try:
        async with create_sessionmaker(engine).begin() as db:
            if await service.find_user_by_email(db, ACCOUNTS[0].email) is not None:
                return
            users = {}
            for account in ACCOUNTS[:4] + ACCOUNTS[5:]:
                users[account.email] = await service.create_user(
                    db,
                    email=account.email,
                    display_name=account.email.split("@")[0].title(),
                    password=DEMO_PASSWORD,
                    role=account.role,
                )
            admin = users["admin@demo.doorwarden"]
            agency = await legal.create_agency(
                db, name="Demo Police", jurisdiction="Demo County", actor=admin, ctx=CTX
            )
            await service.create_user(
                db,
                email=ACCOUNTS[4].email,
                display_name="Officer",
                password=DEMO_PASSWORD,
                role=Role.agency_officer,
                agency_id=agency.id,
            )
            home = await households.create_household(
                db,
                owner=users["resident@demo.doorwarden"],
                name="Demo House",
                address="1 Demo Street",
                latitude=51.5072,
                longitude=-0.1276,
                time_zone="Europe/London",
                ctx=CTX,
            )
            await households.add_member(
                db,
                household_id=home.id,
                email="partner@demo.doorwarden",
                actor=users["resident@demo.doorwarden"],
                ctx=CTX,
            )
            await households.create_household(
                db,
                owner=users["neighbour@demo.doorwarden"],
                name="Next Door",
                address="3 Demo Street",
                latitude=51.5074,
                longitude=-0.1279,
                time_zone="Europe/London",
                ctx=CTX,
            )
    finally:
        await engine.dispose()


def demo(
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 8000,
    data_dir: Annotated[Path, typer.Option(help="Where the demo keeps its database.")] = Path(
        "data/demo"
    ),
) -> None:
    """Start a development instance with seeded accounts and print how to sign in."""
    import uvicorn  # noqa: PLC0415 - only commands that serve need it

    from doorwarden.main import create_app  # noqa: PLC0415

    data_dir.mkdir(parents=True, exist_ok=True)
    base_url = f"http://127.0.0.1:{port}"
    settings = Settings(
        development=True,
        data_dir=data_dir,
        bind_port=port,
        public_base_url=base_url,
        signup_mode=SignupMode.open,
        database_url=os.environ.get("DOORWARDEN_DATABASE_URL"),
    )
    asyncio.run(seed(settings.effective_database_url))
    print(f"\ndoorwarden demo is running at {base_url}/  (development mode, data in {data_dir})")
    print(f"Sign in with any of these; the password is '{DEMO_PASSWORD}':")
    for account in ACCOUNTS:
        print(f"  {account.email:<28} {account.role.value:<15} {account.what}")
    print("Press Ctrl+C to stop.\n")
    uvicorn.run(
        create_app(settings), host="127.0.0.1", port=port, log_config=None, access_log=False
    )
