"""Writing one event clip as an MP4 that browsers play (H.264, yuv420p, moov up front).

Two ways: a stream copy remuxes the camera's own H.264 packets (no quality loss, almost no
CPU), and a re-encode masks the decoded frames and encodes them with libx264 — needed
whenever privacy zones exist (the camera's packets contain the hidden pixels) or the
camera's codec is not one browsers play.

With the camera's audio on, both add an AAC track after the video one (capture delivers
AAC already, so audio is always copied) and place each packet at its time relative to
the clip's first video frame; audio from before that frame is dropped.
"""

from __future__ import annotations

import contextlib
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from av.container import OutputContainer
from av.video.stream import VideoStream

from doorwarden.agent.analysis.privacy import PrivacyMask
from doorwarden.agent.capture.audio import AudioMuxer
from doorwarden.agent.capture.media import AudioInfo, Sample

# moov before mdat: a browser can start playing before the whole file has arrived.
MP4_OPTIONS = {"movflags": "+faststart"}
X264_OPTIONS = {"preset": "veryfast", "crf": "23"}
_MS = Fraction(1, 1000)


def can_stream_copy(stream: VideoStream | None, codec: str) -> bool:
    """Whether the camera's packets can go into a browser-playable MP4 unchanged."""
    if stream is None or codec != "h264":
        return False
    # High 4:4:4 or 10-bit H.264 would copy fine but not play in browsers.
    return stream.codec_context.pix_fmt in (None, "yuv420p", "yuvj420p")


class ClipWriter:
    """Base: one open MP4 file; subclasses decide what goes into it."""

    reencoded: bool

    def __init__(self, path: Path, width: int, height: int) -> None:
        self.path = path
        self.width = width
        self.height = height
        self.frames = 0
        self._out: OutputContainer = av.open(str(path), "w", format="mp4", options=MP4_OPTIONS)
        self.audio: AudioMuxer | None = None
        self._audio_start: float | None = None  # the clip's first video time

    def _add_audio(self, info: AudioInfo | None) -> None:
        """After the video stream: the video is track 1, as players expect."""
        if info is not None:
            try:
                self.audio = AudioMuxer(self._out, info)
            except Exception:
                self._out.close()
                raise

    def _write_audio(self, sample: Sample) -> None:
        if self.audio is not None and self._audio_start is not None and sample.audio:
            self.audio.write(sample.audio, self._audio_start)

    def write(self, sample: Sample) -> None:
        raise NotImplementedError

    def clean_cut(self, sample: Sample) -> bool:
        """Whether the clip may end just before `sample` without dropping a frame."""
        return True

    def close(self) -> None:
        self._out.close()

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._out.close()
        self.path.unlink(missing_ok=True)


class CopyTimeline:
    """A stream copy's timestamps: the camera's packets rebased so that the output starts
    at 0, and kept increasing when the source's clock restarts (a reconnect, a looped
    file). Used by clips and by live view alike."""

    def __init__(self, time_base: Fraction, fps: float) -> None:
        self.time_base = time_base
        self.frame_ticks = max(1, round(1 / (fps or 10) / time_base))
        self.source_dts: int | None = None  # of the last packet, on the source's clock
        self._offset: int | None = None
        self._last_dts: int | None = None

    def packet(self, sample: Sample, src: av.Packet[Any]) -> av.Packet[Any]:
        """A new packet with the rebased timestamps (the muxer rewrites timestamps in
        place, and the camera's packet may still be needed: a pre-roll, a GOP cache)."""
        time_base = src.time_base or self.time_base
        dts = src.dts if src.dts is not None else src.pts
        pts = src.pts if src.pts is not None else dts
        if dts is None or pts is None:
            dts = pts = round(sample.time / time_base)
        self.source_dts = dts
        if self._offset is None:
            self._offset = dts  # the output's timeline starts at 0
        if self._last_dts is not None and dts - self._offset <= self._last_dts:
            # The source restarted its clock: keep the output's going on.
            self._offset = dts - (self._last_dts + self.frame_ticks)
        pkt = av.Packet(bytes(src))
        pkt.time_base = time_base
        pkt.dts = dts - self._offset
        pkt.pts = pts - self._offset
        self._last_dts = pkt.dts
        return pkt


class StreamCopyWriter(ClipWriter):
    reencoded = False

    def __init__(
        self, path: Path, template: VideoStream, fps: float, audio: AudioInfo | None = None
    ) -> None:
        super().__init__(path, template.codec_context.width, template.codec_context.height)
        try:
            self._stream = self._out.add_stream_from_template(template)
        except Exception:
            self._out.close()
            raise
        self._add_audio(audio)
        self._timeline = CopyTimeline(template.time_base or Fraction(1, 90000), fps)
        self._last_src_dts: int | None = None
        self._max_src_pts: int | None = None

    def clean_cut(self, sample: Sample) -> bool:
        # With B-frames, packets after a reference frame in decode order display before
        # it; ending among them would drop frames. A packet shown after everything written
        # so far (or a restarted clock) marks a point where nothing is left owing.
        src = sample.packet
        if src is None or src.pts is None or self._max_src_pts is None:
            return True
        restarted = (
            src.dts is not None
            and self._last_src_dts is not None
            and (src.dts <= self._last_src_dts)
        )
        return restarted or src.pts > self._max_src_pts

    def write(self, sample: Sample) -> None:
        src = sample.packet
        if src is None or src.size == 0 or (self.frames == 0 and not sample.keyframe):
            return  # a clip must start at a keyframe to be decodable from its first packet
        pkt = self._timeline.packet(sample, src)
        dts = self._timeline.source_dts
        if self._last_src_dts is not None and dts is not None and dts <= self._last_src_dts:
            self._max_src_pts = None  # a restarted clock: old display times mean nothing
        self._last_src_dts = dts
        if src.pts is not None:
            self._max_src_pts = max(src.pts, self._max_src_pts or src.pts)
        pkt.duration = src.duration
        pkt.is_keyframe = src.is_keyframe
        pkt.stream = self._stream
        self._out.mux(pkt)
        if self._audio_start is None:
            self._audio_start = sample.time  # the copy's timeline starts at this packet
        self.frames += 1
        self._write_audio(sample)


class ReencodeWriter(ClipWriter):
    reencoded = True

    def __init__(
        self,
        path: Path,
        width: int,
        height: int,
        fps: float,
        mask: PrivacyMask,
        audio: AudioInfo | None = None,
    ) -> None:
        # yuv420p needs even sizes; an odd-sized camera loses a row or column to scaling.
        super().__init__(path, width - width % 2, height - height % 2)
        self._mask = mask
        self._fps = fps or 10.0
        try:
            stream = self._out.add_stream(
                "libx264",
                rate=Fraction(self._fps).limit_denominator(1001),
                options={**X264_OPTIONS, "g": str(max(1, round(self._fps * 2)))},
            )
        except Exception:
            self._out.close()
            raise
        stream.width = self.width
        stream.height = self.height
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = _MS
        self._stream = stream
        self._add_audio(audio)
        self._start: float | None = None
        self._last_pts = -1

    def write(self, sample: Sample) -> None:
        for i, frame in enumerate(sample.frames):
            t = sample.frame_time(i, self._fps)
            if self._start is None:
                self._start = self._audio_start = t
            # Source time, not the frame's pts: it is the clock that survives reconnects.
            pts = max(self._last_pts + 1, round((t - self._start) * 1000))
            self._last_pts = pts
            out = self._mask.apply(frame)
            if out.format.name != "yuv420p" or (out.width, out.height) != (self.width, self.height):
                out = out.reformat(width=self.width, height=self.height, format="yuv420p")
            out.pts = pts
            out.time_base = _MS
            self._out.mux(self._stream.encode(out))
            self.frames += 1
        self._write_audio(sample)

    def close(self) -> None:
        try:
            self._out.mux(self._stream.encode(None))
        finally:
            self._out.close()
