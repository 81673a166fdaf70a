"""The server's signature on the set of keys a camera must wrap its clip keys to
(docs/e2e.md, "Rotation").

In an end-to-end household the recipients of every clip are the members' own keys. The
server decides who is a member, so it says which keys those are -- but a camera should
not take a bare list from whatever answered on the network: a signed document, by the
same Ed25519 key the camera pinned at pairing for its settings (the audit log's key,
crypto/settings_sig.py), with its own domain-separation prefix so that neither kind of
document can pass for the other. The document names the device (a set signed for
another camera is refused) and when it was issued (the agent never goes back to a set
older than the one it holds).

The signature covers a domain prefix and the canonical JSON of the document (no floats
in it: crypto/canonical.py), sent as text so the agent verifies the exact bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from doorwarden.crypto import strict_json
from doorwarden.crypto.canonical import canonical_json
from doorwarden.crypto.errors import MalformedError
from doorwarden.crypto.keys import KEY_BYTES, SigningKey, b64d, b64e, key_id, verify_signature

CONTEXT = b"doorwarden member set v1\n"
MAX_DOCUMENT_BYTES = 64 * 1024  # a household has at most 50 members (households/service.py)


@dataclass(frozen=True)
class MemberSet:
    """Device `device_id` of household `household_id` seals in `mode`, to `recipients`
    ((key id, X25519 public key) pairs), as the server said at `issued_at` (ISO, UTC)."""

    device_id: str
    household_id: str
    mode: str
    recipients: tuple[tuple[str, bytes], ...]
    issued_at: str

    def to_text(self) -> str:
        body = {
            "device_id": self.device_id,
            "household_id": self.household_id,
            "mode": self.mode,
            "recipients": [{"key_id": k, "public_key": b64e(p)} for k, p in self.recipients],
            "issued_at": self.issued_at,
        }
        return canonical_json(body).decode()

    @property
    def issued(self) -> datetime:
        return datetime.fromisoformat(self.issued_at).astimezone(UTC)


def sign_member_set(private: bytes, members: MemberSet) -> tuple[str, str]:
    """(the document's text, its signature in base64url) as sent to the camera."""
    text = members.to_text()
    return text, b64e(SigningKey.from_bytes(private).sign(CONTEXT + text.encode()))


def open_member_set(public: bytes, text: str, signature: str) -> MemberSet:
    """The set if `signature` is the server's over `text`; MalformedError or
    crypto.keys.SignatureError otherwise. The caller checks the device and the date."""
    data = text.encode()
    if len(data) > MAX_DOCUMENT_BYTES:
        raise MalformedError("member set too large")
    verify_signature(public, CONTEXT + data, b64d(signature, what="signature"))
    body = strict_json.loads(text, max_bytes=MAX_DOCUMENT_BYTES)
    if not isinstance(body, dict):
        raise MalformedError("member set: not an object")
    try:
        fields = {name: body[name] for name in ("device_id", "household_id", "mode", "issued_at")}
        listed = body["recipients"]
    except KeyError as exc:
        raise MalformedError(f"member set: {exc.args[0]} missing") from None
    if not all(isinstance(v, str) and v for v in fields.values()) or not isinstance(listed, list):
        raise MalformedError("member set: a field has the wrong type")
    if fields["mode"] not in ("standard", "e2e"):
        raise MalformedError("member set: mode must be standard or e2e")
    recipients = []
    for entry in listed:
        if not isinstance(entry, dict) or not isinstance(entry.get("public_key"), str):
            raise MalformedError("member set: a recipient is not {key_id, public_key}")
        public = b64d(entry["public_key"], what="recipient", length=KEY_BYTES)
        if entry.get("key_id") != key_id(public):
            raise MalformedError("member set: a key_id is not the id of its key")
        recipients.append((key_id(public), public))
    try:
        issued = datetime.fromisoformat(fields["issued_at"])
    except ValueError:
        raise MalformedError("member set: issued_at is not an ISO time") from None
    if issued.tzinfo is None:
        raise MalformedError("member set: issued_at has no zone")
    return MemberSet(
        device_id=fields["device_id"],
        household_id=fields["household_id"],
        mode=fields["mode"],
        recipients=tuple(recipients),
        issued_at=fields["issued_at"],
    )
