"""Sub-streams: detect on the camera's low-resolution stream, record the main one
(`CameraConfig.substream`, docs/substreams.md).

Why: decoding is most of a camera's CPU, and it grows with the pixels. Motion analysis
runs on a small grey copy anyway and a 640x360 sub-stream is enough for it (and for
the person detector, which shrinks its input too), while clips are the main stream's
packets stream-copied, which needs no decoding. So with a sub-stream the main stream is
not decoded at all (its decoder is told to skip every frame, `skip_frame`), unless its
frames are needed: privacy zones make the recorder re-encode masked frames, and while
the sub-stream is down detection falls back to the main stream's frames.

How the two meet: the camera's thread (CameraRunner's) pumps the main stream as before;
`SubStream` reads the sub-stream on a thread of its own and queues its decoded frames;
for each main sample the pipeline takes the sub frames due by that sample's time
(`SubstreamFeed.analysis`). Motion found in a sub frame at time t therefore reaches the
recorder with the first main sample at or after t, and the clip starts with its pre-roll
before that (keyframe-aligned, as always for a copy).

One clock for both:
* files and synthetic scenes (`wait`): media time. Both sources start their clocks at 0
  at their first packet, and the two files are the same scene; the camera's thread
  waits for the sub-stream to reach each main sample's time, so the pairing is exact
  however fast either decodes (a file run is not real time);
* live cameras (RTSP, V4L2): arrival time. Each stream's clock also starts at 0 at its
  own first packet and restarts its count after a reconnect, so the offset between them
  is measured: for each stream, the smallest (arrival on this machine's monotonic clock
  minus media time) over its recent packets, the least-delayed packet, estimates when its
  time 0 was; a sub frame at sub time s is at main time s + anchor_sub - anchor_main.
  It is off by the difference of the two streams' network and decode delays (tens of
  milliseconds), which the recorder's pre-roll covers. The camera's thread never waits
  for a live sub-stream.

When the sub-stream is down (never opened, ended, failed, or a live one silent for
`STALE_S`), detection falls back to the main stream: its decoder is turned back on (at
the next keyframe, the first frame it can decode whole) and one `substream.fallback`
line says why; when the sub-stream delivers again, `substream.restored`, and the main
stream's decoder is off again. The clip in progress is never touched: the recorder only
ever sees the main stream.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import av
import structlog

from doorwarden.agent.capture.media import Sample, SourceError, StreamInfo
from doorwarden.agent.capture.rtsp import Backoff
from doorwarden.agent.capture.source import VideoSource
from doorwarden.agent.capture.sources import open_source
from doorwarden.agent.config.models import DecodeConfig, SourceConfig
from doorwarden.agent.config.substream import RECORDED

log = structlog.get_logger("doorwarden.agent.substream")

STALE_S = 2.0  # a live sub-stream without a frame for this long is down
WAIT_MAX_S = 10.0  # a file sub-stream that makes the camera wait longer is given up
JUMP_S = 1.0  # an arrival this much later than expected: the stream restarted its clock
ANCHOR_WINDOW = 64  # packets over which the least-delayed arrival is taken
QUEUE_WAIT = 16  # sub frames queued ahead of the main stream (file: the reader waits)
QUEUE_LIVE = 64  # live: the oldest are dropped beyond this (the camera's thread is late)
RETRY_INITIAL_S, RETRY_MAX_S = 1.0, 30.0  # reopening a live sub-stream that failed
OPENING = "not opened yet"

Opener = Callable[..., VideoSource]
Frames = list[tuple[float, av.VideoFrame]]  # (time on the main stream's clock, frame)


class ArrivalClock:
    """Estimates when a live stream's media time 0 was on `time.monotonic()`: the
    least-delayed of its recent packets (arrival minus media time, smallest)."""

    def __init__(self) -> None:
        self._window: deque[float] = deque(maxlen=ANCHOR_WINDOW)

    def note(self, media_time: float, now: float) -> None:
        value = now - media_time
        if self._window and value > min(self._window) + JUMP_S:
            self._window.clear()  # a reconnect restarted the count: the old anchor is wrong
        self._window.append(value)

    @property
    def anchor(self) -> float | None:
        return min(self._window) if self._window else None


class MainDecode:
    """Turns the main stream's decoder on and off through FFmpeg's `skip_frame`.

    Off is `ALL`: packets are still parsed (cheap) but no picture is decoded. Turning it
    back on mid-stream goes through `NONKEY` until a keyframe packet has been fed: a
    P-frame decoded without the frames it refers to would come out broken. Only a
    demuxer's stream can be switched; a synthetic source (no `info.stream`) always
    decodes.
    """

    def __init__(self, info: StreamInfo) -> None:
        stream = info.stream
        self._ctx = stream.codec_context if stream is not None else None
        self._on = True
        self._resuming = False

    @property
    def controllable(self) -> bool:
        return self._ctx is not None

    @property
    def on(self) -> bool:
        return self._on

    def set(self, on: bool) -> None:
        if self._ctx is None or on == self._on:
            return
        self._on = on
        self._resuming = on
        self._ctx.skip_frame = "NONKEY" if on else "ALL"

    def fed(self, sample: Sample) -> None:
        """`sample` went through the decoder: after a keyframe, decode everything."""
        if self._resuming and sample.keyframe and self._ctx is not None:
            self._ctx.skip_frame = "DEFAULT"
            self._resuming = False


@dataclass
class _Queued:
    time: float  # on the sub-stream's own clock
    frame: av.VideoFrame


class SubStream:
    """Reads a sub-stream on its own thread; `take` hands its frames to the camera's thread.

    A recorded (file, synthetic) sub-stream is read once: when it ends or fails it is
    down for good. A live one is opened again with backoff when it cannot be opened or
    its source gives up (an RTSP source reconnects by itself; while it does, no frames
    come and it is down after STALE_S).
    """

    def __init__(
        self,
        cfg: SourceConfig,
        *,
        camera: str | None,
        decode: DecodeConfig | None = None,
        opener: Opener = open_source,
    ) -> None:
        self.cfg = cfg
        self.camera = camera
        self.decode = decode  # the camera's `decode`: it applies to each stream decoded
        self.wait = cfg.kind in RECORDED
        self._opener = opener
        self._cond = threading.Condition()
        self._queue: deque[_Queued] = deque(maxlen=None if self.wait else QUEUE_LIVE)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._source: VideoSource | None = None
        self.clock = ArrivalClock()
        self._open = False
        self._ended = False
        self._reason = OPENING
        self._latest = float("-inf")  # sub time of the newest frame read
        # Monotonic time of the newest frame read, or of the start (a grace of STALE_S
        # for a live sub-stream to open before detection falls back).
        self._last_arrival = time.monotonic()
        self.frames_read = 0

    # -- life cycle ----------------------------------------------------------------------

    def start(self) -> None:
        self._last_arrival = time.monotonic()
        name = f"substream-{self.camera}"
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        with self._cond:
            source = self._source
            self._cond.notify_all()
        if source is not None:
            source.stop()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        backoff = Backoff(RETRY_INITIAL_S, RETRY_MAX_S)
        while not self._stop.is_set():
            reason = self._read_once(backoff)
            with self._cond:
                self._open, self._reason = False, reason
                if self.wait:
                    self._ended = True
                self._cond.notify_all()
            if self.wait or self._stop.wait(backoff.next_delay()):
                return

    def _read_once(self, backoff: Backoff) -> str:
        """Open and read the sub-stream until it ends; why it ended."""
        try:
            source = self._opener(self.cfg, camera=self.camera, decode=self.decode)
        except SourceError as exc:
            return f"cannot open: {exc}"
        try:
            with self._cond:
                self._source, self._open, self._reason = source, True, "open"
            if self._stop.is_set():
                return "stopped"
            for sample in source.samples():
                self._put(sample)
                backoff.reset()
                if self._stop.is_set():
                    return "stopped"
            return "ended"
        except Exception as exc:  # noqa: BLE001 - any failure of the sub: fall back, go on
            return f"failed: {exc}"
        finally:
            with self._cond:
                self._source = None
            source.close()

    def _put(self, sample: Sample) -> None:
        now = time.monotonic()
        fps = self._fps()
        with self._cond:
            self.clock.note(sample.time, now)
            for i, frame in enumerate(sample.frames):
                at = _shown_at(sample, i, frame, fps)
                while self.wait and len(self._queue) >= QUEUE_WAIT and not self._stop.is_set():
                    self._cond.wait(0.5)  # the camera's thread is behind: a file can wait
                self._queue.append(_Queued(at, frame))
                self._latest = max(self._latest, at)
                self.frames_read += 1
            self._last_arrival = now
            self._cond.notify_all()

    def _fps(self) -> float:
        source = self._source
        return source.info.fps if source is not None else 0.0

    # -- the camera's side ---------------------------------------------------------------

    def anchor(self) -> float | None:
        """When its media time 0 was on `time.monotonic()` (ArrivalClock)."""
        with self._cond:  # the reader thread notes arrivals into the same window
            return self.clock.anchor

    def ready(self) -> bool:
        """Wait (at most WAIT_MAX_S) until the sub-stream has a frame or has ended;
        whether it has a frame."""
        deadline = time.monotonic() + WAIT_MAX_S
        with self._cond:
            while self._thread is not None and not (
                self._queue or self._ended or self._stop.is_set()
            ):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(min(left, 0.5))
            return bool(self._queue)

    def down(self) -> str | None:
        """Why the sub-stream gives no frames now; None while it does."""
        with self._cond:
            if self.wait:
                return None if not self._ended or self._queue else self._reason
            if time.monotonic() - self._last_arrival <= STALE_S or self._reason == OPENING:
                return None  # delivering, or its first open still under way (a camera
                # can take seconds to answer): the main stream is analysed meanwhile
            return f"no frame for {STALE_S:g} s" if self._open else self._reason

    def take(self, until: float, offset: float) -> Frames:
        """The queued frames due by main time `until` (sub time + `offset`), oldest
        first. A recorded sub-stream is waited for until it has passed `until` (or
        ends, or WAIT_MAX_S passes)."""
        out: Frames = []
        deadline = time.monotonic() + WAIT_MAX_S
        with self._cond:
            while True:
                while self._queue and self._queue[0].time + offset <= until:
                    item = self._queue.popleft()
                    out.append((item.time + offset, item.frame))
                self._cond.notify_all()  # room for the reader
                if not self.wait or self._ended or self._latest + offset >= until:
                    return out
                left = deadline - time.monotonic()
                if left <= 0:
                    self._ended, self._reason = True, f"no frame within {WAIT_MAX_S:g} s"
                    return out
                self._cond.wait(min(left, 0.5))


def _shown_at(sample: Sample, index: int, frame: av.VideoFrame, fps: float) -> float:
    """When `frame` is shown on its stream's clock. A decoder with frame threads hands a
    frame out a few packets after its own, so the packet's time that released it can be
    late by those packets (0.3 s at 10 fps); the frame's own timestamp, against the
    packet's, says by how much."""
    if index < len(sample.frame_times):
        return sample.frame_times[index]
    packet = sample.packet
    ts = packet.dts if packet is not None and packet.dts is not None else None
    if ts is None and packet is not None:
        ts = packet.pts
    base = frame.time_base or (packet.time_base if packet is not None else None)
    if ts is None or frame.pts is None or base is None:
        return sample.frame_time(index, fps)
    return sample.time + float((frame.pts - ts) * base)


class SubstreamFeed:
    """A camera's sub-stream as its pipeline uses it: which frames to analyse with each
    main sample, and whether the main stream's decoder runs (see the module's docstring)."""

    def __init__(
        self,
        cfg: SourceConfig,
        *,
        camera: str | None,
        decode: DecodeConfig | None = None,
        opener: Opener = open_source,
    ) -> None:
        self.camera = camera
        self.sub = SubStream(cfg, camera=camera, decode=decode, opener=opener)
        self._main_clock = ArrivalClock()
        self._decode: MainDecode | None = None
        self._main_needed = False
        # The main stream decodes until the sub-stream has delivered a frame: turning a
        # decoder off is immediate, turning it on waits for a keyframe.
        self._sub_seen = False
        self.falling_back = False
        self.fallbacks = 0  # how many times detection fell back to the main stream

    def start(self) -> None:
        self.sub.start()

    def stop(self) -> None:
        self.sub.stop()

    def attach(self, info: StreamInfo, *, main_frames_needed: bool) -> None:
        """The main stream (re)opened: its decoder is off unless its frames are needed
        or the sub-stream has not delivered yet. A recorded sub-stream is waited for
        here (it opens in a moment, or fails), so its first frame decides before the
        main stream's first packet is decoded."""
        self._decode = MainDecode(info)
        self._main_needed = main_frames_needed
        if self.sub.wait and self.sub.ready():
            self._sub_seen = True
        self._apply()

    def need_main_frames(self, needed: bool) -> None:
        """The recorder re-encodes (privacy zones) or not: its frames are needed or not."""
        if needed != self._main_needed:
            self._main_needed = needed
            self._apply()

    @property
    def main_decoding(self) -> bool:
        return self._decode is None or self._decode.on

    def analysis(self, sample: Sample) -> Frames | None:
        """The sub frames to analyse with main `sample`; None: analyse the sample's own
        frames (the sub-stream is down, detection falls back to the main stream)."""
        if self._decode is not None:
            self._decode.fed(sample)
        live = not self.sub.wait
        if live:
            self._main_clock.note(sample.time, time.monotonic())
        reason = self.sub.down()
        if reason is None:
            offset = 0.0
            if live:
                main, sub = self._main_clock.anchor, self.sub.anchor()
                offset = sub - main if main is not None and sub is not None else 0.0
            frames = self.sub.take(sample.time, offset)
            reason = self.sub.down() if not frames else None
            if reason is None and not (frames or self._sub_seen):
                return None  # not delivering yet: the main stream's frames meanwhile
            if reason is None:
                if not self._sub_seen:
                    self._sub_seen = True
                    self._apply()
                self._fall_back(None)
                return frames
        self._fall_back(reason)
        return None

    def _fall_back(self, reason: str | None) -> None:
        if (reason is not None) == self.falling_back:
            return
        self.falling_back = reason is not None
        if reason is not None:
            self.fallbacks += 1
            log.warning(
                "substream.fallback", camera=self.camera, reason=reason,
                action="detecting on the main stream until the sub-stream returns",
            )  # fmt: skip
        else:
            log.info("substream.restored", camera=self.camera)
        self._apply()

    def _apply(self) -> None:
        if self._decode is not None:
            self._decode.set(self._main_needed or self.falling_back or not self._sub_seen)
