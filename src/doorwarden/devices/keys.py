"""The household key (standard mode): made on first use, its private half sealed under
the instance secret with the household id as context."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.crypto.keys import RecipientKey, b64d, b64e, key_id
from doorwarden.crypto.secretbox import derive_key, open_sealed, seal
from doorwarden.devices.models import HouseholdKey


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
