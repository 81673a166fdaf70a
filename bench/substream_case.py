"""Per-camera CPU with and without a sub-stream (issue 22, deliverable 2): a 1080p main
stream + a 640x360 sub-stream of the same synthetic scene (encode_h264, same seed and
entry time), through the agent's camera path (source -> CameraJob, as CameraRunner
drives it; the sub-stream on its own thread, as in the agent).

CPU is `time.process_time()`: the whole process, every thread (the camera's, the
sub-stream reader's and FFmpeg's decoder threads), so the sub-stream's own decoding is
counted. Rounds alternate (main-only, with-sub, then the other order) and medians are
reported with their ratio: the machine is shared, compare ratios.

    .venv/bin/python bench/substream_case.py                 # 20 s files, 5 rounds, unpaced
    .venv/bin/python bench/substream_case.py --paced 20      # + 20 s of paced wall time each
    .venv/bin/python bench/substream_case.py --detect none   # motion only

For bench_agent_pipeline.py: `make_pair(folder, seconds)` then `compare(main, sub, work,
rounds)` (unpaced, CPU s per run) and `paced(main, sub, work, window_s)` (CPU s per
camera-minute, real time).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from contextlib import closing
from pathlib import Path

from doorwarden.agent.capture.read_ahead import samples_of
from doorwarden.agent.capture.sources import open_source
from doorwarden.agent.capture.synthetic import encode_h264
from doorwarden.agent.config.models import CameraConfig, SyntheticSource
from doorwarden.agent.pipeline import CameraJob
from doorwarden.agent.recording.spool import Spool

MAIN, SUB = (1920, 1080), (640, 360)


def make_pair(folder: Path, seconds: float = 20.0, fps: float = 30.0) -> tuple[Path, Path]:
    """The same scene (a walker enters at a quarter) at 1080p and 640x360."""
    paths = []
    for (width, height), name in ((MAIN, "main"), (SUB, "sub")):
        path = folder / f"{name}-{width}x{height}-{seconds:g}s-{fps:g}.mp4"
        if not path.exists():
            cfg = SyntheticSource(
                kind="synthetic", width=width, height=height, fps=fps, duration_s=seconds,
                scene="object", enter_at_s=seconds / 4, seed=7,
            )  # fmt: skip
            encode_h264(cfg, path)
        paths.append(path)
    return paths[0], paths[1]


DETECT: dict[str, object] = {}  # the camera's `detect` (--detect); empty: the default


def camera(main: Path, sub: Path | None, *, pace: bool = False, loop: bool = False) -> CameraConfig:
    def file(path: Path) -> dict[str, object]:
        return {"kind": "file", "path": str(path), "pace": pace, "loop": loop}

    settings: dict[str, object] = {"name": "bench", "source": file(main), "detect": DETECT}
    if sub is not None:
        settings["substream"] = file(sub)
    return CameraConfig.model_validate(settings)


def one_run(cam: CameraConfig, spool_dir: Path) -> dict[str, float]:
    """One camera over the whole file, unpaced: CPU and wall seconds from the source's
    open to the last clip kept, and what was decoded."""
    job = CameraJob(cam, Spool(spool_dir))  # detector load: start-up, not timed
    decoded = 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    source = open_source(cam.source, camera=cam.name)
    try:
        job.opened(source)
        feed = job.feed
        with closing(samples_of(source)) as samples:  # as CameraRunner takes them
            for sample in samples:
                decoded += len(sample.frames)
                job.handle(sample)
    finally:
        source.close()
        job.closed()
    return {
        "cpu_s": time.process_time() - cpu0,
        "wall_s": time.perf_counter() - wall0,
        "main_frames_decoded": decoded,
        "sub_frames_decoded": feed.sub.frames_read if feed is not None else 0,
        "clips": len(job.clips),
        "clip_start": job.clips[0].start if job.clips else -1.0,
    }


def compare(main: Path, sub: Path, work: Path, rounds: int = 5) -> dict[str, float]:
    """Main-only against with-sub, alternating, medians; `cpu_ratio` = with / without."""
    without: list[dict[str, float]] = []
    withs: list[dict[str, float]] = []
    one_run(camera(main, None), work / "warm")  # page cache, codec tables
    for i in range(rounds):
        order = (None, sub) if i % 2 == 0 else (sub, None)
        for which in order:
            result = one_run(camera(main, which), work / f"r{i}-{which is not None}")
            (without if which is None else withs).append(result)

    def med(runs: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    return {
        "cpu_main_only_s": med(without, "cpu_s"),
        "cpu_with_sub_s": med(withs, "cpu_s"),
        "cpu_ratio": med(withs, "cpu_s") / med(without, "cpu_s"),
        "wall_main_only_s": med(without, "wall_s"),
        "wall_with_sub_s": med(withs, "wall_s"),
        "main_frames_decoded_main_only": med(without, "main_frames_decoded"),
        "main_frames_decoded_with_sub": med(withs, "main_frames_decoded"),
        "sub_frames_decoded": med(withs, "sub_frames_decoded"),
        "clip_start_main_only": without[0]["clip_start"],
        "clip_start_with_sub": withs[0]["clip_start"],
    }


def paced(main: Path, sub: Path | None, work: Path, window_s: float) -> float:
    """CPU seconds per camera-minute of one paced, looping camera (real time)."""
    from doorwarden.agent.cameras import CameraRunner  # noqa: PLC0415

    cam = camera(main, sub, pace=True, loop=True)
    job = CameraJob(cam, Spool(work))
    runner = CameraRunner(
        [(cam.name, cam.source, lambda _n, s: job.handle(s))],
        on_open=lambda _n, src: job.opened(src), on_close=lambda _n: job.closed(),
    )  # fmt: skip
    runner.start()
    time.sleep(2.0)  # past opening and the first keyframe
    cpu0, wall0 = time.process_time(), time.perf_counter()
    threading.Event().wait(window_s)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    runner.stop()
    return cpu / (wall / 60.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="file length")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--paced", type=float, default=0.0, help="paced window (s); 0: off")
    parser.add_argument("--data", type=Path, default=None, help="where the files are kept")
    parser.add_argument("--detect", default=None, help="detect.kind (default: the default)")
    args = parser.parse_args()
    if args.detect:
        DETECT["kind"] = args.detect
    data = args.data or Path(tempfile.gettempdir()) / "doorwarden-substream-bench"
    data.mkdir(parents=True, exist_ok=True)
    main_path, sub_path = make_pair(data, args.seconds)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        r = compare(main_path, sub_path, work, args.rounds)
        print(
            f"unpaced, {args.seconds:g} s 1080p30 main + 640x360 sub, {args.rounds} rounds "
            f"(medians): CPU main-only {r['cpu_main_only_s']:.2f} s, with sub "
            f"{r['cpu_with_sub_s']:.2f} s, ratio {r['cpu_ratio']:.2f}; wall "
            f"{r['wall_main_only_s']:.2f} / {r['wall_with_sub_s']:.2f} s; main frames "
            f"decoded {r['main_frames_decoded_main_only']:.0f} / "
            f"{r['main_frames_decoded_with_sub']:.0f}, sub {r['sub_frames_decoded']:.0f}; "
            f"clip start {r['clip_start_main_only']:.2f} / {r['clip_start_with_sub']:.2f} s"
        )
        if args.paced > 0:
            rounds: dict[bool, list[float]] = {False: [], True: []}
            for i in range(2):
                for with_sub in (False, True) if i % 2 == 0 else (True, False):
                    sub = sub_path if with_sub else None
                    rounds[with_sub].append(
                        paced(main_path, sub, work / f"p{i}{with_sub}", args.paced)
                    )
            a, b = statistics.median(rounds[False]), statistics.median(rounds[True])
            print(
                f"paced (real time), {args.paced:g} s windows x2: CPU s per camera-minute "
                f"main-only {a:.1f}, with sub {b:.1f}, ratio {b / a:.2f}"
            )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
