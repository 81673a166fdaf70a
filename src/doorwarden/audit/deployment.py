"""Which deployment a database belongs to, so that server instances cannot split it.

Every instance derives from DOORWARDEN_SECRET_KEY the seals of household keys, TOTP and
webhook secrets, session, CSRF and device-cookie signatures and the push (VAPID) key; and
from the key and the log's origin (DOORWARDEN_LOG_ORIGIN, by default from
DOORWARDEN_PUBLIC_BASE_URL) the key that signs the audit log's checkpoints. Two instances
of one deployment that differ in either would sign two logs that no verifier can join,
and (for the key) refuse each other's sessions and sealed secrets. So the first
`doorwarden serve` records both here, and every later one must match them (cli/server.py,
before uvicorn starts).

Not in the app's lifespan: the test suite shares one PostgreSQL server among many keys,
and an app made by a test is not a deployment.

The key's fingerprint is an HMAC keyed by the secret over a fixed label: it reveals
nothing of the key, and is no value that any other use of the key produces. The origin is
public (every checkpoint names it).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from doorwarden.audit.models import DeploymentIdentity

_LABEL = b"doorwarden deployment identity v1"
_ROW = 1
_WHY = (
    "Every server instance must share them: with two, the audit log would split into two "
    "that no verifier can join"
)


def fingerprint(secret_key: str) -> str:
    return hmac.new(secret_key.encode(), _LABEL, hashlib.sha256).hexdigest()


class DeploymentMismatch(Exception):
    """This database was first served with another secret key or log origin."""


class SecretKeyMismatch(DeploymentMismatch):
    def __init__(self, recorded_at: datetime) -> None:
        super().__init__(
            "Refusing to start: this database belongs to a deployment whose "
            "DOORWARDEN_SECRET_KEY differs from this instance's (its fingerprint was "
            f"recorded on {recorded_at:%Y-%m-%d %H:%M} UTC). {_WHY}, and sessions, sealed "
            "keys and push keys would not carry from one instance to another. Start this "
            "instance with the key the others use; every instance must share one secret key."
        )


class LogOriginMismatch(DeploymentMismatch):
    def __init__(self, recorded: str, mine: str) -> None:
        super().__init__(
            f"Refusing to start: this database's audit log is signed as origin {recorded!r}, "
            f"and this instance would sign it as {mine!r}. {_WHY}. Give every instance the "
            "same DOORWARDEN_PUBLIC_BASE_URL, or set DOORWARDEN_LOG_ORIGIN to "
            f"{recorded!r} (which also keeps the log when the site's address changes)."
        )


async def claim(
    sessions: async_sessionmaker[AsyncSession], secret_key: str, log_origin: str
) -> bool:
    """Record this key's fingerprint and this log origin if the database has none (True),
    accept them if they are the ones recorded (False), or raise a DeploymentMismatch. Two
    first instances starting at once race on the one row's primary key: the loser
    compares with what the winner recorded."""
    mine = fingerprint(secret_key)
    for _attempt in range(2):
        async with sessions() as db:
            row = await db.get(DeploymentIdentity, _ROW)
            if row is None:
                db.add(DeploymentIdentity(id=_ROW, secret_fingerprint=mine, log_origin=log_origin))
                try:
                    await db.commit()
                except IntegrityError:
                    await db.rollback()
                    continue  # another instance recorded first: compare with its row
                return True
            if not hmac.compare_digest(row.secret_fingerprint, mine):
                raise SecretKeyMismatch(row.recorded_at)
            if row.log_origin != log_origin:
                raise LogOriginMismatch(row.log_origin, log_origin)
            return False
    raise RuntimeError("the deployment identity row vanished while being claimed")
