"""The server's commands: serve, retention, settings, db, admin, legal.

Each needs the server's part of the install (`needs("server")`) and imports the server
only inside its body, so that `doorwarden agent ...` and `doorwarden verify ...` on a
camera box load none of FastAPI, SQLAlchemy or Alembic, and this module imports there.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import sys
import uuid
from typing import TYPE_CHECKING, Annotated

import typer

from doorwarden.cli.extras import needs
from doorwarden.roles import Role

if TYPE_CHECKING:
    from doorwarden.config import Settings

db_app = typer.Typer(help="Database schema: migrate, inspect.", no_args_is_help=True)
admin_app = typer.Typer(
    help="Instance administration from the server's shell.", no_args_is_help=True
)
legal_app = typer.Typer(help="Legal process: deadlines and notices.", no_args_is_help=True)


def load_settings() -> Settings:
    """The server's settings, or exit 2 with what is wrong with them."""
    from pydantic import ValidationError  # noqa: PLC0415

    from doorwarden.config import get_settings  # noqa: PLC0415 - pydantic-settings: server

    try:
        return get_settings()
    except (ValidationError, ValueError) as exc:
        print(f"Configuration error:\n{exc}", file=sys.stderr)
        raise typer.Exit(2) from exc


def require_current_schema(settings: Settings) -> None:
    """Exit 1, saying which command to run, unless the database is fully migrated."""
    from doorwarden.db import SchemaNotCurrentError, check_schema_current, create_engine  # noqa: PLC0415

    async def _check() -> None:
        engine = create_engine(settings.effective_database_url)
        try:
            await check_schema_current(engine)
        finally:
            await engine.dispose()

    try:
        asyncio.run(_check())
    except SchemaNotCurrentError as exc:
        print(str(exc), file=sys.stderr)
        raise typer.Exit(1) from exc


def require_same_deployment(settings: Settings) -> None:
    """Exit 1 with why, when the database was first served with another secret key or
    log origin (audit/deployment.py); record this instance's when it is the first. Here
    and not in the app's lifespan: an app made by a test is not a deployment."""
    from doorwarden.audit.deployment import DeploymentMismatch, claim  # noqa: PLC0415
    from doorwarden.db import create_engine, create_sessionmaker  # noqa: PLC0415

    async def _claim() -> bool:
        engine = create_engine(settings.effective_database_url)
        try:
            return await claim(
                create_sessionmaker(engine),
                settings.secret_key.get_secret_value(),
                settings.effective_log_origin,
            )
        finally:
            await engine.dispose()

    try:
        if asyncio.run(_claim()):
            print("Recorded this deployment's secret key and log origin.", file=sys.stderr)
    except DeploymentMismatch as exc:
        print(str(exc), file=sys.stderr)
        raise typer.Exit(1) from exc


def require_bus(settings: Settings) -> None:
    """Exit 1 with why, when DOORWARDEN_NATS_URL names a NATS that does not answer and the
    database is PostgreSQL (several instances may share it: one that cannot hear the
    others would serve a partial live view). Said here, as a message, rather than as a
    traceback from the app's lifespan; on SQLite the lifespan warns and runs alone."""
    from doorwarden.bus import BusUnavailable, check_bus  # noqa: PLC0415
    from doorwarden.db import is_sqlite  # noqa: PLC0415

    sqlite = is_sqlite(settings.effective_database_url)
    try:
        asyncio.run(check_bus(settings, database_is_sqlite=sqlite))
    except BusUnavailable as exc:
        print(f"Refusing to start: {exc}", file=sys.stderr)
        raise typer.Exit(1) from exc


@needs("server")
def serve(
    host: Annotated[
        str | None, typer.Option(help="Bind address (default: DOORWARDEN_BIND_HOST).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Bind port (default: DOORWARDEN_BIND_PORT).")
    ] = None,
) -> None:
    """Run the web server. Refuses to start on an un-migrated database, or on one first
    served with another DOORWARDEN_SECRET_KEY or log origin (every instance must share
    them), or, on PostgreSQL, when DOORWARDEN_NATS_URL does not answer."""
    import uvicorn  # noqa: PLC0415 - only this command serves

    from doorwarden.main import create_app  # noqa: PLC0415

    settings = load_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)

    require_current_schema(settings)
    require_same_deployment(settings)
    require_bus(settings)
    uvicorn.run(
        create_app(settings),
        host=host or settings.bind_host,
        port=port or settings.bind_port,
        proxy_headers=False,  # X-Forwarded-For is believed only from DOORWARDEN_TRUSTED_PROXIES
        log_config=None,
        access_log=False,  # our middleware logs each request with its request id
        # The only WebSockets carry live video, which does not compress: deflating every
        # fragment once per viewer cost 4-5x the relay itself (bench/bench_live_relay.py).
        ws_per_message_deflate=False,
        ws_ping_interval=settings.live_ping_s,
        ws_ping_timeout=settings.live_ping_s,
    )


@needs("server")
def retention() -> None:
    """Delete clips older than their household's retention now (never those under a legal
    hold), and print how many. The server also does this every
    DOORWARDEN_RETENTION_INTERVAL_MINUTES; use this command from cron when that is 0."""
    from doorwarden.clips.tasks import run_retention  # noqa: PLC0415
    from doorwarden.clock import Clock  # noqa: PLC0415
    from doorwarden.db import create_engine, create_sessionmaker  # noqa: PLC0415
    from doorwarden.main import clip_store  # noqa: PLC0415

    settings = load_settings()
    require_current_schema(settings)

    async def _run() -> tuple[int, int]:
        engine = create_engine(settings.effective_database_url)
        try:
            result = await run_retention(
                create_sessionmaker(engine),
                clip_store(settings),
                Clock().now(),
                live_only_ring_days=settings.live_only_ring_retention_days,
            )
            return result.expired, result.held
        finally:
            await engine.dispose()

    expired, held = asyncio.run(_run())
    print(f"expired {expired} clip(s); kept {held} under a legal hold")


@legal_app.command("run")
@needs("server")
def legal_run() -> None:
    """Carry out the legal deadlines now: deliver notices whose non-disclosure order has
    ended, mark unproven emergencies unratified (flagging their agency), end expired
    holds and close community requests past their time. The server also does this every
    DOORWARDEN_LEGAL_INTERVAL_S; use this command from cron when that is 0."""
    from doorwarden.clock import Clock  # noqa: PLC0415
    from doorwarden.db import create_engine, create_sessionmaker  # noqa: PLC0415
    from doorwarden.legal.tasks import run_legal_deadlines  # noqa: PLC0415
    from doorwarden.migrations.models import import_all_models  # noqa: PLC0415

    import_all_models()  # the legal tables refer to every other domain's
    settings = load_settings()
    require_current_schema(settings)

    async def _run() -> dict[str, int]:
        engine = create_engine(settings.effective_database_url)
        try:
            result = await run_legal_deadlines(create_sessionmaker(engine), settings, Clock().now())
            return dict(vars(result))
        finally:
            await engine.dispose()

    for name, count in asyncio.run(_run()).items():
        print(f"{name.replace('_', ' ')}: {count}")


@needs("server")
def settings() -> None:
    """List every setting: environment variable, default and meaning."""
    from doorwarden.config import settings_documentation  # noqa: PLC0415

    for row in settings_documentation():
        print(
            f"{row['env']}  (default: {row['default']!s})\n    {row['title']}: {row['description']}"
        )


@db_app.command("upgrade")
@needs("server")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Apply database migrations (safe to run on every deploy)."""
    from doorwarden.db import upgrade_database  # noqa: PLC0415

    settings = load_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    asyncio.run(upgrade_database(settings.effective_database_url, revision))
    print(f"Database is at {revision}.")


@db_app.command("check")
@needs("server")
def db_check() -> None:
    """Exit 0 when the database is at the migrations' head, 1 otherwise."""
    settings = load_settings()

    require_current_schema(settings)
    print("Database is up to date.")


@admin_app.command("create-user")
@needs("server")
def create_user(
    email: Annotated[str, typer.Option(help="E-mail address (the sign-in name).")],
    role: Annotated[Role, typer.Option(help="Account role.")] = Role.operator_admin,
    display_name: Annotated[str | None, typer.Option(help="Name shown in the UI.")] = None,
    agency_id: Annotated[str | None, typer.Option(help="Agency id (agency_officer only).")] = None,
    officer_admin: Annotated[
        bool,
        typer.Option(
            "--officer-admin",
            help="Make the officer its agency's officer-administrator (who invites the "
            "agency's other officers).",
        ),
    ] = False,
    password_env: Annotated[
        str | None,
        typer.Option(help="Read the password from this environment variable instead of a prompt."),
    ] = None,
) -> None:
    """Create an account (the first operator admin, or staff). Prompts for the password.

    Whoever holds the server's shell is the second person that policy rule 8 asks for: a
    legal reviewer or an agency's officer-administrator made here needs no second
    operator (on the web, an operator may only propose one)."""
    from doorwarden.accounts import service  # noqa: PLC0415
    from doorwarden.agencies.service import add_officer  # noqa: PLC0415
    from doorwarden.audit.service import SYSTEM, RequestContext, record  # noqa: PLC0415
    from doorwarden.audit.tags import Tag  # noqa: PLC0415
    from doorwarden.db import create_engine, create_sessionmaker  # noqa: PLC0415
    from doorwarden.errors import DomainError  # noqa: PLC0415

    settings = load_settings()
    if password_env:
        password = os.environ.get(password_env, "")
        if not password:
            print(f"Environment variable {password_env} is empty or unset.", file=sys.stderr)
            raise typer.Exit(2)
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat password: ") != password:
            print("The passwords differ.", file=sys.stderr)
            raise typer.Exit(2)
    if officer_admin and role is not Role.agency_officer:
        print("--officer-admin is for an agency_officer only.", file=sys.stderr)
        raise typer.Exit(2)
    try:
        agency = uuid.UUID(agency_id) if agency_id else None
    except ValueError as exc:
        print("--agency-id is not a UUID.", file=sys.stderr)
        raise typer.Exit(2) from exc

    async def _create() -> uuid.UUID:
        engine = create_engine(settings.effective_database_url)
        try:
            async with create_sessionmaker(engine).begin() as db:
                user = await service.create_user(
                    db,
                    email=email,
                    display_name=display_name or email.split("@")[0],
                    password=password,
                    role=role,
                    password_cost=settings.password_cost,
                    agency_id=agency,
                )
                if agency is not None:
                    await add_officer(db, user=user, agency_id=agency, is_admin=officer_admin)
                record(
                    db,
                    tag=Tag.admin_user_create,
                    actor=SYSTEM,
                    ctx=RequestContext(client_address="cli", user_agent="doorwarden-cli"),
                    target_type="user",
                    target_id=user.id,
                    extra={"role": str(role), "officer_admin": officer_admin},
                )
                return user.id
        finally:
            await engine.dispose()

    try:
        user_id = asyncio.run(_create())
    except DomainError as exc:
        print(f"Refused: {exc.message}", file=sys.stderr)
        raise typer.Exit(1) from exc
    print(f"Created {role.value} {email} ({user_id}).")
