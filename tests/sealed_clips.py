"""Sealed clips made with the real crypto, and the upload protocol driven as an agent
drives it (docs/clip-pipeline.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import httpx

from doorwarden.crypto.keys import SigningKey
from doorwarden.crypto.manifest import GENESIS, sign
from doorwarden.crypto.seal import ClipFacts, ClipSeal

PART = 256 * 1024


@dataclass(frozen=True)
class Sealed:
    sequence: int
    manifest: bytes
    ciphertext: bytes
    thumbnail: bytes
    digest: str
    plaintext: bytes


def seal_clip(
    device_id: object,
    key: SigningKey,
    recipients: list[bytes],
    sequence: int,
    previous: str = GENESIS,
    *,
    size: int = 700_000,
    labels: tuple[str, ...] = ("motion", "person"),
    start: str = "2026-11-25T10:00:00.000+00:00",
    mode: Literal["standard", "e2e"] = "standard",
) -> Sealed:
    data = os.urandom(size)
    sealer = ClipSeal(recipients, mode=mode, chunk_size=64 * 1024)
    ciphertext = b"".join(sealer.encrypt([data[i : i + 100_000] for i in range(0, size, 100_000)]))
    thumbnail = sealer.seal_thumbnail(b"\xff\xd8 thumbnail " + os.urandom(200))
    end = datetime.fromisoformat(start) + timedelta(seconds=12)
    facts = ClipFacts(
        device=str(device_id), sequence=sequence, previous=previous, start_utc=start,
        end_utc=end.isoformat(timespec="milliseconds"), duration_ms=12_000, labels=labels,
        motion_score=250, codec="h264", width=1280, height=720,
    )  # fmt: skip
    signed = sign(sealer.manifest(facts), key)
    return Sealed(sequence, signed.to_bytes(), ciphertext, thumbnail, signed.manifest.digest, data)


def chain_of(device_id: object, key: SigningKey, recipients: list[bytes], n: int) -> list[Sealed]:
    out: list[Sealed] = []
    previous = GENESIS
    for sequence in range(n):
        out.append(seal_clip(device_id, key, recipients, sequence, previous, size=50_000))
        previous = out[-1].digest
    return out


async def send_data(
    client: httpx.AsyncClient, sealed: Sealed, start: int = 0, end: int | None = None
) -> httpx.Response:
    """PUT the ciphertext from `start` to `end` (exclusive) in parts; the last response."""
    url = f"/api/v1/device/clips/{sealed.sequence}/data"
    total = len(sealed.ciphertext)
    end = total if end is None else end
    response = httpx.Response(200, json={})
    for offset in range(start, end, PART):
        part = sealed.ciphertext[offset : min(offset + PART, end)]
        response = await client.put(
            url,
            content=part,
            headers={"content-range": f"bytes {offset}-{offset + len(part) - 1}/{total}"},
        )
        if response.status_code != 200:
            return response
    return response


async def upload(client: httpx.AsyncClient, sealed: Sealed) -> httpx.Response:
    """The whole protocol; the response of `complete` (or of the first failing step)."""
    base = f"/api/v1/device/clips/{sealed.sequence}"
    offered = await client.put(base, content=sealed.manifest)
    if offered.status_code not in (200, 201):
        return offered
    if offered.json()["status"] == "verified":
        return offered
    sent = await send_data(client, sealed, offered.json()["received"])
    if sent.status_code != 200:
        return sent
    thumb = await client.put(f"{base}/thumbnail", content=sealed.thumbnail)
    if thumb.status_code != 204:
        return thumb
    return await client.post(f"{base}/complete")
