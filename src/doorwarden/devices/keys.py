"""The keys clips are wrapped to: the household key (standard mode: made on first use,
its private half sealed under the instance secret with the household id as context),
or the members' own public keys (end-to-end mode: the server never holds a private key
that opens those clips)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.accounts.models import User
from doorwarden.accounts.service import actor_of
from doorwarden.audit.service import RequestContext, record
from doorwarden.audit.tags import Tag
from doorwarden.crypto.errors import MalformedError
from doorwarden.crypto.keys import KEY_BYTES, RecipientKey, b64d, b64e, key_id
from doorwarden.crypto.secretbox import derive_key, open_sealed, seal
from doorwarden.devices.models import Encryption, HouseholdKey, HouseholdPlan, MemberKey
from doorwarden.errors import InvalidInput
from doorwarden.households.models import HouseholdMember


def _wrapping_key(secret_key: str) -> bytes:
    return derive_key(secret_key, "household-key")


async def household_public_key(
    db: AsyncSession, secret_key: str, household_id: uuid.UUID, now: datetime
) -> bytes:
    row = await db.get(HouseholdKey, household_id)
    if row is None:
        key = RecipientKey.generate()
        row = HouseholdKey(
            household_id=household_id,
            public_key=b64e(key.public),
            sealed_private_key=seal(
                _wrapping_key(secret_key), key.private_bytes(), context=household_id.bytes
            ),
            created_at=now,
        )
        db.add(row)
        await db.flush()
    return b64d(row.public_key, what="household key", length=32)


async def household_private_key(
    db: AsyncSession, secret_key: str, household_id: uuid.UUID
) -> RecipientKey | None:
    row = await db.get(HouseholdKey, household_id)
    if row is None:
        return None
    raw = open_sealed(_wrapping_key(secret_key), row.sealed_private_key, context=household_id.bytes)
    return RecipientKey.from_bytes(raw)


def recipient_json(public: bytes) -> dict[str, str]:
    return {"key_id": key_id(public), "public_key": b64e(public)}


async def member_keys(db: AsyncSession, household_id: uuid.UUID) -> list[bytes]:
    """The public keys of this household's members who registered one."""
    query = (
        select(MemberKey.public_key)
        .join(HouseholdMember, HouseholdMember.user_id == MemberKey.user_id)
        .where(HouseholdMember.household_id == household_id)
        .order_by(MemberKey.user_id)
    )
    return [b64d(k, what="member key", length=KEY_BYTES) for k in (await db.scalars(query)).all()]


async def recipients(
    db: AsyncSession, secret_key: str, household_id: uuid.UUID, now: datetime
) -> tuple[Encryption, list[bytes]]:
    """What a camera of this household must wrap its clip keys to, now."""
    plan = await db.get(HouseholdPlan, household_id)
    if plan is not None and plan.encryption is Encryption.e2e:
        return Encryption.e2e, await member_keys(db, household_id)
    return Encryption.standard, [await household_public_key(db, secret_key, household_id, now)]


async def set_member_key(
    db: AsyncSession, *, user: User, public_key: str, ctx: RequestContext, now: datetime
) -> MemberKey:
    try:
        b64d(public_key, what="public_key", length=KEY_BYTES)
    except MalformedError as exc:
        raise InvalidInput(f"Not an X25519 public key: {exc}") from None
    row = await db.get(MemberKey, user.id)
    if row is None:
        row = MemberKey(user_id=user.id, public_key=public_key, created_at=now)
        db.add(row)
    else:
        row.public_key, row.created_at = public_key, now
    record(
        db,
        tag=Tag.account_e2e_key_set,
        actor=actor_of(user),
        ctx=ctx,
        target_type="user",
        target_id=user.id,
        extra={"key_id": key_id(b64d(public_key, what="k", length=KEY_BYTES))},
    )
    return row
