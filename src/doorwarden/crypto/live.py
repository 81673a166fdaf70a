"""End-to-end live view: one camera stream sealed under a fresh session key
(docs/live-view.md, "End-to-end live view").

The agent makes a `LiveSealer` each time a camera starts a stream: a random 32-byte key,
wrapped to every member's X25519 key as clip keys are (crypto/wrap.py), and a random
16-byte session id. The init message's "e2e" block carries the session id, the wrapped
keys and the device id, signed by the device's Ed25519 key over their canonical JSON, so
that a member's page knows the key came from the camera and not from the server.

Every binary payload of the stream (the init segment, each fragment) is then

    counter (8 bytes, big-endian) | nonce (12 bytes) | AES-256-GCM ciphertext + tag

with associated data session | kind (1 byte) | counter. The counter rises by one per
payload (the send queue may drop some, so a viewer sees gaps, never a step back); binding
it, the kind and the session into the tag means a relay cannot reorder or replay
fragments, move one into another stream, or pass a delta off as a keyframe. The kind
stays in clear outside the payload so that the relay's keyframe cache still works.

Pure: shared by the agent (sealing), the server (`check_block`: strict shape only, it has
no key) and tests (`LiveOpener`, the Python twin of static/e2e/live.js).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from doorwarden.crypto.canonical import canonical_json
from doorwarden.crypto.errors import MalformedError, NotARecipientError, SignatureError
from doorwarden.crypto.keys import KEY_BYTES, RecipientKey, SigningKey, b64d, b64e, key_id
from doorwarden.crypto.keys import verify_signature as _verify
from doorwarden.crypto.wrap import WrappedKey, unwrap_key, wrap_key

SESSION_BYTES = 16
NONCE_BYTES = 12
TAG_BYTES = 16
COUNTER = struct.Struct(">Q")
HEAD_BYTES = COUNTER.size + NONCE_BYTES  # what precedes the ciphertext
INIT, KEYFRAME, DELTA = 0x00, 0x01, 0x02  # the agent's wire kinds (agent/live/link.py)
# A household has a handful of members, each with a current key and perhaps a retired
# one still in the set: 64 wrapped keys (about 12 KiB of JSON) is far beyond that.
MAX_RECIPIENTS = 64
MAX_DEVICE_ID = 64
SIGNATURE_BYTES = 64


class LiveTamperedError(MalformedError):
    """A payload that does not open with the session key, or arrives out of order."""


def signed_part(session: str, recipients: list[dict[str, str]], device: str) -> bytes:
    """The bytes the device signs: canonical JSON of the block without its signature."""
    return canonical_json({"session": session, "recipients": recipients, "device": device})


def aad(session: bytes, kind: int, counter: int) -> bytes:
    return session + bytes([kind]) + COUNTER.pack(counter)


class LiveSealer:
    """One live stream's sealing: made per stream, never reused across streams."""

    def __init__(
        self, recipients: Sequence[bytes], device_id: str, signing_key: SigningKey
    ) -> None:
        if not recipients:
            raise ValueError("end-to-end live view needs at least one member key")
        if len(recipients) > MAX_RECIPIENTS:
            raise ValueError(f"end-to-end live view wraps to at most {MAX_RECIPIENTS} keys")
        key = os.urandom(KEY_BYTES)
        self._aead = AESGCM(key)
        self.session = os.urandom(SESSION_BYTES)
        wrapped = [wrap_key(key, public).to_json() for public in recipients]
        session = b64e(self.session)
        signature = signing_key.sign(signed_part(session, wrapped, device_id))
        self.block: dict[str, Any] = {
            "session": session,
            "recipients": wrapped,
            "device": device_id,
            "signature": b64e(signature),
        }
        self.counter = 0

    def seal(self, kind: int, data: bytes) -> bytes:
        """counter | nonce | ciphertext+tag; the counter rises with every call."""
        counter, self.counter = self.counter, self.counter + 1
        nonce = os.urandom(NONCE_BYTES)  # a fresh key per stream: 2^32 payloads are years
        sealed = self._aead.encrypt(nonce, data, aad(self.session, kind, counter))
        return COUNTER.pack(counter) + nonce + sealed


def check_block(value: object) -> dict[str, Any]:
    """The server's strict check of an init message's "e2e" block: shapes and sizes only
    (it holds no key and must not need one). Returns the block, rebuilt from what was
    checked, so nothing unexpected is passed on to viewers; MalformedError otherwise."""
    if not isinstance(value, dict) or set(value) != {
        "session",
        "recipients",
        "device",
        "signature",
    }:
        raise MalformedError("e2e: needs exactly session, recipients, device, signature")
    session, recipients, device, signature = (
        value["session"], value["recipients"], value["device"], value["signature"],
    )  # fmt: skip
    if not isinstance(session, str) or not isinstance(signature, str):
        raise MalformedError("e2e: session and signature are base64url strings")
    b64d(session, what="e2e.session", length=SESSION_BYTES)
    b64d(signature, what="e2e.signature", length=SIGNATURE_BYTES)
    if not isinstance(device, str) or not 0 < len(device) <= MAX_DEVICE_ID:
        raise MalformedError(f"e2e.device: a string of 1 to {MAX_DEVICE_ID} characters")
    if not isinstance(recipients, list) or not 0 < len(recipients) <= MAX_RECIPIENTS:
        raise MalformedError(f"e2e.recipients: a list of 1 to {MAX_RECIPIENTS} wrapped keys")
    for item in recipients:
        wrapped = WrappedKey.from_json(item)  # exact fields, lengths
        if len(wrapped.recipient) != 32 or not all(
            c in "0123456789abcdef" for c in wrapped.recipient
        ):
            raise MalformedError("e2e.recipients[].recipient: a 32-character key id")
    return {
        "session": session,
        "recipients": [dict(item) for item in recipients],
        "device": device,
        "signature": signature,
    }


class LiveOpener:
    """A member's side, in Python (tests, tools): verify, unwrap, open in order."""

    def __init__(self, block: object, device_public: bytes, member: RecipientKey) -> None:
        checked = check_block(block)
        part = signed_part(checked["session"], checked["recipients"], checked["device"])
        try:
            _verify(device_public, part, b64d(checked["signature"], what="e2e.signature"))
        except SignatureError:
            raise SignatureError("the live session is not signed by this camera") from None
        self.device = checked["device"]
        self.session = b64d(checked["session"], what="e2e.session")
        mine = key_id(member.public)
        wrapped = [WrappedKey.from_json(w) for w in checked["recipients"]]
        match = next((w for w in wrapped if w.recipient == mine), None)
        if match is None:
            raise NotARecipientError("this live session was not wrapped to this member's key")
        self._aead = AESGCM(unwrap_key(match, member))
        self.last: int | None = None

    def open(self, kind: int, payload: bytes) -> bytes:
        """The plaintext of the next payload; LiveTamperedError if its tag fails or its
        counter is not above the last one opened."""
        if len(payload) < HEAD_BYTES + TAG_BYTES:
            raise LiveTamperedError("a sealed live payload is at least 36 bytes")
        (counter,) = COUNTER.unpack_from(payload)
        if self.last is not None and counter <= self.last:
            raise LiveTamperedError(f"live payload {counter} after {self.last}: out of order")
        nonce = payload[COUNTER.size : HEAD_BYTES]
        try:
            plain = self._aead.decrypt(
                nonce, payload[HEAD_BYTES:], aad(self.session, kind, counter)
            )
        except InvalidTag:
            raise LiveTamperedError(f"live payload {counter} does not open: tampered") from None
        self.last = counter
        return plain
