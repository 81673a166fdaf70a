"""What every video source is: a stoppable iterator of `Sample`s on one clock, with the
camera's `info`. The sources themselves are in sources.py (file, RTSP, V4L2) and
synthetic.py; both import this, so neither imports the other."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from fractions import Fraction

import av

from doorwarden.agent.capture.clock import Clock, Pacer
from doorwarden.agent.capture.media import Sample, StreamInfo


def frame_time(clock: Clock, frame: av.VideoFrame, time_base: Fraction | None, t: float) -> float:
    """A decoded frame's own time on `clock` (its packet's time `t` when it has none)."""
    at = clock.other(frame.pts, frame.time_base or time_base)
    return t if at is None else at


class VideoSource:
    """A source of `Sample`s. `info` is valid once open (and refreshed after a reconnect)."""

    info: StreamInfo

    def __init__(
        self, *, camera: str | None = None, pace: bool = False, audio: bool = False
    ) -> None:
        self.camera = camera
        # The camera's `audio` setting: off, audio streams are not even demuxed.
        self.audio = audio
        self._audio_warned = False  # "no audio" is said once, not at every reconnect
        self._stop = threading.Event()
        self._pacer = Pacer(self._stop) if pace else None
        self._clock = Clock(0.0)
        # Whether the camera's thread may take samples decoded ahead on a thread of their
        # own (read_ahead.py: an unpaced file that does not loop). A consumer that switches
        # the decoder as it goes (a sub-stream's main stream) turns it off before reading.
        self.reads_ahead = False

    def samples(self) -> Iterator[Sample]:
        raise NotImplementedError

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self._stop.set()

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _paced(self, t: float) -> bool:
        return self._pacer.wait(t) if self._pacer is not None else not self._stop.is_set()
