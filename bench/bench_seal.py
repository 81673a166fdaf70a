"""Sealing throughput next to raw AES-256-GCM + SHA-256 over the same bytes.

Sealing a clip = chunked AES-256-GCM (256 KiB chunks), SHA-256 of the plaintext and of
the ciphertext, the key wrapped to one recipient (X25519 + HKDF), and the manifest signed
(Ed25519). The baseline is the least any authenticated encryption with a content hash
costs: AES-256-GCM over the same chunks with the same library and one SHA-256 of the
plaintext. Both read from the same in-memory blocks (1 MiB, as a file read would give
them); rounds alternate and the fastest of each is reported (on these shared machines a
round sometimes runs at half speed; noise only ever adds time). Target: sealing >= 80% of
raw. Sealing hashes the plaintext on a second thread, so on one core it would be slower.

Run: .venv/bin/python bench/bench_seal.py [--mib 64] [--rounds 5]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time
from collections.abc import Callable

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from doorwarden.crypto import stream
from doorwarden.crypto.keys import RecipientKey, SigningKey
from doorwarden.crypto.manifest import GENESIS, sign
from doorwarden.crypto.seal import ClipFacts, ClipSeal

BLOCK = 1024 * 1024
FACTS = ClipFacts(
    device="bench", sequence=0, previous=GENESIS, start_utc="2026-11-25T00:00:00.000+00:00",
    end_utc="2026-11-25T00:01:00.000+00:00", duration_ms=60_000, labels=("motion",),
    motion_score=100, codec="h264", width=1920, height=1080,
)  # fmt: skip


def raw(blocks: list[bytes]) -> None:
    aead, digest, nonce = AESGCM(stream.new_key()), hashlib.sha256(), os.urandom(12)
    chunk = stream.DEFAULT_CHUNK
    for block in blocks:
        digest.update(block)
        view = memoryview(block)  # no copies: the strongest baseline
        for i in range(0, len(block), chunk):
            aead.encrypt(nonce, view[i : i + chunk], None)
    digest.hexdigest()


def sealed(device: SigningKey, recipient: bytes) -> Callable[[list[bytes]], None]:
    def run(blocks: list[bytes]) -> None:
        sealer = ClipSeal([recipient], mode="standard")
        for _ in sealer.encrypt(blocks):
            pass
        sign(sealer.manifest(FACTS), device)

    return run


def timed(fn: Callable[[list[bytes]], None], blocks: list[bytes]) -> float:
    start = time.perf_counter()
    fn(blocks)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    blocks = [os.urandom(BLOCK) for _ in range(args.mib)]
    seal = sealed(SigningKey.generate(), RecipientKey.generate().public)
    raw(blocks), seal(blocks)  # warm up
    raw_t, seal_t = [], []
    for _ in range(args.rounds):
        raw_t.append(timed(raw, blocks))
        seal_t.append(timed(seal, blocks))
    r, s = min(raw_t), min(seal_t)
    print(f"{'case':<40} {'MiB/s':>8} {'vs raw':>8}")
    print(f"{'raw AES-256-GCM + SHA-256 (baseline)':<40} {args.mib / r:>8.0f} {1:>8.2f}")
    print(f"{'seal (GCM chunks, 2x SHA-256, wrap, sign)':<40} {args.mib / s:>8.0f} {r / s:>8.2f}")


if __name__ == "__main__":
    main()
