"""WebAuthn ceremonies (py_webauthn) for passkeys that back up the member key.

The page asks the passkey for its PRF output (the `prf` extension, CTAP2 hmac-secret) at
a salt this server chose; that output, through HKDF, wraps the member key in the browser.
The server sees neither the output nor the key: it verifies registrations and assertions
(so a backup is released only to someone who holds the passkey), keeps the salt, and
stores the backup as ciphertext.

The relying party is the public base URL's host, and the expected origin that URL's
scheme, host and port: a passkey made here works only on this instance's address.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.options_to_json_dict import options_to_json_dict
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from doorwarden.accounts.models import User
from doorwarden.audit.service import RequestContext
from doorwarden.audit.tags import Tag
from doorwarden.config import Settings
from doorwarden.crypto.keys import b64d, b64e
from doorwarden.errors import Conflict, InvalidInput, NotFound
from doorwarden.keyring.models import Ceremony, KeyBackup, Passkey
from doorwarden.keyring.schemas import CeremonyIn, PasskeyRegistrationIn
from doorwarden.keyring.service import Gone, store_backup, tell

CEREMONY_TTL = timedelta(minutes=5)
MAX_PASSKEYS = 10


def relying_party(settings: Settings) -> tuple[str, str]:
    """(rp id, expected origin) from the public base URL."""
    parts = urlsplit(settings.public_base_url)
    return parts.hostname or "localhost", f"{parts.scheme}://{parts.netloc}"


def slot_of(credential_id: str) -> str:
    return f"passkey:{credential_id}"


async def _new_ceremony(
    db: AsyncSession, *, user: User, purpose: str, now: datetime, prf_salt: str | None = None
) -> Ceremony:
    # The member's spent and expired challenges go as a new one comes: no sweep job needed.
    await db.execute(
        delete(Ceremony).where(
            Ceremony.user_id == user.id,
            (Ceremony.expires_at <= now) | Ceremony.used_at.is_not(None),
        )
    )
    ceremony = Ceremony(
        id=uuid.uuid4(),
        user_id=user.id,
        purpose=purpose,
        challenge=b64e(secrets.token_bytes(32)),
        prf_salt=prf_salt,
        expires_at=now + CEREMONY_TTL,
    )
    db.add(ceremony)
    await db.flush()
    return ceremony


async def _take(
    db: AsyncSession, *, user: User, ceremony_id: uuid.UUID, purpose: str, now: datetime
) -> Ceremony:
    """The ceremony's challenge, used up: each challenge answers once."""
    query = select(Ceremony).where(
        Ceremony.id == ceremony_id, Ceremony.user_id == user.id, Ceremony.purpose == purpose
    )
    ceremony = (await db.scalars(query.with_for_update())).one_or_none()
    if ceremony is None:
        raise NotFound("No such passkey ceremony.")
    if ceremony.used_at is not None:
        raise Gone("This passkey challenge was already answered. Start again.")
    if now >= ceremony.expires_at:
        raise Gone("This passkey challenge has expired. Start again.")
    ceremony.used_at = now
    return ceremony


async def registration_options(
    db: AsyncSession, *, user: User, settings: Settings, now: datetime
) -> tuple[Ceremony, dict[str, Any]]:
    existing = (await db.scalars(select(Passkey).where(Passkey.user_id == user.id))).all()
    if len(existing) >= MAX_PASSKEYS:
        raise Conflict(f"At most {MAX_PASSKEYS} passkeys hold your key.")
    rp_id, _origin = relying_party(settings)
    ceremony = await _new_ceremony(
        db, user=user, purpose="register", now=now, prf_salt=b64e(secrets.token_bytes(32))
    )
    options = generate_registration_options(
        rp_id=rp_id,
        rp_name="doorwarden",
        user_name=user.email,
        user_id=user.id.bytes,
        user_display_name=user.display_name,
        challenge=b64d(ceremony.challenge, what="challenge"),
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=[
            PublicKeyCredentialDescriptor(id=b64d(p.credential_id, what="credential id"))
            for p in existing
        ],
    )
    return ceremony, options_to_json_dict(options)


async def register(
    db: AsyncSession,
    *,
    user: User,
    settings: Settings,
    body: PasskeyRegistrationIn,
    ctx: RequestContext,
    now: datetime,
) -> Passkey:
    ceremony = await _take(db, user=user, ceremony_id=body.ceremony_id, purpose="register", now=now)
    rp_id, origin = relying_party(settings)
    try:
        verified = verify_registration_response(
            credential=body.credential,
            expected_challenge=b64d(ceremony.challenge, what="challenge"),
            expected_rp_id=rp_id,
            expected_origin=origin,
            require_user_verification=True,
        )
    except WebAuthnException as exc:
        raise InvalidInput(f"The passkey's registration did not verify: {exc}") from None
    credential_id = b64e(verified.credential_id)
    kdf = body.backup.kdf
    if body.backup.method != "passkey" or getattr(kdf, "credential_id", None) != credential_id:
        raise InvalidInput("The backup must be a passkey backup made with this passkey.")
    if kdf.salt != ceremony.prf_salt:
        raise InvalidInput("The backup must use the PRF salt this ceremony gave.")
    if len(credential_id) > 300:
        raise InvalidInput("The credential id is too long.")
    passkey = Passkey(
        user_id=user.id,
        credential_id=credential_id,
        public_key=b64e(verified.credential_public_key),
        sign_count=verified.sign_count,
        prf_salt=ceremony.prf_salt or "",
    )
    db.add(passkey)
    await store_backup(db, user=user, slot=slot_of(credential_id), backup=body.backup, ctx=ctx)
    tell(db, user, ctx, Tag.account_keyring_passkey_add, credential_id=credential_id)
    return passkey


async def authentication_options(
    db: AsyncSession, *, user: User, settings: Settings, now: datetime
) -> tuple[Ceremony, dict[str, Any], dict[str, str]]:
    passkeys = (await db.scalars(select(Passkey).where(Passkey.user_id == user.id))).all()
    if not passkeys:
        raise NotFound("No passkey holds a backup of your key.")
    rp_id, _origin = relying_party(settings)
    ceremony = await _new_ceremony(db, user=user, purpose="authenticate", now=now)
    options = generate_authentication_options(
        rp_id=rp_id,
        challenge=b64d(ceremony.challenge, what="challenge"),
        allow_credentials=[
            PublicKeyCredentialDescriptor(id=b64d(p.credential_id, what="credential id"))
            for p in passkeys
        ],
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    salts = {p.credential_id: p.prf_salt for p in passkeys}
    return ceremony, options_to_json_dict(options), salts


async def authenticate(
    db: AsyncSession,
    *,
    user: User,
    settings: Settings,
    body: CeremonyIn,
    ctx: RequestContext,
    now: datetime,
) -> dict[str, Any]:
    """The passkey's backup record, released after a verified assertion."""
    ceremony = await _take(
        db, user=user, ceremony_id=body.ceremony_id, purpose="authenticate", now=now
    )
    credential_id = body.credential.get("id")
    if not isinstance(credential_id, str):
        raise InvalidInput("The credential has no id.")
    query = select(Passkey).where(
        Passkey.user_id == user.id, Passkey.credential_id == credential_id
    )
    passkey = (await db.scalars(query.with_for_update())).one_or_none()
    if passkey is None:
        raise NotFound("This passkey does not hold a backup of your key.")
    rp_id, origin = relying_party(settings)
    try:
        verified = verify_authentication_response(
            credential=body.credential,
            expected_challenge=b64d(ceremony.challenge, what="challenge"),
            expected_rp_id=rp_id,
            expected_origin=origin,
            credential_public_key=b64d(passkey.public_key, what="public key"),
            credential_current_sign_count=passkey.sign_count,
            require_user_verification=True,
        )
    except WebAuthnException as exc:
        raise InvalidInput(f"The passkey's assertion did not verify: {exc}") from None
    passkey.sign_count, passkey.last_used_at = verified.new_sign_count, now
    backup = (
        await db.scalars(
            select(KeyBackup).where(
                KeyBackup.user_id == user.id, KeyBackup.slot == slot_of(credential_id)
            )
        )
    ).one_or_none()
    if backup is None:
        raise NotFound("This passkey holds no backup of your current key.")
    tell(db, user, ctx, Tag.account_keyring_passkey_unlock, credential_id=credential_id)
    return backup.record
