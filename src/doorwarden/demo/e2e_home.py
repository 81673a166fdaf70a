"""The demo's end-to-end household (docs/e2e.md): Quiet House, whose resident's key is
made here once, its public half registered as any member's is (devices.keys, which keeps
the key's history), its private half kept only inside a passphrase backup made as the
browser makes one (crypto/member_backup.py, Argon2id) and stored where the key page
keeps backups (keyring.service): signed in, the resident types the printed passphrase
on /account/keyring, and the browser unlocks the key. Then the household is switched to
end-to-end, so its camera seals every clip to that key alone.

Idempotent, as the rest of the seed: a key already registered is kept (its backup too),
and a household already end-to-end is left as it is."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.accounts.models import User
from doorwarden.audit.service import RequestContext
from doorwarden.crypto.keys import RecipientKey, b64e
from doorwarden.crypto.member_backup import passphrase_backup
from doorwarden.devices import service as devices
from doorwarden.devices.keys import set_member_key
from doorwarden.devices.models import Encryption, MemberKey
from doorwarden.keyring.schemas import BackupRecord
from doorwarden.keyring.service import PASSPHRASE_SLOT, store_backup


async def make_member_key(
    db: AsyncSession,
    owner: User,
    *,
    passphrase: str,
    ctx: RequestContext,
    now: datetime,
) -> str:
    """A new key for `owner`, registered, with its passphrase backup; its key id. The
    private key exists only in this function and, sealed, in the backup."""
    key = RecipientKey.generate()
    await set_member_key(db, user=owner, public_key=b64e(key.public), ctx=ctx, now=now)
    await db.flush()  # the backup is checked against the current key
    record = passphrase_backup(key.private_bytes(), user_id=str(owner.id), passphrase=passphrase)
    await store_backup(
        db, user=owner, slot=PASSPHRASE_SLOT, backup=BackupRecord.model_validate(record), ctx=ctx
    )
    return str(record["key_id"])


async def end_to_end(
    db: AsyncSession,
    household_id: uuid.UUID,
    owner: User,
    *,
    passphrase: str,
    ctx: RequestContext,
    now: datetime,
    made: list[str],
) -> None:
    """The owner's key and backup (once), then the household in end-to-end mode (once)."""
    if await db.get(MemberKey, owner.id) is None:
        key_id = await make_member_key(db, owner, passphrase=passphrase, ctx=ctx, now=now)
        made.append(f"end-to-end key: {owner.email} ({key_id}), passphrase backup")
    plan = await devices.plan_of(db, household_id)
    if plan.encryption is not Encryption.e2e:
        await devices.set_encryption(
            db, household_id=household_id, mode=Encryption.e2e, user=owner, ctx=ctx
        )
        made.append("end-to-end: Quiet House seals its clips to its members' keys")
