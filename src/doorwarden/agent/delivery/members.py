"""The member set an end-to-end camera seals to, as the server signed it (docs/e2e.md,
"Rotation"; crypto/member_set.py).

GET /api/v1/device answers the mode and the recipients twice: as plain fields (what
older agents read) and as `member_set`, a document signed with the key this camera
pinned at pairing (`settings_key`). The agent takes the mode and the recipients from the
signed document only:

* its signature must verify with the pinned key (no key pinned yet: the one in the same
  answer is learnt and pinned, as settings/key.py does for an old pairing);
* it must name this device;
* it must not be older than the set the camera holds (`member_set_issued_at` in
  device.json): a replayed answer cannot put a removed member back.

An answer without a signed set is accepted only for standard mode (the household key,
which the server holds anyway); an end-to-end camera keeps the set it has.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from doorwarden.crypto.errors import MalformedError, SignatureError
from doorwarden.crypto.keys import KEY_BYTES, b64d, b64e
from doorwarden.crypto.member_set import MemberSet, open_member_set


class MemberSetRefused(Exception):
    """The answer's member set cannot be used; the message says why."""


@dataclass(frozen=True)
class Adopted:
    """What a device answer says, checked: the fields to merge into DeviceIdentity."""

    fields: dict[str, Any]
    signed: bool


def checked_state(
    body: dict[str, Any],
    *,
    device_id: str,
    pinned: bytes | None,
    held_issued_at: str | None,
) -> Adopted:
    """The mode, recipients (and the set's issue time and key to pin) an answer of GET
    /api/v1/device gives this device; MemberSetRefused if it must not be used."""
    signed = body.get("member_set")
    if signed is None:
        if body.get("mode", "standard") != "standard":
            raise MemberSetRefused("an end-to-end mode without a signed member set")
        return Adopted({"mode": "standard", "recipients": body["recipients"]}, signed=False)
    if not isinstance(signed, dict):
        raise MemberSetRefused("member_set is not an object")
    key = pinned
    if key is None:
        try:
            key = b64d(str(body.get("settings_key")), what="settings_key", length=KEY_BYTES)
        except MalformedError as exc:
            raise MemberSetRefused(f"no key to check the member set with: {exc}") from None
    try:
        members = open_member_set(key, str(signed.get("document")), str(signed.get("signature")))
    except (MalformedError, SignatureError) as exc:
        raise MemberSetRefused(f"the member set's signature does not verify: {exc}") from None
    if members.device_id != device_id:
        raise MemberSetRefused("the member set is for another device")
    if held_issued_at is not None and members.issued < _issued(held_issued_at):
        raise MemberSetRefused(
            f"the member set was issued at {members.issued_at}, before the one held "
            f"({held_issued_at}): a replay"
        )
    return Adopted(_fields(members, key), signed=True)


def _fields(members: MemberSet, key: bytes) -> dict[str, Any]:
    return {
        "mode": members.mode,
        "recipients": [{"key_id": k, "public_key": b64e(p)} for k, p in members.recipients],
        "member_set_issued_at": members.issued_at,
        "settings_key": b64e(key),
    }


def _issued(text: str) -> datetime:
    return datetime.fromisoformat(text)
