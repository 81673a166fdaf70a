"""Motion detection cost next to plain decode, on the same streams in the same run.

Streams: ../shared/data/vtest.avi (768x576, 10 fps, MS-MPEG4) and synthetic H.264 at
1280x720 and 1920x1080 (25 fps, 10 s, the "object" scene, made with encode_h264 into a
temp dir). For each stream, rounds alternate between plain decode and decode + motion
(should_analyse on every frame; luma() and update() on the analysed ones at
analysis_fps=5); both use threaded decoding (thread_type AUTO). The median of the rounds
is reported, and the motion cost as a percentage of the decode cost:
(t_motion - t_decode) / t_decode. Target: <= 15% at 1080p.

Run: .venv/bin/python bench/bench_motion_speed.py [--rounds N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import av

from doorwarden.agent.analysis.motion import MotionDetector, luma
from doorwarden.agent.capture.synthetic import encode_h264
from doorwarden.agent.config.models import MotionConfig, SyntheticSource
from doorwarden.agent.pipeline import one_opencv_thread

VTEST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "vtest.avi"


def run(path: Path, *, motion: bool) -> tuple[float, int]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        det = MotionDetector(MotionConfig(analysis_fps=5), stream.width, stream.height)
        frames = 0
        start = time.perf_counter()
        for frame in container.decode(stream):
            frames += 1
            if motion:
                t = float(frame.time or 0.0)
                if det.should_analyse(t):
                    det.update(luma(frame), t)
        return time.perf_counter() - start, frames


def bench(label: str, path: Path, rounds: int) -> None:
    run(path, motion=True)  # warm caches and the codec
    plain, with_motion = [], []
    frames = 0
    for _ in range(rounds):
        t, frames = run(path, motion=False)
        plain.append(t)
        t, _ = run(path, motion=True)
        with_motion.append(t)
    p, m = statistics.median(plain), statistics.median(with_motion)
    print(
        f"{label:<26} {frames:>6} {frames / p:>11.1f} {frames / m:>13.1f} "
        f"{100 * (m - p) / p:>+9.1f}%"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    one_opencv_thread()  # as the agent runs motion (pipeline.py)
    print(f"{'stream':<26} {'frames':>6} {'decode fps':>11} {'+motion fps':>13} {'cost':>10}")
    if VTEST.exists():
        bench("vtest.avi 768x576 mpeg4", VTEST, args.rounds)
    else:
        print(f"(skipped vtest.avi: {VTEST} is missing)")
    with tempfile.TemporaryDirectory() as tmp:
        for w, h in ((1280, 720), (1920, 1080)):
            cfg = SyntheticSource(
                kind="synthetic", width=w, height=h, fps=25, duration_s=10, scene="object"
            )
            path = Path(tmp) / f"synthetic-{h}p.mp4"
            encode_h264(cfg, path)
            bench(f"synthetic {w}x{h} h264", path, args.rounds)


if __name__ == "__main__":
    main()
