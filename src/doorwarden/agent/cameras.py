"""Running several cameras in one agent process: one thread per camera.

Why threads and not a process per camera: the work per packet is demuxing and decoding
inside FFmpeg, and PyAV releases the GIL for both, so threads decode in parallel; one
process keeps one copy of the interpreter, numpy/OpenCV and the detector model instead of
N, and stop/restart/status are plain method calls. Measured on the 2-core development
machine (PyAV 18, FFmpeg 8; every frame decoded, no pacing, `python -m
doorwarden.agent.cameras FILE N`; ranges over repeated runs on a shared machine):

    source                         1 camera        4 cameras, a thread each (total)
    vtest.avi 768x576 msmpeg4 795 1260-2150 fps   2240-3260 fps
    H.264 1280x720, 250 frames     317-352 fps     472-625 fps
    (4 processes, 1 camera each, 720p: 4.4-5.0 s wall for the 1000 frames including
    interpreter start, against 1.6-2.1 s for 4 threads)

Four threads get about 1.5x one camera's throughput on 2 cores (one H.264 camera's
frame threads already use both), so the GIL is not the bottleneck; a doorbell camera at
10-15 fps needs a few percent of it. A process per camera would only pay off if
per-frame Python work came to dominate, which motion analysis at a reduced rate on a
small grey copy does not.

One camera failing (its source or its handler raising) is logged with its name and that
camera alone is restarted with exponential backoff; the others never notice. With
`restart=False` (processing files once) a failure ends that camera in state `failed`.

`on_open(name, source)` runs each time a camera's source has been opened (its `info` is
ready) and `on_close(name)` each time it is given up, so a consumer can build per-stream
state (a recorder bound to this stream) and flush it (the clip in progress) when the
stream ends, fails or the agent stops.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, replace
from enum import StrEnum

import structlog

from doorwarden.agent.capture.media import Sample, SourceError
from doorwarden.agent.capture.read_ahead import samples_of
from doorwarden.agent.capture.rtsp import Backoff
from doorwarden.agent.capture.source import VideoSource
from doorwarden.agent.capture.sources import open_source
from doorwarden.agent.config.models import DecodeConfig, FileSource, SourceConfig

log = structlog.get_logger("doorwarden.agent.cameras")

Handler = Callable[[str, Sample], None]
OnOpen = Callable[[str, VideoSource], None]
OnClose = Callable[[str], None]


class CameraState(StrEnum):
    starting = "starting"
    running = "running"
    restarting = "restarting"  # failed; waiting for the backoff delay
    finished = "finished"  # the source ended by itself (a file without loop)
    failed = "failed"  # failed with restart=False
    stopped = "stopped"


DONE = frozenset({CameraState.finished, CameraState.failed, CameraState.stopped})


@dataclass(frozen=True)
class CameraStatus:
    name: str
    state: CameraState
    failures: int = 0
    last_error: str | None = None
    samples: int = 0


class _Camera:
    def __init__(self, name: str, cfg: SourceConfig, handler: Handler) -> None:
        self.name, self.cfg, self.handler = name, cfg, handler
        self.status = CameraStatus(name, CameraState.starting)
        self.source: VideoSource | None = None
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()

    def update(self, **changes: object) -> None:
        with self.lock:
            self.status = replace(self.status, **changes)  # type: ignore[arg-type]


class CameraRunner:
    """Runs each (name, source config, handler) on its own thread until `stop()`.

    `audio`: the cameras whose sound is captured; `decode`: each camera's `decode`
    setting for its source (hardware decode, capture/hwaccel.py; absent: software).
    """

    def __init__(
        self,
        cameras: Sequence[tuple[str, SourceConfig, Handler]],
        *,
        restart_initial_s: float = 1.0,
        restart_max_s: float = 60.0,
        restart: bool = True,
        on_open: OnOpen | None = None,
        on_close: OnClose | None = None,
        audio: frozenset[str] = frozenset(),
        decode: Mapping[str, DecodeConfig] | None = None,
    ) -> None:
        names = [name for name, _, _ in cameras]
        if len(names) != len(set(names)):
            raise ValueError("camera names must be unique")
        self._cameras = [_Camera(*camera) for camera in cameras]
        self._restart = (restart_initial_s, restart_max_s)
        self._restart_enabled = restart
        self._on_open, self._on_close = on_open, on_close
        self._audio = audio  # the cameras whose `audio` is on
        self._decode = dict(decode or {})  # each camera's `decode` (absent: software)
        self._stop = threading.Event()

    def start(self) -> None:
        for camera in self._cameras:
            camera.thread = threading.Thread(
                target=self._run, args=(camera,), name=f"camera-{camera.name}", daemon=True
            )
            camera.thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop every camera and wait for its thread (each at most `timeout_s`)."""
        self._stop.set()
        for camera in self._cameras:
            with camera.lock:
                source = camera.source
            if source is not None:
                source.stop()
        deadline = time.monotonic() + timeout_s
        for camera in self._cameras:
            if camera.thread is not None:
                camera.thread.join(max(0.0, deadline - time.monotonic()))
                if camera.thread.is_alive():
                    log.error("camera.stop_timeout", camera=camera.name)

    def status(self) -> dict[str, CameraStatus]:
        return {c.name: c.status for c in self._cameras}

    def done(self) -> bool:
        """Whether every camera has finished, failed or stopped."""
        return all(c.status.state in DONE for c in self._cameras)

    def __enter__(self) -> CameraRunner:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _run(self, camera: _Camera) -> None:
        backoff = Backoff(*self._restart)
        while not self._stop.is_set():
            try:
                if self._deliver(camera, backoff):
                    camera.update(state=CameraState.finished)
                    log.info("camera.finished", camera=camera.name)
                    return
            except Exception as exc:  # any failure restarts this camera only
                error = str(exc) if isinstance(exc, SourceError) else f"{type(exc).__name__}: {exc}"
                if not self._restart_enabled:
                    camera.update(
                        state=CameraState.failed, failures=camera.status.failures + 1,
                        last_error=error,
                    )  # fmt: skip
                    log.error(
                        "camera.failed", camera=camera.name, error=error,
                        exc_info=not isinstance(exc, SourceError),
                    )  # fmt: skip
                    return
                delay = backoff.next_delay()
                camera.update(
                    state=CameraState.restarting,
                    failures=camera.status.failures + 1,
                    last_error=error,
                )
                log.warning(
                    "camera.failed",
                    camera=camera.name,
                    error=error,
                    failures=camera.status.failures,
                    restart_in=delay,
                    # A handler bug deserves its traceback; a source error is self-explanatory.
                    exc_info=not isinstance(exc, SourceError),
                )
                self._stop.wait(delay)
        camera.update(state=CameraState.stopped)

    def _deliver(self, camera: _Camera, backoff: Backoff) -> bool:
        """Open and pump one source; True when it ended by itself."""
        source = open_source(
            camera.cfg,
            camera=camera.name,
            audio=camera.name in self._audio,
            decode=self._decode.get(camera.name),
        )
        opened = False  # on_close pairs with on_open: never one without the other
        try:
            with camera.lock:
                camera.source = source
            if self._stop.is_set():  # stop() ran before the source was visible to it
                return False
            opened = True
            if self._on_open is not None:
                self._on_open(camera.name, source)
            camera.update(state=CameraState.running)
            with closing(samples_of(source)) as samples:  # closed before the source is
                for sample in samples:
                    camera.handler(camera.name, sample)
                    camera.update(samples=camera.status.samples + 1)
                    backoff.reset()
            return not self._stop.is_set()
        finally:
            with camera.lock:
                camera.source = None
            source.close()
            if opened:
                self._closed(camera)

    def _closed(self, camera: _Camera) -> None:
        if self._on_close is None:
            return
        try:
            self._on_close(camera.name)
        except Exception:  # never mask the failure that closed the source
            log.exception("camera.close_failed", camera=camera.name)


def _measure(path: str, count: int) -> None:
    """Decode fps of `count` concurrent cameras playing `path` unpaced."""
    cfg = FileSource(kind="file", path=path, pace=False)
    frames = [0] * count

    def counter(i: int) -> Handler:
        def handle(_: str, sample: Sample) -> None:
            frames[i] += len(sample.frames)

        return handle

    runner = CameraRunner([(f"cam{i}", cfg, counter(i)) for i in range(count)])
    start = time.perf_counter()
    runner.start()
    while any(s.state is CameraState.running for s in runner.status().values()) or not any(frames):
        time.sleep(0.01)
    elapsed = time.perf_counter() - start
    runner.stop()
    total = sum(frames)
    print(f"{count} camera(s): {total} frames in {elapsed:.2f} s = {total / elapsed:.0f} fps")  # noqa: T201


if __name__ == "__main__":
    _measure(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1)
