"""The whole camera-agent path against plain decode of the same file, per stage.

What it measures (issue 22):

* **ratio**: one camera's agent path (source demux+decode -> CameraJob: motion, person
  detection, recorder with pre-roll, clip writing, thumbnail, spool commit) against a plain
  PyAV decode (thread_type AUTO) of the same file, in the same run, alternating rounds,
  medians. Start-up (imports, detector load) is outside both timings: the agent's clock
  starts when its source is opened, as plain decode's starts at `av.open`.
  Both wall time and this process's CPU time (`time.process_time`, every thread) are
  reported: on a shared machine the CPU ratio is the steadier of the two.
* **stages**: where the agent's time goes, from timers wrapped around the stage entry
  points in this process only (the camera normally runs on a thread, so a cProfile of the
  CLI sees lock waits). "source" is demux + decode + Sample building; "detect.prep" is
  the pipeline's RGB conversion and masking before the detector; "recorder" excludes the
  writer, thumbnail and commit it calls.
* **substream**: one camera with a 1080p main + 640x360 sub-stream of the same scene
  against the same camera without it (bench/substream_case.py's `compare`: CPU, wall, and
  how many frames of each stream were decoded), and against plain decode of the main.
* **paced CPU**: CPU seconds per camera-minute for 1, 4 and 8 paced file cameras in one
  process (`pace: true`, looping), over a fixed wall window, from `time.process_time`,
  per minute of video the cameras got through (with the fraction of real time they kept
  up with: below 100% the machine is overloaded and the figure is a lower bound of the
  load), and the same with a 640x360 sub-stream per camera. `--threads auto,1` compares
  one decoder thread.

    .venv/bin/python bench/bench_agent_pipeline.py            # 720p + 1080p, 20 s files
    .venv/bin/python bench/bench_agent_pipeline.py --quick    # shorter files and window
    .venv/bin/python bench/bench_agent_pipeline.py --only ratio --sizes 1080

The machine is shared: compare ratios, not seconds.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import substream_case  # bench/, beside this file

from doorwarden.agent.analysis.motion import MotionDetector
from doorwarden.agent.capture.read_ahead import samples_of
from doorwarden.agent.capture.sources import open_source
from doorwarden.agent.capture.synthetic import encode_h264
from doorwarden.agent.config.models import CameraConfig, FileSource, SyntheticSource
from doorwarden.agent.pipeline import CameraJob, CameraPipeline
from doorwarden.agent.recording import clip_writer, recorder, spool

SIZES = {"720": (1280, 720), "1080": (1920, 1080), "360": (640, 360)}


def make_file(directory: Path, size: str, duration_s: float) -> Path:
    """The issue's synthetic clip: an object enters at 5 s (so a clip is recorded)."""
    width, height = SIZES[size]
    path = directory / f"s{size}-{duration_s:g}s.mp4"
    if not path.exists():
        encode_h264(
            SyntheticSource(
                kind="synthetic", width=width, height=height, fps=30,
                duration_s=duration_s, scene="object", enter_at_s=min(5.0, duration_s / 4),
            ),
            path,
        )  # fmt: skip
    return path


@dataclass(frozen=True)
class Run:
    wall: float  # seconds
    cpu: float  # CPU seconds of this process (all threads: the decoder's too)
    clips: int = 0


def plain_decode(path: Path) -> Run:
    start, cpu = time.perf_counter(), time.process_time()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for _ in container.decode(stream):
            pass
    return Run(time.perf_counter() - start, time.process_time() - cpu)


DETECT: dict[str, str] = {}  # --detect: the camera's detector kind (empty: the default)


def camera(path: Path, name: str = "bench", pace: bool = False, loop: bool = False) -> CameraConfig:
    return CameraConfig.model_validate(
        {
            "name": name,
            "source": {"kind": "file", "path": str(path), "pace": pace, "loop": loop},
            "detect": dict(DETECT),
        }
    )


def agent_path(
    cam: CameraConfig, spool_dir: Path, timers: Timers | None = None, *, ahead: bool = True
) -> Run:
    """One camera's whole path on this thread, as CameraRunner drives it. `ahead`: as
    shipped, the file decoded ahead on a thread of its own (capture/read_ahead.py);
    False: decode and pipeline take turns on this thread (the stage profile needs that)."""
    job = CameraJob(cam, spool.Spool(spool_dir))  # detector load: start-up, not timed
    if timers is not None and job.detector is not None:
        # Whatever the detector's class: the pipeline calls this instance's method.
        job.detector.detect = timers.wrap("detect.model", job.detector.detect)  # type: ignore[method-assign]
    start, cpu = time.perf_counter(), time.process_time()
    source = open_source(cam.source, camera=cam.name)
    source.reads_ahead = source.reads_ahead and ahead
    try:
        job.opened(source)
        with closing(samples_of(source)) as samples:
            for sample in samples:
                job.handle(sample)
    finally:
        source.close()
        job.closed()
    return Run(time.perf_counter() - start, time.process_time() - cpu, len(job.clips))


# -- per-stage timers --------------------------------------------------------------------


class Timers:
    def __init__(self) -> None:
        self.total: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._local = threading.local()

    def wrap(self, name: str, fn: Callable[..., Any], *, exclusive: bool = True) -> Any:
        """`fn` timed under `name`; time spent in nested timed calls is not counted twice."""

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            stack = getattr(self._local, "stack", None)
            if stack is None:
                stack = self._local.stack = []
            stack.append(0.0)
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent = time.perf_counter() - start
                inner = stack.pop()
                self.total[name] += spent - inner if exclusive else spent
                self.calls[name] += 1
                if stack:
                    stack[-1] += spent

        return timed


@contextmanager
def instrumented() -> Iterator[Timers]:
    """Timers around each stage's entry point, removed afterwards."""
    timers = Timers()
    patches: list[tuple[Any, str, Any]] = []

    def patch(owner: Any, attr: str, name: str) -> None:
        original = getattr(owner, attr)
        patches.append((owner, attr, original))
        setattr(owner, attr, timers.wrap(name, original))

    import doorwarden.agent.pipeline as pipeline_mod  # noqa: PLC0415

    patch(CameraJob, "handle", "pipeline.other")
    patch(CameraPipeline, "push", "detect.prep")  # what push does besides the timed parts
    patch(pipeline_mod, "luma", "motion")
    patch(MotionDetector, "update", "motion")
    patch(recorder.EventRecorder, "push", "recorder")
    patch(clip_writer.StreamCopyWriter, "write", "clip.write")
    patch(clip_writer.ReencodeWriter, "write", "clip.write")
    patch(clip_writer.ClipWriter, "close", "clip.close")
    patch(clip_writer.ReencodeWriter, "close", "clip.close")
    patch(recorder.EventRecorder, "_thumbnail", "thumbnail")
    patch(recorder, "_sha256", "commit")
    patch(spool.Spool, "commit", "commit")
    try:
        yield timers
    finally:
        for owner, attr, original in reversed(patches):
            setattr(owner, attr, original)


def stage_profile(path: Path, work: Path) -> dict[str, float]:
    cam = camera(path)
    with instrumented() as timers:
        total = agent_path(cam, work / "stages", timers, ahead=False).wall
    stages = dict(timers.total)
    stages.update({f"{k}#calls": float(v) for k, v in timers.calls.items()})
    stages["source"] = total - sum(v for k, v in stages.items() if "#" not in k)
    stages["total"] = total
    return stages


def ratio(path: Path, work: Path, rounds: int) -> dict[str, float]:
    cam = camera(path)
    runs: dict[str, list[Run]] = {"plain": [], "agent": [], "serial": []}
    plain_decode(path)  # warm the page cache and the codec
    for i in range(rounds):
        order = ["plain", "agent", "serial"]
        for which in order[i % 3 :] + order[: i % 3]:  # each goes first in turn
            if which == "plain":
                runs[which].append(plain_decode(path))
            else:
                runs[which].append(agent_path(cam, work / f"r{i}{which}", ahead=which == "agent"))
    wall = {k: statistics.median(r.wall for r in v) for k, v in runs.items()}
    cpu = {k: statistics.median(r.cpu for r in v) for k, v in runs.items()}
    return {
        "plain_s": wall["plain"], "agent_s": wall["agent"], "serial_s": wall["serial"],
        "ratio": wall["agent"] / wall["plain"], "serial_ratio": wall["serial"] / wall["plain"],
        "plain_cpu": cpu["plain"], "agent_cpu": cpu["agent"],
        "cpu_ratio": cpu["agent"] / cpu["plain"], "serial_cpu_ratio": cpu["serial"] / cpu["plain"],
        "clips": runs["agent"][-1].clips,
    }  # fmt: skip


def _single_thread(source: Any) -> None:
    """Decode on the camera's thread alone (no FFmpeg frame/slice threads)."""
    stream = source.info.stream
    if stream is not None:
        stream.thread_type = "NONE"
        stream.codec_context.thread_count = 1


def _open(jobs: dict[str, CameraJob], threads: str, name: str, source: Any) -> None:
    if threads == "1":
        _single_thread(source)
    jobs[name].opened(source)


def paced_cpu(
    path: Path,
    work: Path,
    cameras: int,
    window_s: float,
    *,
    threads: str = "auto",
    sub: Path | None = None,
) -> tuple[float, float]:
    """CPU seconds per camera-minute of `cameras` paced, looping file cameras.
    `threads`: "auto" (the sources' FFmpeg threads, as shipped) or "1" (one each).
    `sub`: each camera's sub-stream file (paced and looped too). Returns (CPU s per
    camera-minute of video, fraction of real time the cameras kept up with)."""
    from doorwarden.agent.cameras import CameraRunner  # noqa: PLC0415

    jobs = {}
    entries = []
    for i in range(cameras):
        cam = camera(path, f"cam{i}", pace=True, loop=True)
        if sub is not None:
            substream = FileSource(kind="file", path=sub, pace=True, loop=True)
            cam = cam.model_copy(update={"substream": substream})
        job = CameraJob(cam, spool.Spool(work / f"paced{cameras}-{i}"))
        jobs[cam.name] = job
        entries.append((cam.name, cam.source, lambda _n, s, j=job: j.handle(s)))
    runner = CameraRunner(
        entries,
        on_open=functools.partial(_open, jobs, threads),
        on_close=lambda n: jobs[n].closed(),
    )
    runner.start()
    time.sleep(min(3.0, window_s / 4))  # past opening and the first keyframe
    with av.open(str(path)) as container:
        rate = container.streams.video[0].average_rate
    fps = float(rate) if rate else 30.0

    def packets() -> int:
        return sum(st.samples for st in runner.status().values())

    cpu0, wall0, n0 = time.process_time(), time.perf_counter(), packets()
    time.sleep(window_s)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    media = (packets() - n0) / fps  # seconds of video the cameras got through
    runner.stop()
    # Per minute of video handled, not of wall time: a camera that falls behind real
    # time (an overloaded machine) would otherwise look cheaper.
    return cpu / (media / 60.0), media / (wall * cameras)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 s files, 3 rounds, 10 s window")
    parser.add_argument("--sizes", default="720,1080")
    parser.add_argument("--only", choices=["stages", "ratio", "substream", "paced"])
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--window", type=float, help="paced CPU window (s)")
    parser.add_argument("--cameras", default="1,4,8")
    parser.add_argument(
        "--threads", default="auto", help="paced: decoder threads, auto and/or 1 (e.g. auto,1)"
    )
    parser.add_argument("--dir", type=Path, help="where the synthetic files are kept")
    parser.add_argument(
        "--detect", help="the cameras' detector kind (hog, none, ...); default: DetectConfig's"
    )
    args = parser.parse_args()
    if args.detect:
        DETECT["kind"] = args.detect
    duration = 8.0 if args.quick else 20.0
    rounds = args.rounds or (3 if args.quick else 5)
    window = args.window or (10.0 if args.quick else 25.0)
    data = args.dir or Path(tempfile.gettempdir()) / "doorwarden-bench-agent"
    data.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for size in args.sizes.split(","):
            if args.only not in (None, "stages", "ratio"):
                break
            path = make_file(data, size, duration)
            print(f"== {size}p  {path.name}")
            if args.only in (None, "stages"):
                stages = stage_profile(path, work / f"st{size}")
                total = stages.pop("total")
                timed = {k: v for k, v in stages.items() if "#" not in k}
                for name, seconds in sorted(timed.items(), key=lambda kv: -kv[1]):
                    calls = stages.get(f"{name}#calls")
                    each = f"  {calls:5.0f} calls" if calls else ""
                    print(f"  stage {name:15s} {seconds:7.3f} s  {seconds / total:6.1%}{each}")
                print(f"  stage {'total':15s} {total:7.3f} s")
            if args.only in (None, "ratio"):
                r = ratio(path, work / f"ra{size}", rounds)
                print(
                    f"  plain {r['plain_s']:.3f} s  agent {r['agent_s']:.3f} s  "
                    f"ratio {r['ratio']:.2f}  (median of {rounds}, clips {r['clips']:.0f});  "
                    f"CPU plain {r['plain_cpu']:.3f} s  agent {r['agent_cpu']:.3f} s  "
                    f"ratio {r['cpu_ratio']:.2f};  without reading ahead: wall "
                    f"{r['serial_s']:.3f} s ratio {r['serial_ratio']:.2f}, CPU ratio "
                    f"{r['serial_cpu_ratio']:.2f}"
                )
        if args.only in (None, "substream"):
            main_path, sub_path = substream_case.make_pair(data, duration)
            substream_case.DETECT.update(DETECT)
            plain = statistics.median(plain_decode(main_path).cpu for _ in range(rounds))
            s = substream_case.compare(main_path, sub_path, work / "sub", rounds)
            without, withs = s["cpu_main_only_s"], s["cpu_with_sub_s"]
            print(
                f"== substream 1080p+360p, CPU (median of {rounds}): plain decode of the "
                f"main {plain:.3f} s; agent without sub {without:.3f} s (x{without / plain:.2f}),"
                f" with sub {withs:.3f} s (x{withs / plain:.2f}; {s['cpu_ratio']:.2f} of "
                f"without); main frames decoded {s['main_frames_decoded_main_only']:.0f} / "
                f"{s['main_frames_decoded_with_sub']:.0f}, sub {s['sub_frames_decoded']:.0f}"
            )
        if args.only in (None, "paced"):
            for size in args.sizes.split(","):
                path = make_file(data, size, duration)
                for n in (int(c) for c in args.cameras.split(",")):
                    for threads in args.threads.split(","):
                        cpu, kept = paced_cpu(path, work / f"pc{size}", n, window, threads=threads)
                        print(
                            f"== paced {size}p x{n} threads={threads}: {cpu:.2f} CPU s per "
                            f"camera-minute ({cpu / 60:.1%} of one core per camera; "
                            f"real time kept: {kept:.0%}; {window:g} s window)"
                        )
            main_path, sub_path = substream_case.make_pair(data, duration)
            for n in (int(c) for c in args.cameras.split(",")):
                cpu, kept = paced_cpu(main_path, work / "pcsub", n, window, sub=sub_path)
                print(
                    f"== paced 1080p+360p sub x{n}: {cpu:.2f} CPU s per camera-minute "
                    f"({cpu / 60:.1%} of one core per camera; real time kept: "
                    f"{kept:.0%}; {window:g} s window)"
                )


if __name__ == "__main__":
    main()
