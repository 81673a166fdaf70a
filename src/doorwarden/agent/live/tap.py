"""Live view, the agent's half: one camera's video as fragmented MP4 (docs/live-view.md).

A `LiveTap` sees every sample of its camera, on the camera's thread. Nobody watches most
of the time, so until `start()` it only keeps references to the packets since the last
keyframe (a GOP cache: no copy, no muxer). When a viewer arrives it emits, through its
`emit` callback, an `InitSegment` (ftyp+moov, with the MSE type) and then one `Fragment`
(moof+mdat) per frame, the first a keyframe:

* stream copy, when there are no privacy zones and the camera's H.264 plays in browsers:
  the cached GOP goes out at once, so the viewer has a picture without waiting for the
  camera's next keyframe, and then each packet as it arrives; timestamps start at 0;
* otherwise decode, mask, re-encode with libx264 tuned for latency. The camera's packets
  contain the hidden pixels, so they never leave the agent; the encoder makes its first
  frame a keyframe, so no cache is needed.

Why one fragment per frame: a fragment reaches the browser only when it is complete, so
a fragment per GOP would add a GOP of latency. With `frag_every_frame` FFmpeg's muxer
writes frame N's fragment when frame N+1 is muxed (it needs the next timestamp for N's
duration), so the muxer adds one frame interval and nothing more. The muxer flushes its
I/O buffer at the end of each fragment (measured: nothing of a 130 KiB keyframe is left
behind, with or without `flush_packets`, which is set anyway to say what we rely on).
What the muxer writes is cut into the init segment and fragments, and read for the
codec and keyframes, by fmp4.py.

With the camera's audio (capture delivers AAC), both outputs add an AAC track after the
video one: its packets are copied in at their times relative to the viewer's first video
frame, the mime names both codecs, and the init segment says `audio`. `frag_every_frame`
cannot be used then: FFmpeg (8.0) cuts at every packet of either track, and a cut made
while the audio track holds no sample yet moves that track's end to the next queued
packet, so the following sample gets a zero duration and everything after it slips by one
(measured: a third of the audio misplaced). Instead a fragment is cut when the video
track spans `FRAG_SHARE` of a frame interval (`frag_duration`): one fragment per frame,
with the audio that came since the frame before, at the same latency. A fragment is a
keyframe by its video track.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import av
import structlog
from av.container import OutputContainer
from av.video.stream import VideoStream

from doorwarden.agent.analysis.privacy import PrivacyMask
from doorwarden.agent.capture.audio import AudioMuxer, mime_codec
from doorwarden.agent.capture.media import AudioInfo, Sample, StreamInfo
from doorwarden.agent.live.fmp4 import (
    FragmentCollector,
    codec_string,
    is_keyframe_fragment,
    video_track_id,
)
from doorwarden.agent.recording.clip_writer import CopyTimeline, can_stream_copy

log = structlog.get_logger("doorwarden.agent.live.tap")

FMP4_OPTIONS = {
    "movflags": "frag_keyframe+empty_moov+default_base_moof+frag_every_frame",
    "flush_packets": "1",
}
# With two tracks FFmpeg's interleaver holds a packet until the other track has one too,
# which would keep each frame back until the next frame's audio came: one more frame of
# latency. A 1 us limit lets it pass on whatever is not the newest packet at once.
INTERLEAVE_OPTIONS = {"max_interleave_delta": "1"}
FRAG_SHARE = 0.9  # of a frame interval: jitter in a camera's timestamps still cuts


def _fmp4_options(audio: bool, fps: float) -> tuple[dict[str, str], dict[str, str]]:
    """(muxer options, container options) for a stream with or without audio."""
    if not audio:
        return FMP4_OPTIONS, {}
    movflags = FMP4_OPTIONS["movflags"].replace("+frag_every_frame", "")
    frag_us = str(round(FRAG_SHARE * 1_000_000 / (fps or 10.0)))
    return {**FMP4_OPTIONS, "movflags": movflags, "frag_duration": frag_us}, INTERLEAVE_OPTIONS


# ultrafast + zerolatency: no lookahead and no B-frames, so a frame leaves the encoder as
# soon as it went in; live view favours latency over bits.
X264_LIVE_OPTIONS = {"preset": "ultrafast", "tune": "zerolatency"}
# A camera with a very long (or no) GOP must not make the cache grow without bound: past
# this, a new viewer waits for the next keyframe instead.
MAX_CACHED_PACKETS = 600
_MS = Fraction(1, 1000)


@dataclass(frozen=True)
class InitSegment:
    data: bytes  # ftyp+moov
    mime: str  # for MediaSource.addSourceBuffer
    width: int
    height: int
    audio: bool = False  # an AAC track is in the stream (the page shows its mute button)


@dataclass(frozen=True)
class Fragment:
    data: bytes  # moof+mdat, one frame
    keyframe: bool


@dataclass(frozen=True)
class LiveError:
    message: str  # the camera cannot stream; shown to the viewers


LiveOutput = InitSegment | Fragment | LiveError
Emit = Callable[[LiveOutput], None]


# -- outputs ---------------------------------------------------------------------------


class _Output:
    """One open fMP4 muxer: the init segment once, then fragments as frames arrive."""

    def __init__(self, audio: bool, fps: float) -> None:
        self.file = FragmentCollector()
        options, container_options = _fmp4_options(audio, fps)
        self.container: OutputContainer = av.open(
            self.file, "w", format="mp4", options=options, container_options=container_options
        )
        self.width = 0
        self.height = 0
        self.audio: AudioMuxer | None = None
        self.start: float | None = None  # the viewer's first video time, on the source clock
        self._video_track: int | None = None

    def add_audio(self, info: AudioInfo | None) -> None:
        """After the video stream, so that video is track 1."""
        if info is not None:
            try:
                self.audio = AudioMuxer(self.container, info)
            except Exception:
                self.container.close()
                raise

    def header(self) -> InitSegment:
        self.container.start_encoding()
        init = self.file.init
        mime = codec_string(init) if init is not None else None
        if init is None or mime is None:
            raise ValueError("the muxer wrote no H.264 init segment")
        self._video_track = video_track_id(init)
        if self.audio is not None:
            mime += ", " + mime_codec(self.audio.info)
        return InitSegment(
            init, f'video/mp4; codecs="{mime}"', self.width, self.height, self.audio is not None
        )

    def write(self, sample: Sample) -> list[Fragment]:
        raise NotImplementedError

    def write_audio(self, sample: Sample) -> None:
        """Once video flows, a sample's audio goes in before its video, as it came (and a
        frame's fragment goes out as soon as the muxer has the packet after it). Never
        before the first video packet: the muxer would shift every timestamp to start
        at that audio, and the video would begin below zero."""
        if self.audio is not None and self.start is not None and sample.audio:
            self.audio.write(sample.audio, self.start)

    def take(self) -> list[Fragment]:
        """The fragments the muxer completed since the last take."""
        track = self._video_track
        return [Fragment(data, is_keyframe_fragment(data, track)) for data in self.file.take()]

    def close(self) -> None:
        self.container.close()


def _close_quietly(output: _Output) -> None:
    with contextlib.suppress(ValueError, av.FFmpegError, OSError):
        output.close()


class _Template:
    """The camera stream's parameters, copied while its source is open.

    A viewer may start from the live link's thread just after the camera's source closed
    (before `reset` runs): the demuxer's stream is freed then, and copying from it would
    crash. This copy lives in an output container of our own that is never written.
    """

    def __init__(self, stream: VideoStream) -> None:
        self._holder: OutputContainer = av.open(FragmentCollector(), "w", format="mp4")
        self.stream = self._holder.add_stream_from_template(stream)


class _CopyOutput(_Output):
    def __init__(self, info: StreamInfo, template: _Template) -> None:
        super().__init__(info.audio is not None, info.fps)
        try:
            self.stream = self.container.add_stream_from_template(template.stream)
        except Exception:
            self.container.close()
            raise
        self.add_audio(info.audio)
        self.width, self.height = info.width, info.height
        self.timeline = CopyTimeline(template.stream.time_base or Fraction(1, 90_000), info.fps)
        self.started = False

    def write(self, sample: Sample) -> list[Fragment]:
        src = sample.packet
        if src is None or src.size == 0 or not (self.started or sample.keyframe):
            return []  # a viewer's stream must begin with a keyframe
        first = self.start is None
        if first:
            self.start = sample.time  # the copy's timeline starts at this packet
        else:
            self.write_audio(sample)
        self.started = True
        pkt = self.timeline.packet(sample, src)  # the viewer's timeline starts at 0
        pkt.duration = src.duration or self.timeline.frame_ticks
        pkt.is_keyframe = sample.keyframe
        pkt.stream = self.stream
        self.container.mux(pkt)
        if first:
            self.write_audio(sample)
        return self.take()


class _EncodeOutput(_Output):
    def __init__(self, info: StreamInfo, mask: PrivacyMask, gop_s: float) -> None:
        super().__init__(info.audio is not None, info.fps)
        self.mask = mask
        self.fps = info.fps or 10.0
        # yuv420p needs even sizes.
        self.width, self.height = info.width - info.width % 2, info.height - info.height % 2
        gop = max(1, round(self.fps * gop_s))
        try:
            stream = self.container.add_stream(
                "libx264",
                rate=Fraction(self.fps).limit_denominator(1001),
                options={**X264_LIVE_OPTIONS, "g": str(gop)},
            )
        except Exception:
            self.container.close()
            raise
        stream.width, stream.height, stream.pix_fmt = self.width, self.height, "yuv420p"
        stream.codec_context.time_base = _MS
        self.stream = stream
        self.add_audio(info.audio)
        self.last_pts = -1

    def write(self, sample: Sample) -> list[Fragment]:
        first = self.last_pts < 0  # no video in the muxer yet: audio after it (write_audio)
        if not first:
            self.write_audio(sample)
        if sample.frames and self.start is None:
            self.start = sample.frame_time(0, self.fps)
        start = self.start or 0.0
        for i, frame in enumerate(sample.frames):
            t = sample.frame_time(i, self.fps)
            # The source's clock, not the frame's pts: it never goes back across reconnects.
            pts = max(self.last_pts + 1, round((t - start) * 1000))
            self.last_pts = pts
            out = self.mask.apply(frame)  # before the encoder: hidden pixels never leave
            if out.format.name != "yuv420p" or (out.width, out.height) != (self.width, self.height):
                out = out.reformat(width=self.width, height=self.height, format="yuv420p")
            out.pts = pts
            out.time_base = _MS
            self.container.mux(self.stream.encode(out))
        if first and self.last_pts >= 0:
            self.write_audio(sample)
        return self.take()


# -- the tap ---------------------------------------------------------------------------


class LiveTap:
    """One camera's live stream. `feed` on the camera thread; `start`/`stop` anywhere.

    `emit` is called with the tap's lock held, on whichever thread caused the output: it
    must not block (the live link puts the output in a queue).
    """

    def __init__(
        self, camera: str, emit: Emit, *, mask: PrivacyMask | None = None, gop_s: float = 1.0
    ) -> None:
        self.camera = camera
        self.mask = mask if mask is not None else PrivacyMask.none()
        self.gop_s = gop_s
        self.fragments = 0  # emitted since the last start: for tests and status
        self._emit = emit
        self._lock = threading.Lock()
        self._info: StreamInfo | None = None
        self._copy = False
        self._template: _Template | None = None
        self._gop: list[Sample] = []
        self._wanted = False
        self._output: _Output | None = None

    @property
    def running(self) -> bool:
        """Whether a viewer asked for the stream (the muxer opens with the next sample
        when the stream is not known yet)."""
        return self._wanted

    @property
    def muxing(self) -> bool:
        return self._output is not None

    @property
    def cached(self) -> int:
        return len(self._gop)

    def feed(self, sample: Sample, info: StreamInfo) -> None:
        with self._lock:
            if info is not self._info:
                self._switch(info)
            if self._copy:
                self._cache(sample)
            if not self._wanted:
                return
            if self._output is not None:
                self._write(sample)
                return
            self._open()  # stream copy: emits the cache, this sample included
            if self._output is not None and not self._copy:
                self._write(sample)

    def start(self) -> None:
        """A viewer is watching: a fresh init segment, then (stream copy) the cached GOP.
        Restarts when already running, so the new init reaches whoever asked."""
        with self._lock:
            self._close()
            self._wanted = True
            if self._info is not None:
                self._open()

    def stop(self) -> None:
        with self._lock:
            self._wanted = False
            self._close()

    def reset(self) -> None:
        """The source closed: its packets and stream are gone; a viewer stays waiting."""
        with self._lock:
            self._close()
            self._gop.clear()
            self._info, self._template = None, None

    def set_mask(self, mask: PrivacyMask) -> None:
        """New privacy zones (settings from the web), any thread. A viewer's stream
        restarts with the camera's next sample (a new init segment, then a keyframe):
        re-encoded with the new zones, or copied again when none are left. The stream is
        taken up again on the camera's thread, which holds the source open: copying its
        parameters from here could meet a source that just closed."""
        with self._lock:
            if mask.polygons == self.mask.polygons:
                return
            self.mask = mask
            self._close()
            # The cached GOP holds camera packets: no viewer may start from them now.
            self._gop.clear()
            self._info, self._template = None, None  # `feed` switches to the stream again

    # -- with the lock held --------------------------------------------------------------

    def _switch(self, info: StreamInfo) -> None:
        """A new stream (first sample, reconnect): restart with a new init segment."""
        self._close()
        self._gop.clear()
        self._info = info
        self._copy = not self.mask and can_stream_copy(info.stream, info.codec)
        self._template = _Template(info.stream) if self._copy and info.stream else None

    def _cache(self, sample: Sample) -> None:
        if sample.packet is None or sample.packet.size == 0:
            return
        if sample.keyframe:
            self._gop.clear()
        elif not self._gop or len(self._gop) >= MAX_CACHED_PACKETS:
            self._gop.clear()
            return  # no keyframe to start from
        # A reference to the sample without its decoded frames, which would hold a
        # GOP of full pictures in memory.
        self._gop.append(Sample(sample.packet, [], sample.time, sample.keyframe, sample.audio))

    def _open(self) -> None:
        info = self._info
        assert info is not None  # noqa: S101 - callers check
        self.fragments = 0
        try:
            self._output, init = self._new_output(info)
        except (ValueError, av.FFmpegError) as exc:
            self._fail(exc)
            return
        self._emit(init)
        log.info(
            "live.started", camera=self.camera, mode="copy" if self._copy else "reencode",
            mime=init.mime, cached=len(self._gop),
        )  # fmt: skip
        for cached in list(self._gop):
            if self._output is None:
                break  # failed: said by _fail
            self._write(cached)

    def _new_output(self, info: StreamInfo) -> tuple[_Output, InitSegment]:
        output: _Output
        if self._template is not None:
            output = _CopyOutput(info, self._template)
            try:
                return output, output.header()
            except (ValueError, av.FFmpegError) as exc:
                # No usable avcC (parameter sets only in-band, say): re-encode instead.
                log.info("live.copy_unavailable", camera=self.camera, reason=str(exc))
                _close_quietly(output)
                self._copy, self._template = False, None
                self._gop.clear()
        output = _EncodeOutput(info, self.mask, self.gop_s)
        try:
            return output, output.header()
        except (ValueError, av.FFmpegError):
            _close_quietly(output)
            raise

    def _write(self, sample: Sample) -> None:
        output = self._output
        assert output is not None  # noqa: S101 - callers check
        try:
            fragments = output.write(sample)
        except (ValueError, av.FFmpegError) as exc:
            self._fail(exc)
            return
        for fragment in fragments:
            self.fragments += 1
            self._emit(fragment)

    def _fail(self, exc: Exception) -> None:
        log.error("live.failed", camera=self.camera, error=str(exc), exc_info=True)
        self._wanted = False
        self._close()
        self._emit(LiveError(f"the camera cannot stream: {exc}"))

    def _close(self) -> None:
        output, self._output = self._output, None
        if output is None:
            return
        try:
            output.close()  # what the trailer writes (the last frame, mfra) is dropped
        except (ValueError, av.FFmpegError, OSError) as exc:
            log.warning("live.close_failed", camera=self.camera, error=str(exc))
