"""End-to-end ingest into local storage, next to a plain copy of the same bytes.

Runs the real app in-process (httpx ASGI transport) on a fresh SQLite database and a
local clip store in a temp directory on this disk, pairs a camera through the real
pairing flow, seals N clips with the real crypto, and times their upload through the
whole protocol: manifest (signature, chain), data parts of 8 MiB (Content-Range,
staging, each part verified as it arrives: ciphertext hash, every chunk decrypted and
the plaintext hash in standard mode; the last part fsyncs the staged file), thumbnail,
complete (the verifier's verdict, then the store adopts the staged file by hard link).
The baseline, in the same run and on the same disk: writing the same sealed bytes to
files with one fsync each (what storing them costs without any checking). Rounds
alternate; the fastest of each is reported. Target: ingest >= 50% of the plain copy's throughput.

    .venv/bin/python bench/bench_ingest.py [--clips 20] [--mib 2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from doorwarden.accounts import service
from doorwarden.audit.service import RequestContext
from doorwarden.config import Settings
from doorwarden.crypto.keys import SigningKey, b64d, b64e
from doorwarden.crypto.manifest import GENESIS, sign
from doorwarden.crypto.seal import ClipFacts, ClipSeal
from doorwarden.db import upgrade_database
from doorwarden.devices import service as devices
from doorwarden.households import service as households
from doorwarden.logging import configure_logging
from doorwarden.main import create_app
from doorwarden.roles import Role

CTX = RequestContext(client_address="bench")
PART = 8 * 1024 * 1024  # the server's default max_upload_part_bytes


async def _pair(app: object, client: httpx.AsyncClient) -> tuple[str, SigningKey, list[bytes]]:
    settings: Settings = app.state.settings  # type: ignore[attr-defined]
    async with app.state.sessionmaker.begin() as db:  # type: ignore[attr-defined]
        user = await service.create_user(
            db, email="bench@example.org", display_name="Bench", password="bench password x",
            role=Role.resident, password_cost=settings.password_cost,
        )  # fmt: skip
        home = await households.create_household(
            db, owner=user, name="Bench", address="", latitude=None, longitude=None,
            time_zone="UTC", ctx=CTX,
        )  # fmt: skip
        _, code = await devices.create_pairing_code(
            db,
            household_id=home.id,
            user=user,
            ctx=CTX,
            now=app.state.clock.now(),  # type: ignore[attr-defined]
        )
    key = SigningKey.generate()
    body = {"code": code, "name": "bench", "public_key": b64e(key.public)}
    paired = (await client.post("/api/v1/devices/pair", json=body)).json()
    client.headers["authorization"] = f"Bearer {paired['token']}"
    recipients = [b64d(r["public_key"], what="k", length=32) for r in paired["recipients"]]
    return paired["device_id"], key, recipients


def _seal_all(
    device: str, key: SigningKey, recipients: list[bytes], first: int, n: int, size: int,
    previous: str,
) -> tuple[list[tuple[int, bytes, bytes, bytes]], str]:  # fmt: skip
    out = []
    for sequence in range(first, first + n):
        data = os.urandom(size)
        sealer = ClipSeal(recipients, mode="standard")
        ciphertext = b"".join(
            sealer.encrypt([data[i : i + (1 << 20)] for i in range(0, size, 1 << 20)])
        )
        thumb = sealer.seal_thumbnail(os.urandom(20_000))
        facts = ClipFacts(
            device=device, sequence=sequence, previous=previous,
            start_utc="2026-11-25T10:00:00.000+00:00", end_utc="2026-11-25T10:00:30.000+00:00",
            duration_ms=30_000, labels=("motion",), motion_score=100, codec="h264",
            width=1920, height=1080,
        )  # fmt: skip
        signed = sign(sealer.manifest(facts), key)
        previous = signed.manifest.digest
        out.append((sequence, signed.to_bytes(), ciphertext, thumb))
    return out, previous


async def _upload(client: httpx.AsyncClient, clip: tuple[int, bytes, bytes, bytes]) -> None:
    sequence, manifest, ciphertext, thumb = clip
    base = f"/api/v1/device/clips/{sequence}"
    assert (await client.put(base, content=manifest)).status_code == 201
    total = len(ciphertext)
    for offset in range(0, total, PART):
        part = ciphertext[offset : offset + PART]
        headers = {"content-range": f"bytes {offset}-{offset + len(part) - 1}/{total}"}
        assert (await client.put(f"{base}/data", content=part, headers=headers)).status_code == 200
    assert (await client.put(f"{base}/thumbnail", content=thumb)).status_code == 204
    done = await client.post(f"{base}/complete")
    assert done.json()["status"] == "verified", done.text


def _plain_copy(clips: list[tuple[int, bytes, bytes, bytes]], directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for sequence, manifest, ciphertext, thumb in clips:
        for suffix, data in (("clip", ciphertext), ("thumb", thumb), ("manifest", manifest)):
            fd = os.open(directory / f"{sequence}.{suffix}", os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)


async def main(clips: int, mib: int, rounds: int) -> None:
    configure_logging(json=True, level=logging.WARNING)  # request logs would dominate
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:  # this disk, not a tmpfs
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        await upgrade_database(url)
        settings = Settings(development=True, database_url=url, data_dir=Path(tmp), log_json=True)
        app = create_app(settings)
        configure_logging(json=True, level=logging.WARNING)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                device, key, recipients = await _pair(app, client)
                previous, sequence = GENESIS, 0
                ingest_t, copy_t = [], []
                for round_ in range(rounds):
                    batch, previous = _seal_all(
                        device, key, recipients, sequence, clips, mib << 20, previous
                    )
                    sequence += clips
                    started = time.perf_counter()
                    for clip in batch:
                        await _upload(client, clip)
                    ingest_t.append(time.perf_counter() - started)
                    started = time.perf_counter()
                    _plain_copy(batch, Path(tmp) / f"copy-{round_}-{uuid.uuid4().hex}")
                    copy_t.append(time.perf_counter() - started)
    total_mib = clips * mib
    i, c = min(ingest_t), min(copy_t)
    print(f"{clips} clips of {mib} MiB per round, {rounds} rounds, fastest round of each")
    print(f"{'case':<44} {'clips/s':>8} {'MiB/s':>8} {'vs copy':>8}")
    for name, t in (
        ("plain copy of the sealed bytes (baseline)", c),
        ("ingest: protocol + verification + store", i),
    ):
        print(f"{name:<44} {clips / t:>8.1f} {total_mib / t:>8.0f} {c / t:>8.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=20)
    parser.add_argument("--mib", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.clips, args.mib, args.rounds))
