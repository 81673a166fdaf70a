"""What sealing an end-to-end clip costs the camera: the remux to fragmented MP4 that lets
a browser stream it (agent/recording/fragment.py) plus the seal, next to sealing the
recording as it is (standard mode) in the same run, on a real H.264 file on this disk.

The clip: libx264 at 1280x720, 30 fps, a keyframe a second, noise on a moving gradient
so that it weighs what a camera's clip weighs (a few Mbit/s). Both cases read the file
from disk and seal it with the real ClipSeal; the remux case first writes the fragmented
copy next to it, as the sealer does. Rounds alternate; the fastest of each is reported.

Run: .venv/bin/python bench/bench_seal_e2e.py [--seconds 20] [--rounds 7]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from doorwarden.agent.recording.fragment import write_fragmented
from doorwarden.crypto.keys import RecipientKey
from doorwarden.crypto.seal import ClipSeal
from doorwarden.formats.clip_files import read_blocks

FPS = 30


def record(path: Path, seconds: int) -> None:
    rng = np.random.default_rng(7)
    options = {"preset": "ultrafast", "g": str(FPS), "b": "4M"}
    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as out:
        video = out.add_stream("libx264", rate=FPS, options=options)
        video.width, video.height, video.pix_fmt = 1280, 720, "yuv420p"
        ramp = np.linspace(0, 200, 1280, dtype=np.float32)[None, :, None]
        for n in range(seconds * FPS):
            noise = rng.integers(0, 40, (720, 1280, 3), dtype=np.uint8)
            image = (np.roll(ramp, n * 4, axis=1) + noise).clip(0, 255).astype(np.uint8)
            image = np.broadcast_to(image, (720, 1280, 3)).copy()
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts, frame.time_base = n, Fraction(1, FPS)
            out.mux(video.encode(frame))
        out.mux(video.encode())


def seal(path: Path, recipient: bytes) -> None:
    sealer = ClipSeal([recipient], mode="e2e")
    for _ in sealer.encrypt(read_blocks(path)):
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    member = RecipientKey.generate().public
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:  # this disk, not a tmpfs
        clip, remux = Path(tmp) / "clip.mp4", Path(tmp) / "clip.fmp4"
        record(clip, args.seconds)
        mib = clip.stat().st_size / (1 << 20)
        plain_t, e2e_t, remux_t = [], [], []
        for _ in range(args.rounds):
            started = time.perf_counter()
            seal(clip, member)
            plain_t.append(time.perf_counter() - started)
            started = time.perf_counter()
            write_fragmented(clip, remux)
            remux_t.append(time.perf_counter() - started)
            seal(remux, member)
            e2e_t.append(time.perf_counter() - started)
            remux.unlink()
    p, e, r = min(plain_t), min(e2e_t), min(remux_t)
    print(f"{args.seconds} s clip, 1280x720 H.264, {mib:.1f} MiB; fastest of {args.rounds} rounds")
    print(f"{'case':<44} {'ms':>8} {'MiB/s':>8} {'vs seal':>8}")
    for name, t in (
        ("seal the recording as it is (baseline)", p),
        ("remux to fragmented MP4 only", r),
        ("e2e: remux, then seal the remux", e),
    ):
        print(f"{name:<44} {t * 1000:>8.1f} {mib / t:>8.0f} {t / p:>8.2f}")


if __name__ == "__main__":
    main()
