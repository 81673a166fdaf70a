"""`doorwarden verify PACKAGE.zip` on a normal disclosure package: time and temp-disk use.

Builds a package as the format says (docs/legal-process.md, "Disclosure packages"): one
camera's chain of sealed clips (random video bytes, 64 KiB chunks, standard mode, so every
clip is decrypted too), its keys, devices.json, a request, custody and a warrant PDF, every
entry STORED, package.json signed by an instance key. Then times `verify_package` with the
instance key pinned (median wall and CPU time of --runs: the wall time of a busy disk
varies a lot, the CPU time less), and reports the most bytes the verifier had in its
temporary folder at once (sampled just before each file it deletes and before the folder
is removed, which is when the folder is at its fullest).

    .venv/bin/python bench/bench_verify_package.py [--clips 40] [--clip-mib 2] [--runs 5]

Baseline: the previous code, run by this same file in the same session, e.g.
    git archive <commit> src | tar -x -C /tmp/old
    PYTHONPATH=/tmp/old/src .venv/bin/python bench/bench_verify_package.py
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import tempfile
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from doorwarden.crypto.canonical import canonical_json
from doorwarden.crypto.keys import RecipientKey, SigningKey, b64e
from doorwarden.crypto.manifest import GENESIS, sign
from doorwarden.crypto.seal import ClipFacts, ClipSeal, clip_key
from doorwarden.formats.checkpoint import log_key, sign_note
from doorwarden.formats.package_files import clip_paths, clip_stem, sig_text
from doorwarden.verify.package import PackageOptions, verify_package

ORIGIN = "bench.example.org/log"
DEVICE = str(uuid.UUID(int=1))
CHUNK = 64 * 1024


def build(path: Path, clips: int, clip_bytes: int) -> Any:
    camera, household = SigningKey.generate(), RecipientKey.generate()
    key, private = log_key(b"bench instance", ORIGIN)
    pdf = b"%PDF-1.4\n" + os.urandom(200_000) + b"\n%%EOF\n"
    files: dict[str, bytes] = {
        "README.txt": b"a disclosure package\n",
        "request.json": json.dumps({"id": "req-1", "agency": {"id": "ag-1"}}).encode(),
        "custody.json": json.dumps({"events": [], "log": {"checkpoint": None}}).encode(),
        "devices.json": json.dumps(
            [{"device": DEVICE, "public_key": b64e(camera.public)}]
        ).encode(),
        f"documents/warrant-{hashlib.sha256(pdf).hexdigest()[:12]}.pdf": pdf,
    }
    listed, keys, previous = [], {}, GENESIS
    for sequence in range(clips):
        sealer = ClipSeal([household.public], mode="standard", chunk_size=CHUNK)
        data = os.urandom(clip_bytes)
        clip = b"".join(sealer.encrypt(data[i : i + CHUNK] for i in range(0, clip_bytes, CHUNK)))
        thumb = sealer.seal_thumbnail(b"\xff\xd8 jpeg " + os.urandom(20_000))
        facts = ClipFacts(
            device=DEVICE, sequence=sequence, previous=previous,
            start_utc=f"2026-11-25T10:{sequence % 60:02d}:00.000+00:00",
            end_utc=f"2026-11-25T10:{sequence % 60:02d}:12.500+00:00", duration_ms=12_500,
            labels=("motion",), motion_score=100, codec="h264", width=1280, height=720,
        )  # fmt: skip
        signed = sign(sealer.manifest(facts), camera)
        previous = signed.manifest.digest
        manifest_name, clip_name, thumb_name = clip_paths(DEVICE, sequence)
        files |= {manifest_name: signed.to_bytes(), clip_name: clip, thumb_name: thumb}
        keys[clip_stem(DEVICE, sequence)] = b64e(clip_key(signed, camera.public, household))
        m = signed.manifest
        listed.append({
            "device": DEVICE, "sequence": sequence, "start": m.start_utc, "end": m.end_utc,
            "duration_ms": m.duration_ms, "labels": list(m.labels), "content": "available",
            "manifest": manifest_name, "clip": clip_name, "thumbnail": thumb_name,
        })  # fmt: skip
    files["keys.json"] = json.dumps(keys).encode()
    meta = {
        "format": "doorwarden-disclosure-package", "version": 1, "package": str(uuid.uuid4()),
        "kind": "content", "provisional": False, "instance": ORIGIN,
        "instance_key": key.verifier(), "request": "req-1",
        "agency": {"id": "ag-1", "name": "Police"}, "case_number": "C-1",
        "created_at": "2026-11-25T12:00:00Z", "clips": listed,
        "files": [
            {"path": n, "size": len(d), "sha256": hashlib.sha256(d).hexdigest()}
            for n, d in sorted(files.items())
        ],
    }  # fmt: skip
    body = canonical_json(meta)
    sig = sign_note(sig_text(str(meta["package"]), hashlib.sha256(body).hexdigest()), key.name,
                    private)  # fmt: skip
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name, data in [*files.items(), ("package.json", body), ("package.sig", sig)]:
            archive.writestr(name, data)
    return key


def tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


@contextmanager
def peak_of(root: Path) -> Iterator[Callable[[], int]]:
    """The most bytes under `root` at once while inside: sampled before every Path.unlink
    and every shutil.rmtree, since files there only grow until they are deleted."""
    peak = [0]
    unlink, rmtree = Path.unlink, shutil.rmtree

    def sample() -> None:
        peak[0] = max(peak[0], tree_bytes(root))

    def measured_unlink(self: Path, missing_ok: bool = False) -> None:
        sample()
        unlink(self, missing_ok=missing_ok)

    def measured_rmtree(*args: Any, **kwargs: Any) -> None:
        sample()
        rmtree(*args, **kwargs)

    Path.unlink = measured_unlink  # type: ignore[method-assign]
    shutil.rmtree = measured_rmtree  # type: ignore[assignment]
    old_tempdir = tempfile.tempdir
    tempfile.tempdir = str(root)
    try:
        yield lambda: max(peak[0], tree_bytes(root))
    finally:
        Path.unlink, shutil.rmtree = unlink, rmtree  # type: ignore[method-assign]
        tempfile.tempdir = old_tempdir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=40)
    parser.add_argument("--clip-mib", type=float, default=2.0)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-verify-") as work:
        path = Path(work) / "package.zip"
        key = build(path, args.clips, int(args.clip_mib * 1024 * 1024))
        scratch = Path(work) / "tmp"
        scratch.mkdir()
        times, cpu, peaks = [], [], []
        for _ in range(args.runs):
            with peak_of(scratch) as peak:
                start, start_cpu = time.perf_counter(), time.process_time()
                report = verify_package(path, PackageOptions(instance_key=key))
                times.append(time.perf_counter() - start)
                cpu.append(time.process_time() - start_cpu)
                peaks.append(peak())
            assert report.ok, report.to_json()
        size = path.stat().st_size
        print(
            f"verify_package: {args.clips} clips, {size / 1e6:.1f} MB zip: "
            f"median {statistics.median(times):.3f} s (min {min(times):.3f}, max "
            f"{max(times):.3f}, {args.runs} runs), CPU median {statistics.median(cpu):.3f} s; "
            f"temp folder peak {max(peaks) / 1e6:.1f} MB"
        )


if __name__ == "__main__":
    main()
