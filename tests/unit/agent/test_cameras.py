"""Several cameras in one process: a broken one restarts alone, the others keep going."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from structlog.testing import capture_logs

from doorwarden.agent.cameras import CameraRunner, CameraState, Handler
from doorwarden.agent.capture.media import Sample
from doorwarden.agent.config.models import FileSource, SourceConfig, SyntheticSource
from tests.polling import wait_for
from tests.unit.agent.capture.test_sources import make_clip


class Counter:
    def __init__(self) -> None:
        self.samples: dict[str, int] = {}
        self.lock = threading.Lock()

    def __call__(self, camera: str, sample: Sample) -> None:
        with self.lock:
            self.samples[camera] = self.samples.get(camera, 0) + 1

    def count(self, camera: str) -> int:
        with self.lock:
            return self.samples.get(camera, 0)


@pytest.fixture
def garbage(tmp_path: Path) -> FileSource:
    path = tmp_path / "broken.mp4"
    path.write_bytes(np.random.default_rng(5).bytes(32 * 1024))
    return FileSource(kind="file", path=path)


@pytest.fixture(params=["file", "synthetic"])
def healthy(request: pytest.FixtureRequest, tmp_path: Path) -> SourceConfig:
    if request.param == "file":
        return FileSource(kind="file", path=make_clip(tmp_path / "ok.mp4"), pace=True, loop=True)
    return SyntheticSource(
        kind="synthetic", width=128, height=96, fps=20, duration_s=600, scene="noise", pace=True
    )


def test_a_broken_camera_restarts_while_another_keeps_delivering(
    garbage: FileSource, healthy: SourceConfig
) -> None:
    counter = Counter()
    cameras: list[tuple[str, SourceConfig, Handler]] = [
        ("broken", garbage, counter),
        ("good", healthy, counter),
    ]
    runner = CameraRunner(cameras, restart_initial_s=0.05, restart_max_s=0.2)
    with capture_logs() as logs:
        runner.start()
        try:
            wait_for(lambda: runner.status()["broken"].failures >= 3, 5, "three failures")
            seen = counter.count("good")
            wait_for(lambda: counter.count("good") >= seen + 5, 5, "good camera samples")
        finally:
            start = time.monotonic()
            runner.stop()
            stop_took = time.monotonic() - start

    assert stop_took < 1.0
    status = runner.status()
    assert status["good"].failures == 0
    assert status["good"].samples >= 5
    assert status["broken"].last_error is not None
    assert "broken.mp4" in status["broken"].last_error
    assert status["broken"].samples == 0
    assert {s.state for s in status.values()} == {CameraState.stopped}
    failed = [e for e in logs if e["event"] == "camera.failed"]
    assert failed and {e["camera"] for e in failed} == {"broken"}
    delays = [e["restart_in"] for e in failed]
    assert delays[:3] == [0.05, 0.1, 0.2]


def test_a_failing_handler_restarts_only_its_camera(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "ok.mp4")
    cfg = FileSource(kind="file", path=clip, pace=True, loop=True)
    counter = Counter()
    calls = 0

    def flaky(camera: str, sample: Sample) -> None:
        nonlocal calls
        calls += 1
        if calls % 5 == 0:
            raise RuntimeError("handler bug")

    runner = CameraRunner([("flaky", cfg, flaky), ("steady", cfg, counter)], restart_initial_s=0.01)
    with capture_logs() as logs, runner:
        wait_for(lambda: runner.status()["flaky"].failures >= 2, 5, "handler failures")
        running = runner.status()
        assert running["steady"].state is CameraState.running
    assert running["flaky"].last_error == "RuntimeError: handler bug"
    assert runner.status()["steady"].failures == 0
    assert any(e["event"] == "camera.failed" and e["camera"] == "flaky" for e in logs)


def test_a_file_without_loop_finishes(tmp_path: Path) -> None:
    cfg = FileSource(kind="file", path=make_clip(tmp_path / "ok.mp4"), pace=False)
    counter = Counter()
    with CameraRunner([("once", cfg, counter)]) as runner:
        wait_for(lambda: runner.status()["once"].state is CameraState.finished, 5, "the end")
    assert counter.count("once") >= 20
    assert runner.status()["once"].failures == 0


def test_names_must_be_unique(tmp_path: Path) -> None:
    cfg = FileSource(kind="file", path=tmp_path / "x.mp4")
    with pytest.raises(ValueError, match="unique"):
        CameraRunner([("a", cfg, Counter()), ("a", cfg, Counter())])


def test_without_restart_a_broken_camera_fails_once_and_the_other_finishes(
    garbage: FileSource, tmp_path: Path
) -> None:
    good = FileSource(kind="file", path=make_clip(tmp_path / "ok.mp4"), pace=False)
    counter = Counter()
    runner = CameraRunner([("broken", garbage, counter), ("good", good, counter)], restart=False)
    with runner:
        wait_for(runner.done, 5, "both cameras done")
    status = runner.status()
    assert status["broken"].state is CameraState.failed
    assert status["broken"].failures == 1
    assert "broken.mp4" in (status["broken"].last_error or "")
    assert status["good"].state is CameraState.finished
    assert counter.count("good") >= 20


def test_every_open_is_paired_with_a_close_across_restarts(tmp_path: Path) -> None:
    cfg = FileSource(kind="file", path=make_clip(tmp_path / "ok.mp4"), pace=False, loop=True)
    events: list[tuple[str, str]] = []
    calls = 0

    def flaky(camera: str, sample: Sample) -> None:
        nonlocal calls
        calls += 1
        if calls % 7 == 0:
            raise RuntimeError("handler bug")

    runner = CameraRunner(
        [("cam", cfg, flaky)],
        restart_initial_s=0.01,
        on_open=lambda name, source: events.append(("open", f"{name} {source.info.width}")),
        on_close=lambda name: events.append(("close", name)),
    )
    with runner:
        wait_for(lambda: runner.status()["cam"].failures >= 3, 5, "three restarts")
    opens = [e for e in events if e[0] == "open"]
    closes = [e for e in events if e[0] == "close"]
    assert len(opens) >= 3 and len(opens) == len(closes)
    assert events[0][0] == "open" and all(a[0] != b[0] for a, b in itertools.pairwise(events))
    assert opens[0][1] == "cam 320"  # the source's info is ready when on_open runs


def test_a_failing_on_close_is_logged_and_does_not_stop_the_camera(tmp_path: Path) -> None:
    cfg = FileSource(kind="file", path=make_clip(tmp_path / "ok.mp4"), pace=False)

    def broken_close(name: str) -> None:
        raise OSError("disk full")

    runner = CameraRunner([("cam", cfg, Counter())], on_close=broken_close)
    with capture_logs() as logs, runner:
        wait_for(runner.done, 5, "the end")
    assert runner.status()["cam"].state is CameraState.finished
    assert any(e["event"] == "camera.close_failed" for e in logs)
