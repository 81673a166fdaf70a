"""The device's identity on disk: its signing key and what pairing told it.

`<state_dir>/device.key` holds the Ed25519 private key (32 raw bytes) and
`<state_dir>/device.json` the pairing (server, ids, the device token, the sealing mode,
the recipients' public keys, the plan); both are mode 0600 in a 0700 directory
(docs/clip-pipeline.md). Both hold secrets, so:

* they are born 0600: created with `O_CREAT | O_EXCL` and mode 0600 (then `fchmod`, so
  even a umask of 0 or 0777 gives exactly 0600), never written world-readable and then
  tightened;
* they are written whole or not at all: a temporary file in the same directory, fsync,
  rename (the key: hard link, which never replaces an existing key), directory fsync;
* a file that other users can read is refused with the `chmod` that fixes it, rather than
  silently used (or silently chmod-ed: a key that was readable may have been copied, and
  the owner should know).

Unpairing (`forget`) deletes the key as well as `device.json`: the server revoked the old
public key, and a camera that is paired again — perhaps into another household — must not
sign with a key that the previous household (or whoever read a backup) could hold. The
key is deleted first: a crash half-way leaves a pairing without a key, which
`signing_key()` refuses loudly, never a key that a new pairing would silently reuse.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from doorwarden.agent.recording.spool import fsync_dir
from doorwarden.crypto.errors import MalformedError
from doorwarden.crypto.keys import KEY_BYTES, SigningKey, b64d, b64e, key_id
from doorwarden.crypto.manifest import Mode

PlanKind = Literal["recording", "live_only"]
KEY_FILE = "device.key"
IDENTITY_FILE = "device.json"
TMP_PREFIX = ".tmp-"  # write_atomic's temporary files: `.tmp-<name>-<random>`


class IdentityError(Exception):
    """The device state on disk is unusable; the message says which file and what to do."""


@dataclass(frozen=True)
class Plan:
    kind: PlanKind
    retention_days: int | None


@dataclass(frozen=True)
class DeviceIdentity:
    """What pairing gave this device. The token is a bearer secret: kept out of repr."""

    server: str
    device_id: str
    household_id: str
    token: str = field(repr=False)
    mode: Mode
    recipients: list[tuple[str, bytes]]  # (key id, X25519 public key)
    plan: Plan
    # The server's Ed25519 key for camera settings (docs/camera-settings.md): learnt at
    # pairing, or once from GET /api/v1/device by an older pairing, then kept (pinned).
    settings_key: bytes | None = None
    # When the server issued the signed member set these recipients came from
    # (members.py): a set issued earlier is a replay and is refused.
    member_set_issued_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        return (
            {
                "server": self.server,
                "device_id": self.device_id,
                "household_id": self.household_id,
                "token": self.token,
                "mode": self.mode,
                "recipients": [{"key_id": k, "public_key": b64e(p)} for k, p in self.recipients],
                "plan": {"kind": self.plan.kind, "retention_days": self.plan.retention_days},
            }
            | ({"settings_key": b64e(self.settings_key)} if self.settings_key else {})
            | (
                {"member_set_issued_at": self.member_set_issued_at}
                if self.member_set_issued_at
                else {}
            )
        )

    @classmethod
    def from_json(cls, data: object) -> DeviceIdentity:
        """Checked field by field; raises ValueError naming the first bad field."""
        body = _object(data, "device state")
        mode = _str(body, "mode")
        if mode not in ("standard", "e2e"):
            raise ValueError("mode: must be standard or e2e")
        recipients = []
        for item in _list(body, "recipients"):
            entry = _object(item, "recipients[]")
            kid = _str(entry, "key_id")
            try:
                public = b64d(_str(entry, "public_key"), what="public_key", length=KEY_BYTES)
            except MalformedError as exc:
                raise ValueError(f"recipients[]: {exc}") from None
            if kid != key_id(public):
                raise ValueError(f"recipients[]: key_id {kid} is not the id of its public_key")
            recipients.append((kid, public))
        plan = _object(body.get("plan"), "plan")
        kind = _str(plan, "kind")
        if kind not in ("recording", "live_only"):
            raise ValueError("plan.kind: must be recording or live_only")
        days = plan.get("retention_days")
        if days is not None and (not isinstance(days, int) or isinstance(days, bool) or days < 0):
            raise ValueError("plan.retention_days: must be a non-negative integer or null")
        settings_key = None
        if body.get("settings_key") is not None:
            try:
                settings_key = b64d(
                    _str(body, "settings_key"), what="settings_key", length=KEY_BYTES
                )
            except MalformedError as exc:
                raise ValueError(f"settings_key: {exc}") from None
        issued = body.get("member_set_issued_at")
        if issued is not None and not isinstance(issued, str):
            raise ValueError("member_set_issued_at: not a string")
        return cls(
            server=_str(body, "server"),
            device_id=_str(body, "device_id"),
            household_id=_str(body, "household_id"),
            token=_str(body, "token"),
            mode=cast(Mode, mode),
            recipients=recipients,
            plan=Plan(cast(PlanKind, kind), days),
            settings_key=settings_key,
            member_set_issued_at=issued,
        )


class IdentityStore:
    """`device.key` and `device.json` in `state_dir` (created 0700 if missing)."""

    def __init__(self, state_dir: Path | str) -> None:
        self.state_dir = Path(state_dir)
        self.key_path = self.state_dir / KEY_FILE
        self.identity_path = self.state_dir / IDENTITY_FILE

    def signing_key(self) -> SigningKey:
        """The device key, made on first use (before pairing: its public half is sent)."""
        self._ensure_dir()
        try:
            raw = _read_private(self.key_path)
        except FileNotFoundError:
            pass
        else:
            if len(raw) != KEY_BYTES:
                raise IdentityError(
                    f"{self.key_path} is {len(raw)} bytes, not a {KEY_BYTES}-byte device key; "
                    f"move it away and pair this camera again"
                )
            return SigningKey.from_bytes(raw)
        if self.identity_path.exists():
            # A key made now would not be the one the server knows: every clip would be
            # refused. This is what a crash half-way through `forget()` leaves.
            raise IdentityError(
                f"{self.key_path} is missing but {self.identity_path} says this camera is "
                f"paired; unpair it (delete {self.identity_path}) and pair it again"
            )
        key = SigningKey.generate()
        try:
            write_atomic(self.key_path, key.private_bytes(), replace=False)
        except FileExistsError:
            return self.signing_key()  # another process made one first: use that one
        return key

    def load(self) -> DeviceIdentity | None:
        """The pairing, or None before the camera was paired."""
        try:
            raw = _read_private(self.identity_path)
        except FileNotFoundError:
            return None
        try:
            return DeviceIdentity.from_json(json.loads(raw))
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError included
            raise IdentityError(
                f"{self.identity_path} is not valid device state ({exc}); pair this camera again"
            ) from None

    def save(self, identity: DeviceIdentity) -> None:
        """Written whole. The settings key is pinned: a save without one (the uploader
        refreshing the plan from an identity loaded before the key was learnt) keeps the
        one on disk; `forget` (unpairing) is what drops it."""
        self._ensure_dir()
        if identity.settings_key is None:
            with contextlib.suppress(FileNotFoundError, IdentityError):
                kept = self.load()
                if kept is not None and kept.device_id == identity.device_id:
                    identity = dataclasses.replace(identity, settings_key=kept.settings_key)
        body = json.dumps(identity.to_json(), sort_keys=True, indent=1).encode()
        write_atomic(self.identity_path, body)

    def forget(self) -> None:
        """Unpair: delete the key (first, see the module docstring), then the pairing."""
        if not self.state_dir.is_dir():
            return
        self.key_path.unlink(missing_ok=True)
        fsync_dir(self.state_dir)
        self.identity_path.unlink(missing_ok=True)
        for debris in self.state_dir.glob(f"{TMP_PREFIX}*"):
            debris.unlink(missing_ok=True)  # a crash in write_atomic: may hold a key
        fsync_dir(self.state_dir)

    def _ensure_dir(self) -> None:
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)


def write_atomic(
    path: Path,
    data: bytes | Iterable[bytes],
    *,
    replace: bool = True,
    mode: int = 0o600,
    before_rename: Callable[[], None] | None = None,
) -> None:
    """`path` holds `data` (bytes, or blocks written as they come) completely and
    durably, or is unchanged; if the process dies first, a `.tmp-*` file may be left in
    the same directory, for the owner of that directory to clear at start-up.

    The temporary file is created with O_EXCL and `mode`, then `fchmod`-ed to `mode`, so
    it never has wider permissions than `mode` whatever the umask. `replace=False` never
    overwrites: FileExistsError if `path` exists. `before_rename` runs once the data is
    on disk under the temporary name (the sealer's crash-test hook).
    """
    tmp = path.with_name(f"{TMP_PREFIX}{path.name}-{secrets.token_hex(6)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            for block in [data] if isinstance(data, bytes) else data:
                f.write(block)
            f.flush()
            os.fsync(f.fileno())
        if before_rename is not None:
            before_rename()
        if replace:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # atomic and, unlike rename, fails if path exists
            tmp.unlink()
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def _read_private(path: Path) -> bytes:
    """The contents of a secret file, refused if it is not a regular file only its owner
    can read. FileNotFoundError if it does not exist."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise IdentityError(f"{path} is not a regular file")
        if info.st_mode & 0o077:
            raise IdentityError(
                f"{path} is readable or writable by other users "
                f"(mode {stat.S_IMODE(info.st_mode):04o}); it holds a secret. If nobody else "
                f"could have copied it, run: chmod 600 {path}"
            )
        return f.read(64 * 1024)


def _object(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{what}: not an object")
    return value


def _list(body: dict[str, Any], name: str) -> list[Any]:
    value = body.get(name)
    if not isinstance(value, list):
        raise ValueError(f"{name}: not a list")
    return value


def _str(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name}: not a non-empty string")
    return value
