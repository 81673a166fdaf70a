"""The keyring's rules: passphrase backups (fetches rate-limited), device approval by
code, and rotation of a member's own key. Services take keyword arguments and never
commit (the request does), so each change and its audit event share one transaction.

The server decides nothing cryptographic here: it cannot tell a right passphrase from a
wrong one, nor check a wrapped key. What it does check is whose request it is, whether it
is still open, and whether the key being handed over is the member's current one.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.accounts.models import User
from doorwarden.accounts.service import actor_of
from doorwarden.audit.service import RequestContext, record
from doorwarden.audit.tags import Tag
from doorwarden.crypto.keys import KEY_BYTES, b64d, key_id
from doorwarden.devices.keys import set_member_key
from doorwarden.devices.models import MemberKey
from doorwarden.errors import Conflict, DomainError, InvalidInput, NotFound, TooManyAttempts
from doorwarden.households.models import HouseholdMember
from doorwarden.keyring.models import (
    Ceremony,
    DeviceRequest,
    KeyBackup,
    Passkey,
    RetiredKeys,
)
from doorwarden.keyring.schemas import ApprovalIn, BackupRecord, RotateIn

DEVICE_REQUEST_TTL = timedelta(minutes=10)
MAX_PENDING_REQUESTS = 3
# Each fetch of the passphrase backup lets its holder guess passphrases offline, so a
# stolen session gets a handful of copies an hour, not a stream (every copy is the same
# ciphertext, but a limit makes a session thief's fetch visible and slow to repeat).
FETCH_WINDOW = timedelta(hours=1)
FETCHES_PER_WINDOW = 10
PASSPHRASE_SLOT = "passphrase"


class Gone(DomainError):
    status_code = 410
    code = "gone"


class StaleKey(Conflict):
    code = "stale_key"


def tell(db: AsyncSession, user: User, ctx: RequestContext, tag: Tag, **extra: Any) -> None:
    target = extra.pop("target", user.id)
    record(
        db,
        tag=tag,
        actor=actor_of(user),
        ctx=ctx,
        target_type="user",
        target_id=target,
        extra=extra or None,
    )


async def current_key_id(db: AsyncSession, user_id: uuid.UUID) -> str | None:
    row = await db.get(MemberKey, user_id)
    if row is None:
        return None
    return key_id(b64d(row.public_key, what="member key", length=KEY_BYTES))


async def require_current(db: AsyncSession, user: User, named: str) -> str:
    """The member's current key id, which `named` must be: a device still holding a key
    that was rotated away must not back it up or hand it on."""
    current = await current_key_id(db, user.id)
    if current is None:
        raise Conflict("Register your end-to-end key first.")
    if named != current:
        raise StaleKey(
            "This is not your current end-to-end key (it was replaced). "
            "Unlock the current key on this device first."
        )
    return current


async def overview(db: AsyncSession, *, user: User) -> dict[str, Any]:
    row = await db.get(MemberKey, user.id)
    backups = (await db.scalars(select(KeyBackup).where(KeyBackup.user_id == user.id))).all()
    passkeys = (await db.scalars(select(Passkey).where(Passkey.user_id == user.id))).all()
    retired = await db.get(RetiredKeys, user.id)
    return {
        "key_id": await current_key_id(db, user.id),
        "public_key": row.public_key if row else None,
        "backups": [
            {
                "method": b.record["method"],
                "key_id": b.key_id,
                "credential_id": b.record["kdf"].get("credential_id"),
                "created_at": b.created_at,
            }
            for b in backups
        ],
        "passkeys": [p.credential_id for p in passkeys],
        "retired": len(retired.keys) if retired else 0,
    }


async def store_backup(
    db: AsyncSession, *, user: User, slot: str, backup: BackupRecord, ctx: RequestContext
) -> KeyBackup:
    await require_current(db, user, backup.key_id)
    row = (
        await db.scalars(
            select(KeyBackup).where(KeyBackup.user_id == user.id, KeyBackup.slot == slot)
        )
    ).one_or_none()
    if row is None:
        row = KeyBackup(user_id=user.id, slot=slot, key_id=backup.key_id, record={}, fetches=0)
        db.add(row)
    row.key_id, row.record = backup.key_id, backup.model_dump()
    row.fetches, row.fetch_window_started_at = 0, None
    tell(db, user, ctx, Tag.account_keyring_backup_set, method=backup.method, key_id=backup.key_id)
    await db.flush()
    return row


async def fetch_passphrase_backup(
    db: AsyncSession, *, user: User, ctx: RequestContext, now: datetime
) -> dict[str, Any]:
    query = select(KeyBackup).where(KeyBackup.user_id == user.id, KeyBackup.slot == PASSPHRASE_SLOT)
    row = (await db.scalars(query.with_for_update())).one_or_none()
    if row is None:
        raise NotFound("You have no passphrase backup.")
    started = row.fetch_window_started_at
    if started is None or now - started >= FETCH_WINDOW:
        row.fetch_window_started_at, row.fetches = now, 0
    elif row.fetches >= FETCHES_PER_WINDOW:
        retry = int((started + FETCH_WINDOW - now).total_seconds()) + 1
        raise TooManyAttempts(
            "Too many attempts at your passphrase backup. Try again later.", retry_after=retry
        )
    row.fetches += 1
    tell(db, user, ctx, Tag.account_keyring_backup_fetch, method="passphrase", key_id=row.key_id)
    return row.record


# -- adding a device by code ----------------------------------------------------------------


def request_status(req: DeviceRequest, now: datetime) -> str:
    if req.cancelled_at is not None:
        return "cancelled"
    if req.collected_at is not None:
        return "collected"
    if req.approved_at is not None:
        return "approved"
    return "expired" if now >= req.expires_at else "pending"


async def create_device_request(
    db: AsyncSession, *, user: User, public_key: str, ctx: RequestContext, now: datetime
) -> DeviceRequest:
    b64d(public_key, what="public_key", length=KEY_BYTES)  # the schema fixed its length
    # Requests closed a day ago have nothing left to show: they go as new ones come.
    await db.execute(
        delete(DeviceRequest).where(
            DeviceRequest.user_id == user.id, DeviceRequest.expires_at < now - timedelta(days=1)
        )
    )
    open_requests = select(DeviceRequest.expires_at).where(
        DeviceRequest.user_id == user.id,
        DeviceRequest.expires_at > now,
        DeviceRequest.approved_at.is_(None),
        DeviceRequest.cancelled_at.is_(None),
    )
    waiting = (await db.scalars(open_requests.order_by(DeviceRequest.expires_at))).all()
    if len(waiting) >= MAX_PENDING_REQUESTS:
        retry = int((waiting[0] - now).total_seconds()) + 1
        raise TooManyAttempts(
            "Too many devices are already waiting. Try again later.", retry_after=retry
        )
    req = DeviceRequest(
        id=uuid.uuid4(), user_id=user.id, public_key=public_key, expires_at=now + DEVICE_REQUEST_TTL
    )
    db.add(req)
    tell(db, user, ctx, Tag.account_keyring_device_request, target=req.id)
    await db.flush()
    return req


async def pending_requests(db: AsyncSession, *, user: User, now: datetime) -> list[DeviceRequest]:
    query = select(DeviceRequest).where(
        DeviceRequest.user_id == user.id,
        DeviceRequest.expires_at > now,
        DeviceRequest.approved_at.is_(None),
        DeviceRequest.cancelled_at.is_(None),
    )
    return list((await db.scalars(query.order_by(DeviceRequest.created_at))).all())


async def own_request(
    db: AsyncSession, *, user: User, request_id: uuid.UUID, for_update: bool = False
) -> DeviceRequest:
    """Another member's request reads as missing: its existence is not theirs to learn."""
    query = select(DeviceRequest).where(
        DeviceRequest.id == request_id, DeviceRequest.user_id == user.id
    )
    if for_update:
        query = query.with_for_update()
    req = (await db.scalars(query)).one_or_none()
    if req is None:
        raise NotFound("No such device request.")
    return req


def _refuse_closed(req: DeviceRequest, now: datetime) -> None:
    state = request_status(req, now)
    if state == "expired":
        raise Gone("This device request has expired. Start again on the new device.")
    if state == "cancelled":
        raise Gone("This device request was cancelled (your key was replaced).")
    if state in ("approved", "collected"):
        raise Conflict("This device request was already approved; it can be used once.")


async def approve(
    db: AsyncSession,
    *,
    user: User,
    request_id: uuid.UUID,
    body: ApprovalIn,
    ctx: RequestContext,
    now: datetime,
) -> DeviceRequest:
    req = await own_request(db, user=user, request_id=request_id, for_update=True)
    _refuse_closed(req, now)
    await require_current(db, user, body.key_id)
    member_of = await db.scalar(
        select(func.count()).select_from(HouseholdMember).where(HouseholdMember.user_id == user.id)
    )
    if not member_of:
        # A key is for a household's clips: once its holder belongs to none, a device of
        # theirs (perhaps the one that was lost) has nothing left to hand on.
        raise Conflict(
            "You are no longer a member of any household: this device cannot add another.",
            details={"reason": "not_a_member"},
        )
    recipient = key_id(b64d(req.public_key, what="public_key", length=KEY_BYTES))
    if body.wrapped.recipient != recipient:
        raise InvalidInput("The key is wrapped to another key than this request's.")
    req.approved_at, req.approved_key_id = now, body.key_id
    req.wrapped = body.wrapped.model_dump()
    tell(db, user, ctx, Tag.account_keyring_device_approve, target=req.id, key_id=body.key_id)
    return req


async def collect(
    db: AsyncSession, *, user: User, request_id: uuid.UUID, ctx: RequestContext, now: datetime
) -> DeviceRequest:
    req = await own_request(db, user=user, request_id=request_id, for_update=True)
    state = request_status(req, now)
    if state == "pending":
        raise Conflict("Not approved yet.", details={"reason": "pending"})
    if state == "collected":
        raise Gone("This key was already collected; a request is used once.")
    if state != "approved":
        _refuse_closed(req, now)
    if req.approved_key_id != await current_key_id(db, user.id):
        raise Gone("Your key was replaced after this approval. Start again on the new device.")
    req.collected_at = now
    tell(db, user, ctx, Tag.account_keyring_device_collect, target=req.id)
    return req


# -- rotation: "I lost a device" ------------------------------------------------------------


async def rotate(
    db: AsyncSession, *, user: User, body: RotateIn, ctx: RequestContext, now: datetime
) -> MemberKey:
    """A new current key; every earlier one travels along, wrapped to it. Backups and
    passkeys of the old key are dropped (they would open only the old key), and requests
    approved with it are cancelled: the page asks for a new backup at once."""
    previous = await require_current(db, user, body.previous_key_id)
    new_id = key_id(b64d(body.public_key, what="public_key", length=KEY_BYTES))
    if new_id == previous:
        raise InvalidInput("The new key is the current key.")
    ids = [k.key_id for k in body.retired]
    if len(set(ids)) != len(ids) or previous not in ids or new_id in ids:
        raise InvalidInput(
            "retired must list each earlier key once, the current one included, not the new one."
        )
    retired = await db.get(RetiredKeys, user.id)
    dropped = {k["key_id"] for k in (retired.keys if retired else [])} - set(ids)
    if dropped:
        # Clips recorded under those keys would become unreadable on every new device.
        raise InvalidInput(f"retired must carry every earlier key; missing: {sorted(dropped)}")
    for k in body.retired:
        if key_id(b64d(k.public_key, what="public_key", length=KEY_BYTES)) != k.key_id:
            raise InvalidInput(f"retired key {k.key_id}: its id does not match its public key.")
        if k.wrapped.recipient != new_id:
            raise InvalidInput(f"retired key {k.key_id} is not wrapped to the new key.")
    row = await set_member_key(db, user=user, public_key=body.public_key, ctx=ctx, now=now)
    keys = [k.model_dump() for k in body.retired]
    if retired is None:
        db.add(RetiredKeys(user_id=user.id, sealed_under=new_id, keys=keys, updated_at=now))
    else:
        retired.sealed_under, retired.keys, retired.updated_at = new_id, keys, now
    await db.execute(delete(KeyBackup).where(KeyBackup.user_id == user.id))
    await db.execute(delete(Passkey).where(Passkey.user_id == user.id))
    await db.execute(delete(Ceremony).where(Ceremony.user_id == user.id))
    open_requests = select(DeviceRequest).where(
        DeviceRequest.user_id == user.id,
        DeviceRequest.collected_at.is_(None),
        DeviceRequest.cancelled_at.is_(None),
    )
    for req in (await db.scalars(open_requests)).all():
        req.cancelled_at = now
    tell(db, user, ctx, Tag.account_keyring_rotate, previous=previous, key_id=new_id)
    return row


async def retired_keys(db: AsyncSession, *, user: User) -> RetiredKeys | None:
    return await db.get(RetiredKeys, user.id)
