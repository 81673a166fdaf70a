"""The keys clips are wrapped to: the household key (standard mode: made on first use,
its private half sealed under the instance secret with the household id as context),
or the members' own public keys (end-to-end mode: the server never holds a private key
that opens those clips)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.accounts.models import User
from doorwarden.accounts.service import actor_of
from doorwarden.audit.service import RequestContext, record
from doorwarden.audit.tags import Tag
from doorwarden.crypto.errors import MalformedError
from doorwarden.crypto.keys import KEY_BYTES, RecipientKey, b64d, b64e, key_id
from doorwarden.crypto.member_set import MemberSet, sign_member_set
from doorwarden.crypto.secretbox import derive_key, open_sealed, seal
from doorwarden.devices.key_history_models import MemberKeyPeriod
from doorwarden.devices.models import Device, Encryption, HouseholdKey, HouseholdPlan, MemberKey
from doorwarden.errors import InvalidInput
from doorwarden.households.membership_models import MembershipPeriod
from doorwarden.households.models import HouseholdMember

# How long after a member's removal (or a key's replacement) a clip may still start and be
# wrapped to them: the agent fetches the member set before it seals (at most
# agent.delivery.worker.MEMBER_SET_MAX_AGE_S old) and a camera's clock may be a little
# off. A clip that starts later than this after the period closed is refused.
PERIOD_GRACE = timedelta(minutes=2)


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


def signed_member_set(
    private: bytes, device: Device, mode: Encryption, keys: list[bytes], now: datetime
) -> tuple[str, str]:
    """What `recipients` said for this camera, signed with the server's settings key (the
    audit log's Ed25519 key, which the agent pinned at pairing): the agent seals
    end-to-end clips only to a set it verified (crypto/member_set.py, docs/e2e.md)."""
    members = MemberSet(
        device_id=str(device.id),
        household_id=str(device.household_id),
        mode=mode.value,
        recipients=tuple((key_id(k), k) for k in keys),
        issued_at=now.astimezone(UTC).isoformat(),
    )
    return sign_member_set(private, members)


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
        await note_key(db, user_id=user.id, public_key=public_key, now=now)
    elif row.public_key != public_key:
        row.public_key, row.created_at = public_key, now
        await note_key(db, user_id=user.id, public_key=public_key, now=now)
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


async def note_key(db: AsyncSession, *, user_id: uuid.UUID, public_key: str, now: datetime) -> None:
    """The user's key is `public_key` from `now` on (key_history_models.py): their
    previous key's period closes. Whoever replaces a member key calls this (set_member_key
    does), so that clips wrapped to the old key while it was current stay accepted."""
    current = await db.scalars(
        select(MemberKeyPeriod).where(
            MemberKeyPeriod.user_id == user_id, MemberKeyPeriod.valid_to.is_(None)
        )
    )
    for period in current:
        period.valid_to = now
    public = b64d(public_key, what="member key", length=KEY_BYTES)
    db.add(
        MemberKeyPeriod(
            user_id=user_id, key_id=key_id(public), public_key=public_key, valid_from=now
        )
    )


async def member_key_ids_since(
    db: AsyncSession,
    household_id: uuid.UUID,
    key_ids: Iterable[str],
    *,
    start: datetime,
    current: set[str] | None = None,
) -> set[str]:
    """Of `key_ids`, those that were a member key of the household at some moment since
    `start` (a clip's recording time, less PERIOD_GRACE): a key that was a member's while
    the clip could have been sealed. A clip recorded before a member left and uploaded
    after is wrapped to a key that qualifies; a key nobody in the household had, or one
    that stopped being a member's before the clip began, does not. Current members'
    current keys always qualify (`current`: their ids, read here if not given)."""
    wanted = set(key_ids)
    if not wanted:
        return set()
    if current is None:
        current = {key_id(k) for k in await member_keys(db, household_id)}
    found = wanted & current
    if not wanted - found:
        return found
    rows = await db.execute(
        select(
            MemberKeyPeriod.key_id,
            MemberKeyPeriod.valid_from,
            MemberKeyPeriod.valid_to,
            MembershipPeriod.joined_at,
            MembershipPeriod.left_at,
        )
        .join(MembershipPeriod, MembershipPeriod.user_id == MemberKeyPeriod.user_id)
        .where(
            MembershipPeriod.household_id == household_id,
            MemberKeyPeriod.key_id.in_(sorted(wanted - found)),
        )
    )
    earliest = start - PERIOD_GRACE
    for kid, key_from, key_to, joined, left in rows:
        # The key was this household member's during the overlap of the key's period and
        # the membership's: it must be non-empty, and not over before `earliest`.
        begin = max(key_from, joined)
        ends = [t for t in (key_to, left) if t is not None]
        end = min(ends) if ends else None
        if end is None or (begin < end and end > earliest):
            found.add(kid)
    return found


async def members_without_key(db: AsyncSession, household_id: uuid.UUID) -> list[User]:
    """The household's members who registered no end-to-end key: in end-to-end mode they
    are no recipient of new clips (the encryption page names them before a switch)."""
    query = (
        select(User)
        .join(HouseholdMember, HouseholdMember.user_id == User.id)
        .outerjoin(MemberKey, MemberKey.user_id == User.id)
        .where(HouseholdMember.household_id == household_id, MemberKey.user_id.is_(None))
        .order_by(HouseholdMember.added_at)
    )
    return list((await db.scalars(query)).all())
