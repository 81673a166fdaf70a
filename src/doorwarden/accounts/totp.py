"""TOTP second factor (RFC 6238) with single-use recovery codes.

The seed is stored encrypted (crypto.secretbox) and bound to the user id. A code is
accepted at most once: the highest accepted time step is remembered, so a code seen
over a shoulder or in a proxy log cannot be replayed within its 30-second window.
"""

from __future__ import annotations

import io
import secrets
from datetime import datetime

import pyotp
import qrcode
import qrcode.image.svg
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.accounts.models import RecoveryCode, User
from doorwarden.accounts.secrets import secret_digest, verify_password
from doorwarden.accounts.service import actor_of
from doorwarden.audit.service import RequestContext, record
from doorwarden.audit.tags import Tag
from doorwarden.crypto.secretbox import derive_key, open_sealed, seal
from doorwarden.errors import Conflict, Forbidden, InvalidInput

ISSUER = "doorwarden"
RECOVERY_CODES = 10
RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read aloud safely
VALID_WINDOW = 1  # accept the previous and next 30-second step (clock drift)


def _key(secret_key: str) -> bytes:
    return derive_key(secret_key, "totp-seed")


def _seed(secret_key: str, user: User) -> str | None:
    if user.totp_secret_encrypted is None:
        return None
    return open_sealed(_key(secret_key), user.totp_secret_encrypted, context=user.id.bytes).decode()


def begin_enrolment(secret_key: str, user: User) -> str:
    """A fresh seed, stored but not yet in force until a code from it is confirmed."""
    if user.totp_enabled_at is not None:
        raise Conflict("Two-factor sign-in is already on; turn it off first to re-enrol.")
    seed = pyotp.random_base32()
    user.totp_secret_encrypted = seal(_key(secret_key), seed.encode(), context=user.id.bytes)
    return seed


def pending_seed(secret_key: str, user: User) -> str | None:
    return _seed(secret_key, user) if user.totp_enabled_at is None else None


def provisioning_uri(seed: str, email: str) -> str:
    return str(pyotp.TOTP(seed).provisioning_uri(name=email, issuer_name=ISSUER))


def qr_svg(uri: str) -> str:
    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    buffer = io.BytesIO()
    image.save(buffer)
    return buffer.getvalue().decode()


def _matching_step(seed: str, code: str, now: datetime) -> int | None:
    code = code.strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(seed)
    current = totp.timecode(now)
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if secrets.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def verify_code(secret_key: str, user: User, code: str, now: datetime) -> bool:
    """True once per valid code; marks the step used on the user row (caller commits)."""
    seed = _seed(secret_key, user)
    if seed is None:
        return False
    step = _matching_step(seed, code, now)
    if step is None or (user.totp_last_step is not None and step <= user.totp_last_step):
        return False
    user.totp_last_step = step
    return True


def _new_recovery_code() -> str:
    raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


def _normalise_recovery(code: str) -> str:
    return code.strip().lower().replace(" ", "").replace("-", "")


async def replace_recovery_codes(db: AsyncSession, user: User, now: datetime) -> list[str]:
    await db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = [_new_recovery_code() for _ in range(RECOVERY_CODES)]
    for code in codes:
        digest = secret_digest(f"{user.id}:{_normalise_recovery(code)}")
        db.add(RecoveryCode(user_id=user.id, code_hash=digest, created_at=now))
    return codes


async def confirm_enrolment(
    db: AsyncSession,
    secret_key: str,
    user: User,
    code: str,
    now: datetime,
    ctx: RequestContext,
) -> list[str]:
    if user.totp_enabled_at is not None:
        raise Conflict("Two-factor sign-in is already on.")
    if user.totp_secret_encrypted is None:
        raise InvalidInput("Start two-factor enrolment first.")
    if not verify_code(secret_key, user, code, now):
        raise InvalidInput("That code is not valid for this key. Check the time on your phone.")
    user.totp_enabled_at = now
    record(
        db,
        tag=Tag.account_totp_enable,
        actor=actor_of(user),
        ctx=ctx,
        target_type="user",
        target_id=user.id,
    )
    return await replace_recovery_codes(db, user, now)


async def use_recovery_code(db: AsyncSession, user: User, code: str, now: datetime) -> bool:
    digest = secret_digest(f"{user.id}:{_normalise_recovery(code)}")
    query = select(RecoveryCode).where(
        RecoveryCode.user_id == user.id,
        RecoveryCode.code_hash == digest,
        RecoveryCode.used_at.is_(None),
    )
    row = (await db.scalars(query.with_for_update())).first()
    if row is None:
        return False
    row.used_at = now
    return True


async def remaining_recovery_codes(db: AsyncSession, user: User) -> int:
    query = select(RecoveryCode).where(
        RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None)
    )
    return len((await db.scalars(query)).all())


async def disable(db: AsyncSession, user: User, *, password: str, ctx: RequestContext) -> None:
    """Turning the second factor off needs the password, so a borrowed session cannot."""
    if not await verify_password(user.password_hash, password):
        raise Forbidden("The password is not correct.")
    user.totp_secret_encrypted = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    await db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    record(
        db,
        tag=Tag.account_totp_disable,
        actor=actor_of(user),
        ctx=ctx,
        target_type="user",
        target_id=user.id,
    )
