"""Pairing cameras to households, authenticating them, revoking them."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.accounts.models import User
from doorwarden.accounts.secrets import new_secret, secret_digest
from doorwarden.accounts.service import actor_of
from doorwarden.audit.service import Actor, RequestContext, record
from doorwarden.audit.tags import Tag
from doorwarden.crypto.errors import MalformedError
from doorwarden.crypto.keys import KEY_BYTES, b64d
from doorwarden.devices.area import place_cameras
from doorwarden.devices.keys import member_keys
from doorwarden.devices.models import Device, Encryption, HouseholdPlan, PairingCode, PlanKind
from doorwarden.errors import DomainError, InvalidInput, NotAuthenticated, NotFound
from doorwarden.households import service as households
from doorwarden.households.models import Household

TOKEN_PREFIX = "dwd_"
CODE_TTL = timedelta(minutes=10)
# Crockford-style alphabet: no 0/O, 1/I/L; read aloud and typed on a phone safely.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_GROUPS, CODE_GROUP_LEN = 3, 4  # 12 characters, ~59 bits, valid 10 minutes, single use
MAX_OPEN_CODES = 5


class InvalidPairingCode(DomainError):
    status_code = 400
    code = "invalid_pairing_code"


class DeviceRevoked(DomainError):
    status_code = 401
    code = "device_revoked"


def normalise_code(code: str) -> str:
    return "".join(c for c in code.upper() if c.isalnum())


def _new_code() -> str:
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_GROUPS * CODE_GROUP_LEN))
    return "-".join(raw[i : i + CODE_GROUP_LEN] for i in range(0, len(raw), CODE_GROUP_LEN))


async def create_pairing_code(
    db: AsyncSession,
    *,
    household_id: uuid.UUID,
    user: User,
    ctx: RequestContext,
    now: datetime,
) -> tuple[PairingCode, str]:
    open_codes = await db.scalars(
        select(PairingCode).where(
            PairingCode.household_id == household_id,
            PairingCode.used_at.is_(None),
            PairingCode.expires_at > now,
        )
    )
    # A household has few cameras: more open codes than this is a mistake or abuse.
    for stale in list(open_codes)[MAX_OPEN_CODES - 1 :]:
        stale.expires_at = now
    code = _new_code()
    row = PairingCode(
        household_id=household_id,
        code_hash=secret_digest(normalise_code(code)),
        created_by=user.id,
        created_at=now,
        expires_at=now + CODE_TTL,
    )
    db.add(row)
    await db.flush()
    record(
        db,
        tag=Tag.device_pairing_code_create,
        actor=actor_of(user),
        ctx=ctx,
        household_id=household_id,
        target_type="pairing_code",
        target_id=row.id,
    )
    return row, code


async def pair(
    db: AsyncSession,
    *,
    code: str,
    name: str,
    public_key: str,
    ctx: RequestContext,
    now: datetime,
) -> tuple[Device, str]:
    """Redeem a pairing code: a new device with its token (shown once)."""
    try:
        b64d(public_key, what="public_key", length=KEY_BYTES)
    except MalformedError as exc:
        raise InvalidPairingCode(f"The device key is not valid: {exc}") from None
    # Mark the code used in the same statement that checks it: two agents racing with one
    # code cannot both win (the second update matches no row).
    claimed = await db.execute(
        update(PairingCode)
        .where(
            PairingCode.code_hash == secret_digest(normalise_code(code)),
            PairingCode.used_at.is_(None),
            PairingCode.expires_at > now,
        )
        .values(used_at=now)
        .returning(PairingCode.id, PairingCode.household_id, PairingCode.created_by)
    )
    row = claimed.first()
    if row is None:
        raise InvalidPairingCode(
            "This pairing code is not valid: it may be mistyped, expired or already used. "
            "Create a new one on the household's Cameras page."
        )
    # The camera is where its household is (devices/area.py). The row lock makes a
    # concurrent change of the location wait for this pairing, or this pairing for it,
    # so the copy cannot be stale (SQLite runs one writer at a time anyway).
    home = (
        await db.execute(
            select(Household.latitude, Household.longitude, Household.location_cell)
            .where(Household.id == row.household_id)
            .with_for_update()
        )
    ).one()
    token = new_secret(TOKEN_PREFIX)
    device = Device(
        household_id=row.household_id,
        latitude=home.latitude,
        longitude=home.longitude,
        location_cell=home.location_cell,
        name=name.strip(),
        public_key=public_key,
        token_hash=secret_digest(token),
        token_prefix=token[:12],
        paired_by=row.created_by,
        created_at=now,
    )
    db.add(device)
    await db.flush()
    await db.execute(
        update(PairingCode).where(PairingCode.id == row.id).values(device_id=device.id)
    )
    record(
        db,
        tag=Tag.device_pair,
        actor=Actor(user_id=row.created_by, role="device"),
        ctx=ctx,
        household_id=row.household_id,
        target_type="device",
        target_id=device.id,
        extra={"name": device.name},
    )
    return device, token


async def authenticate(db: AsyncSession, token: str, now: datetime) -> Device:
    """The device a token belongs to; NotAuthenticated or DeviceRevoked otherwise."""
    device = await db.scalar(select(Device).where(Device.token_hash == secret_digest(token)))
    if device is None:
        raise NotAuthenticated(
            "The device token is not valid.", headers={"WWW-Authenticate": "Bearer"}
        )
    if device.revoked_at is not None:
        raise DeviceRevoked(
            "This camera was removed from its household; pair it again.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    if device.last_seen_at is None or now - device.last_seen_at > timedelta(minutes=1):
        device.last_seen_at = now
    return device


async def list_devices(db: AsyncSession, household_id: uuid.UUID) -> Sequence[Device]:
    query = (
        select(Device)
        .where(Device.household_id == household_id, Device.revoked_at.is_(None))
        .order_by(Device.created_at)
    )
    return (await db.scalars(query)).all()


async def cameras_of(db: AsyncSession, household_id: uuid.UUID) -> Sequence[Device]:
    """Every camera the household ever paired, removed ones too: their clips stay."""
    query = select(Device).where(Device.household_id == household_id).order_by(Device.created_at)
    return (await db.scalars(query)).all()


async def revoke(
    db: AsyncSession,
    *,
    household_id: uuid.UUID,
    device_id: uuid.UUID,
    user: User,
    ctx: RequestContext,
    now: datetime,
) -> Device:
    device = await db.get(Device, device_id)
    # Another household's camera is reported as missing: not ours to confirm it exists.
    if device is None or device.household_id != household_id or device.revoked_at is not None:
        raise NotFound("No such camera.")
    device.revoked_at = now
    device.revoked_by = user.id
    record(
        db,
        tag=Tag.device_revoke,
        actor=actor_of(user),
        ctx=ctx,
        household_id=household_id,
        target_type="device",
        target_id=device.id,
        extra={"name": device.name},
    )
    return device


DEFAULT_RETENTION_DAYS = 30


async def plan_of(db: AsyncSession, household_id: uuid.UUID) -> HouseholdPlan:
    """The household's plan; until an owner sets one, recording for 30 days (a default
    that is not written, so reading a page never writes to the database)."""
    plan = await db.get(HouseholdPlan, household_id)
    if plan is None:
        return HouseholdPlan(
            household_id=household_id,
            kind=PlanKind.recording,
            retention_days=DEFAULT_RETENTION_DAYS,
            encryption=Encryption.standard,
        )
    return plan


async def set_plan(
    db: AsyncSession,
    *,
    household_id: uuid.UUID,
    kind: PlanKind,
    retention_days: int,
    user: User,
    ctx: RequestContext,
) -> HouseholdPlan:
    """Change the plan. Shortening retention (or going live-only) lets the next retention
    run delete what the new plan no longer keeps; cameras learn it on their next call."""
    plan = await plan_of(db, household_id)
    before = {"kind": str(plan.kind), "retention_days": plan.retention_days}
    plan.kind, plan.retention_days = kind, retention_days
    plan = await db.merge(plan)  # inserts the row the first time an owner sets a plan
    record(
        db,
        tag=Tag.household_plan_update,
        actor=actor_of(user),
        ctx=ctx,
        household_id=household_id,
        target_type="household",
        target_id=household_id,
        extra={"before": before, "after": {"kind": str(kind), "retention_days": retention_days}},
    )
    return plan


async def set_encryption(
    db: AsyncSession,
    *,
    household_id: uuid.UUID,
    mode: Encryption,
    user: User,
    ctx: RequestContext,
) -> HouseholdPlan:
    """Switch how new clips are encrypted. End-to-end needs at least one member key, or
    nobody could ever open the clips. Clips already stored keep their encryption."""
    if mode is Encryption.e2e and not await member_keys(db, household_id):
        raise InvalidInput(
            "No member of this household has an end-to-end key yet: make one on your key "
            "page (/account/keyring) first, or nobody could open the new clips."
        )
    plan = await plan_of(db, household_id)
    before = str(plan.encryption or Encryption.standard)
    plan.encryption = mode
    plan = await db.merge(plan)
    record(
        db,
        tag=Tag.household_encryption_update,
        actor=actor_of(user),
        ctx=ctx,
        household_id=household_id,
        target_type="household",
        target_id=household_id,
        extra={"before": before, "after": str(mode)},
    )
    return plan


async def update_household(
    db: AsyncSession,
    *,
    household: Household,
    changes: dict[str, object],
    actor: User,
    ctx: RequestContext,
) -> Household:
    """A household's details change, and its cameras' copy of its location with them."""
    moved_from = (household.latitude, household.longitude)
    await households.update_household(
        db, household=household, changes=changes, actor=actor, ctx=ctx
    )
    if (household.latitude, household.longitude) != moved_from:
        # The household's row first: on PostgreSQL its update takes the row lock that a
        # pairing takes too (pair_device), so a camera paired meanwhile is either
        # already there to be moved or waits and copies the new location.
        await db.flush()
        await place_cameras(db, household)
    return household
