"""Decoding ahead of the camera's thread (capture/read_ahead.py), on real H.264 files:
the same samples in the same order, errors where they happened, nothing left running."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from doorwarden.agent.capture.media import Sample, SourceError
from doorwarden.agent.capture.read_ahead import read_ahead, samples_of
from doorwarden.agent.capture.sources import FileVideoSource, open_source
from doorwarden.agent.config.models import CameraConfig
from doorwarden.agent.pipeline import CameraJob
from doorwarden.agent.recording.spool import Spool
from tests.unit.agent.capture.test_sources import clip, file_cfg, make_clip

__all__ = ["clip"]  # a fixture, used by name


def fingerprint(samples: Iterator[Sample]) -> list[tuple[object, ...]]:
    """What the pipeline sees of each sample, pixels included."""
    return [
        (
            s.packet.pts if s.packet is not None else None, s.time, s.keyframe,
            tuple((f.pts, bytes(f.planes[0])[:4096]) for f in s.frames),
        )
        for s in samples
    ]  # fmt: skip


def reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("read-ahead-")]


def test_only_an_unpaced_file_that_does_not_loop_reads_ahead(clip: Path) -> None:
    assert open_source(file_cfg(clip)).reads_ahead
    assert not open_source(file_cfg(clip, pace=True)).reads_ahead
    assert not open_source(file_cfg(clip, loop=True)).reads_ahead


def test_the_samples_read_ahead_are_the_samples_read_in_turn(clip: Path) -> None:
    in_turn = fingerprint(open_source(file_cfg(clip)).samples())
    with closing(read_ahead(open_source(file_cfg(clip)), depth=3)) as ahead:
        assert fingerprint(ahead) == in_turn
    assert len(in_turn) >= 20 and sum(len(s[3]) for s in in_turn) == 20  # every frame
    assert not reader_threads()


def test_a_camera_thread_that_stops_early_stops_and_joins_the_reader(clip: Path) -> None:
    source = open_source(file_cfg(clip))
    with closing(samples_of(source)) as samples:
        first = next(samples)
        assert first.keyframe and reader_threads()
        time.sleep(0.2)  # the reader fills the queue and waits on it
    assert not reader_threads()  # joined before the source may be closed
    source.close()


class FailingSource(FileVideoSource):
    """A real file source whose read fails after a few samples, as a network read does."""

    def samples(self) -> Iterator[Sample]:
        for i, sample in enumerate(super().samples()):
            if i == 5:
                raise SourceError("the stream broke")
            yield sample


def test_an_error_comes_after_the_samples_before_it(clip: Path) -> None:
    source = FailingSource(file_cfg(clip))
    got: list[Sample] = []
    with pytest.raises(SourceError, match="the stream broke"), closing(read_ahead(source)) as it:
        got.extend(it)
    assert len(got) == 5
    assert not reader_threads()


def test_a_camera_with_a_sub_stream_takes_its_samples_in_turn(tmp_path: Path) -> None:
    main, sub = make_clip(tmp_path / "main.mp4"), make_clip(tmp_path / "sub.mp4", seconds=2)
    camera = CameraConfig.model_validate(
        {
            "name": "cam",
            "source": {"kind": "file", "path": str(main)},
            "substream": {"kind": "file", "path": str(sub)},
            "detect": {"kind": "none"},
        }
    )
    job = CameraJob(camera, Spool(tmp_path / "spool"))
    source = open_source(camera.source, camera="cam")
    try:
        job.opened(source)  # the sub-stream switches the main decoder: no reading ahead
        assert not source.reads_ahead
    finally:
        source.close()
        job.closed()
