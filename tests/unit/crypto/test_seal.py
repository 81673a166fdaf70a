"""A sealed clip end to end: seal, sign, chain, open; and each tampering refused."""

from __future__ import annotations

import json
import os
from dataclasses import replace

import pytest

from doorwarden.crypto.canonical import canonical_json
from doorwarden.crypto.errors import (
    ChunkError,
    HashMismatchError,
    MalformedError,
    NotARecipientError,
    NotFoundInClipError,
    SignatureError,
)
from doorwarden.crypto.keys import RecipientKey, SigningKey
from doorwarden.crypto.manifest import GENESIS, Manifest, SignedManifest, check_chain, sign
from doorwarden.crypto.seal import (
    ClipFacts,
    ClipSeal,
    check_ciphertext,
    open_clip,
    open_thumbnail,
)

CHUNK = 1024


def facts(sequence: int, previous: str) -> ClipFacts:
    return ClipFacts(
        device="dev-1", sequence=sequence, previous=previous,
        start_utc="2026-11-25T10:00:00.000+00:00", end_utc="2026-11-25T10:00:12.500+00:00",
        duration_ms=12_500, labels=("motion", "person"), motion_score=137, codec="h264",
        width=1280, height=720,
    )  # fmt: skip


def seal(
    data: bytes,
    device: SigningKey,
    recipients: list[RecipientKey],
    sequence: int = 0,
    previous: str = GENESIS,
) -> tuple[SignedManifest, bytes]:
    sealer = ClipSeal([r.public for r in recipients], mode="standard", chunk_size=CHUNK)
    blocks = [data[i : i + 1000] for i in range(0, len(data), 1000)]
    ciphertext = b"".join(sealer.encrypt(blocks))
    return sign(sealer.manifest(facts(sequence, previous)), device), ciphertext


@pytest.fixture
def device() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture
def household() -> RecipientKey:
    return RecipientKey.generate()


def opened(signed: SignedManifest, device: SigningKey, ct: bytes, who: RecipientKey) -> bytes:
    return b"".join(
        open_clip(signed, device.public, [ct[i : i + 999] for i in range(0, len(ct), 999)], who)
    )


def test_seal_and_open(device: SigningKey, household: RecipientKey) -> None:
    data = os.urandom(10_000)
    signed, ciphertext = seal(data, device, [household])
    assert opened(signed, device, ciphertext, household) == data
    m = signed.manifest
    assert (m.size, m.sequence, m.previous, m.labels) == (10_000, 0, GENESIS, ("motion", "person"))
    assert data[:64] not in ciphertext
    check_ciphertext(m, [ciphertext])


def test_the_thumbnail_is_sealed_under_the_clip_key_and_named_in_the_manifest(
    device: SigningKey, household: RecipientKey
) -> None:
    sealer = ClipSeal([household.public], mode="standard", chunk_size=CHUNK)
    ciphertext = b"".join(sealer.encrypt([b"video"]))
    sealed_thumb = sealer.seal_thumbnail(b"\xff\xd8 a jpeg")
    signed = sign(sealer.manifest(facts(0, GENESIS)), device)
    assert open_thumbnail(signed, device.public, sealed_thumb, household) == b"\xff\xd8 a jpeg"
    assert opened(signed, device, ciphertext, household) == b"video"
    other = ClipSeal([household.public], mode="standard").seal_thumbnail(b"another")
    with pytest.raises(HashMismatchError):
        open_thumbnail(signed, device.public, other, household)
    bare, _ = seal(b"no thumbnail", device, [household])
    assert bare.manifest.thumbnail_size == 0
    with pytest.raises(NotFoundInClipError):
        open_thumbnail(bare, device.public, b"", household)


def test_manifest_survives_json_and_keeps_its_signature(
    device: SigningKey, household: RecipientKey
) -> None:
    signed, _ = seal(b"clip", device, [household])
    again = SignedManifest.parse(json.loads(signed.to_bytes()))
    assert again == signed
    assert again.verify(device.public) == signed.manifest
    assert signed.to_bytes() == canonical_json(json.loads(signed.to_bytes()))


def test_end_to_end_mode_opens_for_each_member_and_nobody_else(device: SigningKey) -> None:
    alice, bob, server = RecipientKey.generate(), RecipientKey.generate(), RecipientKey.generate()
    sealer = ClipSeal([alice.public, bob.public], mode="e2e", chunk_size=CHUNK)
    ciphertext = b"".join(sealer.encrypt([b"the porch at night"]))
    signed = sign(sealer.manifest(facts(0, GENESIS)), device)
    assert signed.manifest.mode == "e2e"
    for member in (alice, bob):
        assert opened(signed, device, ciphertext, member) == b"the porch at night"
    with pytest.raises(NotARecipientError):
        opened(signed, device, ciphertext, server)


def test_a_forged_device_is_refused(device: SigningKey, household: RecipientKey) -> None:
    forger = SigningKey.generate()
    signed, ciphertext = seal(b"fake video", forger, [household])
    with pytest.raises(SignatureError):
        opened(signed, device, ciphertext, household)


@pytest.mark.parametrize(
    "change",
    [{"sequence": 5}, {"labels": ("motion",)}, {"end_utc": "2026-11-25T10:00:01.000+00:00"},
     {"sha256": "0" * 64}, {"mode": "e2e"}],
)  # fmt: skip
def test_any_change_to_the_manifest_breaks_its_signature(
    device: SigningKey, household: RecipientKey, change: dict[str, object]
) -> None:
    signed, _ = seal(b"clip", device, [household])
    altered = SignedManifest(replace(signed.manifest, **change), signed.signature)  # type: ignore[arg-type]
    with pytest.raises(SignatureError):
        altered.verify(device.public)


def test_a_swapped_clip_is_refused(device: SigningKey, household: RecipientKey) -> None:
    signed_a, _ = seal(os.urandom(5000), device, [household])
    _, ciphertext_b = seal(os.urandom(5000), device, [household], sequence=1)
    with pytest.raises(HashMismatchError):
        check_ciphertext(signed_a.manifest, [ciphertext_b])
    with pytest.raises(ChunkError):  # B's chunks do not open with A's key
        opened(signed_a, device, ciphertext_b, household)


def test_a_flipped_byte_is_refused_with_and_without_the_key(
    device: SigningKey, household: RecipientKey
) -> None:
    signed, ciphertext = seal(os.urandom(5000), device, [household])
    bad = bytearray(ciphertext)
    bad[2000] ^= 0x80
    with pytest.raises(HashMismatchError):
        check_ciphertext(signed.manifest, [bytes(bad)])
    with pytest.raises(ChunkError):
        opened(signed, device, bytes(bad), household)


def test_a_swapped_recipient_breaks_the_signature(
    device: SigningKey, household: RecipientKey
) -> None:
    """Whoever holds the manifest cannot add themselves as a reader."""
    signed, _ = seal(b"clip", device, [household])
    intruder = RecipientKey.generate()
    theirs, _ = seal(b"x", device, [intruder])
    forged = SignedManifest(
        replace(signed.manifest, recipients=theirs.manifest.recipients), signed.signature
    )
    with pytest.raises(SignatureError):
        forged.verify(device.public)


def chain(device: SigningKey, household: RecipientKey, n: int) -> list[Manifest]:
    out: list[Manifest] = []
    previous = GENESIS
    for sequence in range(n):
        signed, _ = seal(os.urandom(100), device, [household], sequence, previous)
        out.append(signed.manifest)
        previous = signed.manifest.digest
    return out


def test_an_intact_chain_in_any_order_has_no_problems(
    device: SigningKey, household: RecipientKey
) -> None:
    manifests = chain(device, household, 5)
    assert check_chain(manifests[::-1]) == []
    assert check_chain(manifests[2:], from_start=False) == []


def test_chain_problems_are_named(device: SigningKey, household: RecipientKey) -> None:
    manifests = chain(device, household, 6)
    gap = check_chain([m for m in manifests if m.sequence != 3])
    assert [(p.kind, p.sequence) for p in gap] == [("gap", 4)]
    assert "3..3" in gap[0].detail

    other, _ = seal(b"another clip", device, [household], 2, manifests[1].digest)
    fork = check_chain([*manifests, other.manifest])
    assert ("fork", 2) in [(p.kind, p.sequence) for p in fork]

    swapped = [*manifests[:2], replace(manifests[2], previous=GENESIS), *manifests[3:]]
    kinds = [(p.kind, p.sequence) for p in check_chain(swapped)]
    assert ("broken_link", 2) in kinds and ("broken_link", 3) in kinds

    assert [p.kind for p in check_chain(manifests[1:])] == ["not_genesis"]


@pytest.mark.parametrize(
    "mutate",
    [lambda d: d.pop("device"), lambda d: d.update(extra=1), lambda d: d.update(sequence="1"),
     lambda d: d.update(sequence=True), lambda d: d.update(sha256="ABC"),
     lambda d: d.update(size=-1), lambda d: d.update(mode="plain"),
     lambda d: d.update(recipients=[]), lambda d: d.update(version=2),
     lambda d: d.update(labels=[1])],
)  # fmt: skip
def test_malformed_manifests_are_refused(
    device: SigningKey, household: RecipientKey, mutate: object
) -> None:
    signed, _ = seal(b"clip", device, [household])
    data = json.loads(signed.to_bytes())
    mutate(data["manifest"])  # type: ignore[operator]
    with pytest.raises(MalformedError):
        SignedManifest.parse(data)


def test_canonical_json_refuses_floats() -> None:
    with pytest.raises(MalformedError, match="float"):
        canonical_json({"score": 0.5})
    assert (
        canonical_json({"b": 1, "a": [True, None, "é"]}) == '{"a":[true,null,"é"],"b":1}'.encode()
    )
