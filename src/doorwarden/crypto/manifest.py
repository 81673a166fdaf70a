"""The signed manifest of a clip, and the hash chain that links a device's manifests.

A signed manifest is `{"manifest": {...}, "signature": "<base64url Ed25519>"}`; the
signature covers `canonical_json(manifest)`, and the manifest's hash (what the next one
names as `previous`) is the SHA-256 of those same bytes. The wrapped clip keys are inside
the manifest, so nobody can swap a recipient without breaking the signature.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from doorwarden.crypto.canonical import canonical_json
from doorwarden.crypto.errors import MalformedError
from doorwarden.crypto.keys import SigningKey, b64d, b64e, verify_signature
from doorwarden.crypto.strict_json import loads
from doorwarden.crypto.wrap import WrappedKey

VERSION = 1
MAX_MANIFEST_BYTES = 256 * 1024  # a manifest is ~2 KB; refuse to parse anything huge
# {"manifest": {"recipients": [{...}]}} is three levels; a little room, no more.
MAX_MANIFEST_DEPTH = 8
GENESIS = "0" * 64  # `previous` of a device's first clip
Mode = Literal["standard", "e2e"]

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_FIELDS: dict[str, type | tuple[type, ...]] = {
    "version": int,
    "device": str,
    "sequence": int,
    "start_utc": str,
    "end_utc": str,
    "duration_ms": int,
    "size": int,
    "sha256": str,
    "ciphertext_size": int,
    "ciphertext_sha256": str,
    "thumbnail_size": int,
    "thumbnail_sha256": str,
    "previous": str,
    "labels": list,
    "motion_score": int,
    "codec": str,
    "width": int,
    "height": int,
    "mode": str,
    "recipients": list,
}


@dataclass(frozen=True)
class Manifest:
    device: str
    sequence: int
    start_utc: str
    end_utc: str
    duration_ms: int
    size: int  # plaintext bytes
    sha256: str  # of the plaintext (the MP4)
    ciphertext_size: int
    ciphertext_sha256: str
    thumbnail_size: int  # of the sealed thumbnail (same clip key, its own stream); 0: none
    thumbnail_sha256: str  # of the sealed thumbnail's bytes (SHA-256 of b"" when none)
    previous: str  # hash of the device's previous manifest, GENESIS for the first
    labels: tuple[str, ...]
    motion_score: int  # per-mille of the analysed area at the peak
    codec: str
    width: int
    height: int
    mode: Mode
    recipients: tuple[WrappedKey, ...]
    version: int = VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "device": self.device,
            "sequence": self.sequence,
            "start_utc": self.start_utc,
            "end_utc": self.end_utc,
            "duration_ms": self.duration_ms,
            "size": self.size,
            "sha256": self.sha256,
            "ciphertext_size": self.ciphertext_size,
            "ciphertext_sha256": self.ciphertext_sha256,
            "thumbnail_size": self.thumbnail_size,
            "thumbnail_sha256": self.thumbnail_sha256,
            "previous": self.previous,
            "labels": list(self.labels),
            "motion_score": self.motion_score,
            "codec": self.codec,
            "width": self.width,
            "height": self.height,
            "mode": self.mode,
            "recipients": [r.to_json() for r in self.recipients],
        }

    @property
    def digest(self) -> str:
        """What the next manifest of this device names as `previous`."""
        return hashlib.sha256(canonical_json(self.to_json())).hexdigest()

    @classmethod
    def from_json(cls, data: object) -> Manifest:
        if not isinstance(data, dict):
            raise MalformedError("manifest: not an object")
        if set(data) != set(_FIELDS):
            missing, extra = set(_FIELDS) - set(data), set(data) - set(_FIELDS)
            raise MalformedError(f"manifest: missing {sorted(missing)}, unknown {sorted(extra)}")
        for name, kind in _FIELDS.items():
            value = data[name]
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise MalformedError(f"manifest.{name}: wrong type")
        if data["version"] != VERSION:
            raise MalformedError(f"manifest.version: {data['version']} is not supported")
        for name in ("sha256", "ciphertext_sha256", "thumbnail_sha256", "previous"):
            if not _HEX64.match(data[name]):
                raise MalformedError(f"manifest.{name}: not a lowercase SHA-256 hex digest")
        for name in (
            "sequence", "duration_ms", "size", "ciphertext_size", "thumbnail_size", "width",
            "height",
        ):  # fmt: skip
            if data[name] < 0:
                raise MalformedError(f"manifest.{name}: negative")
        if data["mode"] not in ("standard", "e2e"):
            raise MalformedError("manifest.mode: must be standard or e2e")
        if not all(isinstance(label, str) for label in data["labels"]):
            raise MalformedError("manifest.labels: must be strings")
        if not data["recipients"]:
            raise MalformedError("manifest.recipients: a clip nobody can open is refused")
        fields = dict(data)
        fields["labels"] = tuple(data["labels"])
        fields["recipients"] = tuple(WrappedKey.from_json(r) for r in data["recipients"])
        manifest = cls(**fields)
        try:
            # The bytes a signature and the chain's hash cover must exist: no integer beyond
            # 2**53, no text without a UTF-8 form (a lone surrogate from a \ud800 escape).
            canonical_json(manifest.to_json())
        except UnicodeEncodeError:
            raise MalformedError("manifest: text with no UTF-8 form") from None
        return manifest


@dataclass(frozen=True)
class SignedManifest:
    manifest: Manifest
    signature: bytes

    def to_json(self) -> dict[str, Any]:
        return {"manifest": self.manifest.to_json(), "signature": b64e(self.signature)}

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_json())

    @classmethod
    def loads(cls, data: bytes | str) -> SignedManifest:
        """From the JSON text a camera sends or a file holds: bounded in size and nesting
        before it is parsed (strict_json), then `parse`. Anything wrong: MalformedError."""
        return cls.parse(loads(data, max_bytes=MAX_MANIFEST_BYTES, max_depth=MAX_MANIFEST_DEPTH))

    @classmethod
    def parse(cls, data: object) -> SignedManifest:
        """Structure only; `verify` checks the signature."""
        if not isinstance(data, dict) or set(data) != {"manifest", "signature"}:
            raise MalformedError("a signed manifest has exactly manifest and signature")
        if not isinstance(data["signature"], str):
            raise MalformedError("signature: not a string")
        return cls(
            Manifest.from_json(data["manifest"]),
            b64d(data["signature"], what="signature", length=64),
        )

    def verify(self, device_public: bytes) -> Manifest:
        verify_signature(device_public, canonical_json(self.manifest.to_json()), self.signature)
        return self.manifest


def sign(manifest: Manifest, key: SigningKey) -> SignedManifest:
    return SignedManifest(manifest, key.sign(canonical_json(manifest.to_json())))


@dataclass(frozen=True)
class ChainProblem:
    kind: Literal["gap", "fork", "broken_link", "not_genesis"]
    sequence: int
    detail: str


def check_chain(manifests: Sequence[Manifest], *, from_start: bool = True) -> list[ChainProblem]:
    """Problems in one device's chain (manifests in any order).

    gap: a sequence number missing (a clip deleted or withheld); fork: two different
    manifests with one sequence number; broken_link: `previous` is not the hash of the
    manifest before (one swapped or altered); not_genesis: with `from_start`, the first
    does not start the chain.
    """
    problems: list[ChainProblem] = []
    by_sequence: dict[int, Manifest] = {}
    for m in sorted(manifests, key=lambda m: m.sequence):
        seen = by_sequence.get(m.sequence)
        if seen is not None and seen.digest != m.digest:
            problems.append(ChainProblem("fork", m.sequence, "two different clips"))
        by_sequence.setdefault(m.sequence, m)
    ordered = [by_sequence[s] for s in sorted(by_sequence)]
    if ordered and from_start and (ordered[0].sequence != 0 or ordered[0].previous != GENESIS):
        problems.append(
            ChainProblem("not_genesis", ordered[0].sequence, "chain does not start at 0")
        )
    for before, after in itertools.pairwise(ordered):
        if after.sequence != before.sequence + 1:
            missing = f"{before.sequence + 1}..{after.sequence - 1}"
            problems.append(ChainProblem("gap", after.sequence, f"missing sequence {missing}"))
        elif after.previous != before.digest:
            problems.append(ChainProblem("broken_link", after.sequence, "previous does not match"))
    return problems
