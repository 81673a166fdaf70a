"""Signed checkpoints of the audit log's Merkle tree, in the C2SP formats.

A checkpoint (c2sp.org/tlog-checkpoint) states the log's origin, tree size and root hash;
it travels as a signed note (c2sp.org/signed-note) with an Ed25519 signature. Using the
published formats rather than our own means a household can check our log with existing
tools (golang.org/x/mod/sumdb/note, transparency-dev witnesses) and witnesses can cosign
it. Everything here is pure: bytes in, bytes or values out, no I/O.

Parsing is strict on purpose: a checkpoint that two parsers could read differently is a
way to show two parties two different logs under one signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from doorwarden.crypto.errors import MalformedError, SignatureError
from doorwarden.crypto.keys import KEY_BYTES, SigningKey, verify_signature

ALG_ED25519 = 0x01  # signed-note's signature type byte for Ed25519
HASH_BYTES = 32  # SHA-256 Merkle roots (RFC 6962)
MAX_SIZE = 2**64 - 1  # other implementations hold the tree size in a uint64
MAX_NOTE_BYTES = 1 << 20  # size limits bound the work an attacker can make a verifier do
MAX_SIGNATURES = 100
LOG_KEY_INFO = b"doorwarden audit log key"
_SIG_PREFIX = "\u2014 "  # em dash, space
_DECIMAL = re.compile(r"0|[1-9][0-9]{0,19}")  # int() also takes "+1", " 1", "1_0", non-ASCII digits
_HEX_ID = re.compile(r"[0-9a-fA-F]{8}")


class CheckpointError(ValueError):
    """A checkpoint, note or key is malformed, or a signature does not verify."""


def _b64decode(text: str, what: str) -> bytes:
    """Standard base64, canonical only: one value has one spelling, so a changed
    character can never leave the decoded bytes (and thus the signature) unchanged."""
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise CheckpointError(f"{what}: not base64") from None
    if base64.b64encode(data).decode("ascii") != text:
        raise CheckpointError(f"{what}: not canonical base64")
    return data


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _check_chars(text: str, what: str) -> None:
    # signed-note forbids ASCII control characters other than newline (so no CR, no tab).
    for ch in text:
        if ch < " " and ch != "\n":
            raise CheckpointError(f"{what}: control character {ch!r}")


def _decode_text(data: bytes, what: str) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise CheckpointError(f"{what}: not UTF-8") from None
    _check_chars(text, what)
    return text


def _check_name(name: str) -> None:
    if not name or "+" in name or any(ch.isspace() for ch in name):
        raise CheckpointError(f"key name {name!r}: must be non-empty, without spaces or '+'")
    _check_chars(name, "key name")


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: the log `origin` had `size` leaves with Merkle root `root`."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Validate on construction so body() can only produce a checkpoint parse() accepts.
        if not self.origin or "\n" in self.origin:
            raise CheckpointError("origin: must be one non-empty line")
        _check_chars(self.origin, "origin")
        if not 0 <= self.size <= MAX_SIZE:
            raise CheckpointError(f"size: must be in 0..{MAX_SIZE}, got {self.size}")
        if len(self.root) != HASH_BYTES:
            raise CheckpointError(f"root: expected {HASH_BYTES} bytes, got {len(self.root)}")
        object.__setattr__(self, "extensions", tuple(self.extensions))
        for ext in self.extensions:
            if not ext or "\n" in ext:
                raise CheckpointError("extension: must be one non-empty line")
            _check_chars(ext, "extension")

    def body(self) -> bytes:
        lines = (self.origin, str(self.size), _b64encode(self.root), *self.extensions)
        return "".join(line + "\n" for line in lines).encode("utf-8")

    @classmethod
    def parse(cls, body: bytes) -> Checkpoint:
        text = _decode_text(body, "checkpoint")
        if not text.endswith("\n"):
            raise CheckpointError("checkpoint: must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise CheckpointError("checkpoint: needs origin, size and root lines")
        origin, size, root, *extensions = lines
        if not _DECIMAL.fullmatch(size):
            raise CheckpointError(f"size {size!r}: not a decimal without leading zeros")
        return cls(origin, int(size), _b64decode(root, "root"), tuple(extensions))


@dataclass(frozen=True)
class NoteKey:
    """An Ed25519 signer's public identity: a key name and a public key."""

    name: str
    public: bytes

    def __post_init__(self) -> None:
        _check_name(self.name)
        if len(self.public) != KEY_BYTES:
            raise CheckpointError(f"public key: expected {KEY_BYTES} bytes")

    @property
    def key_id(self) -> bytes:
        # Binds name and algorithm, so one key reused under another name or algorithm
        # has another ID (signed-note's recommended derivation).
        material = self.name.encode() + b"\n" + bytes([ALG_ED25519]) + self.public
        return hashlib.sha256(material).digest()[:4]

    def verifier(self) -> str:
        encoded = _b64encode(bytes([ALG_ED25519]) + self.public)
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    @classmethod
    def from_verifier(cls, vkey: str) -> NoteKey:
        # Names have no '+', base64 may: split at the first two.
        parts = vkey.split("+", 2)
        if len(parts) != 3 or not _HEX_ID.fullmatch(parts[1]):
            raise CheckpointError("verifier key: expected <name>+<8 hex digits>+<base64 key>")
        name, key_id, encoded = parts
        raw = _b64decode(encoded, "verifier key")
        if len(raw) != 1 + KEY_BYTES or raw[0] != ALG_ED25519:
            raise CheckpointError("verifier key: not an Ed25519 key")
        key = cls(name, raw[1:])
        if key.key_id != bytes.fromhex(key_id):
            raise CheckpointError("verifier key: the key ID does not match name and key")
        return key


def sign_note(text: bytes, name: str, private_key: bytes) -> bytes:
    """`text` as a signed note with one Ed25519 signature by (`name`, `private_key`)."""
    _decode_text(text, "note text")
    if not text.endswith(b"\n"):
        raise CheckpointError("note text: must end with a newline")
    try:
        signer = SigningKey.from_bytes(private_key)
    except MalformedError as exc:
        raise CheckpointError(f"private key: {exc}") from None
    key = NoteKey(name, signer.public)
    signature = _b64encode(key.key_id + signer.sign(text))
    return text + f"\n{_SIG_PREFIX}{name} {signature}\n".encode()


def open_note(note: bytes, key: NoteKey) -> bytes:
    """The text of `note`, once a signature by `key` verifies.

    Signatures by other keys (witness cosignatures, a rotated log key) are skipped, as
    signed-note requires; a line with our name but another ID is another key, not a
    forgery. Any line that is ours and does not verify rejects the whole note."""
    if len(note) > MAX_NOTE_BYTES:
        raise CheckpointError(f"note: larger than {MAX_NOTE_BYTES} bytes")
    _decode_text(note, "note")
    split = note.rfind(b"\n\n")  # the text may hold blank lines; the last one separates
    if split < 0:
        raise CheckpointError("note: no blank line before the signatures")
    text, block = note[: split + 1], note[split + 2 :].decode("utf-8")
    if not block.endswith("\n"):
        raise CheckpointError("note: signature lines must end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise CheckpointError(f"note: more than {MAX_SIGNATURES} signatures")
    verified = False
    for line in lines:
        if not line.startswith(_SIG_PREFIX):
            raise CheckpointError(f"note: not a signature line: {line[:40]!r}")
        name, _, encoded = line[len(_SIG_PREFIX) :].partition(" ")
        _check_name(name)
        raw = _b64decode(encoded, f"signature by {name}")
        if len(raw) < 5:
            raise CheckpointError(f"signature by {name}: too short")
        if name != key.name or raw[:4] != key.key_id:
            continue
        try:
            verify_signature(key.public, text, raw[4:])
        except SignatureError:
            raise CheckpointError(f"signature by {name}: does not verify") from None
        verified = True
    if not verified:
        raise CheckpointError(f"note: no signature by {key.name}+{key.key_id.hex()}")
    return text


def sign_checkpoint(checkpoint: Checkpoint, name: str, private_key: bytes) -> bytes:
    """The checkpoint as a signed note: body, blank line, one signature line."""
    return sign_note(checkpoint.body(), name, private_key)


def open_checkpoint(note: bytes, key: NoteKey, *, origin: str | None = None) -> Checkpoint:
    """The checkpoint in `note`, verified as signed by `key` and, if `origin` is given,
    issued by that log (a valid signature on another log's checkpoint proves nothing
    about ours)."""
    checkpoint = Checkpoint.parse(open_note(note, key))
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointError(f"origin {checkpoint.origin!r}: expected {origin!r}")
    return checkpoint


def log_key(secret: bytes, name: str) -> tuple[NoteKey, bytes]:
    """The instance's log key, derived from the server secret: every process of one
    instance derives the same key, and there is no key file to store, back up or leak
    separately. Returns (public identity, 32-byte private seed)."""
    if not secret:
        raise CheckpointError("secret: empty")
    seed = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=LOG_KEY_INFO)
    private = seed.derive(secret)
    return NoteKey(name, SigningKey.from_bytes(private).public), private
