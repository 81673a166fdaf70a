"""A camera's audio, for clips and live view: always AAC when it leaves capture.

Browsers play AAC in MP4 (and in MediaSource) everywhere, so that is the one audio codec
the rest of the agent sees:

* AAC from the camera (RTSP MPEG4-GENERIC, an MP4 file) is copied as it comes: no
  quality loss, no CPU;
* G.711 (mu-law, A-law), Opus and the few other codecs cameras send are decoded and
  encoded to AAC-LC with FFmpeg's native `aac` encoder. AAC wants 1024-sample frames,
  cameras send 20 ms packets, so an `AudioFifo` regroups them. The result is 48 kHz: AAC
  at G.711's 8 kHz has 128 ms frames, too coarse for lip sync, and live view's fMP4 cuts
  one fragment per video frame, which wants at least one audio frame in each (tap.py).

Times: every `AudioPacket` carries its time on the video's clock (sources.py maps the
demuxer's timestamps), and stays strictly increasing: audio that would go back (after a
reconnect or a loop restarts the clock) is dropped. Writers place each packet at
`audio_pts(time, start)`, relative to their first video frame.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import av
import structlog
from av.audio.fifo import AudioFifo
from av.audio.frame import AudioFrame
from av.audio.resampler import AudioResampler
from av.audio.stream import AudioStream
from av.container import InputContainer, OutputContainer

from doorwarden.agent.capture.media import AudioInfo, AudioPacket

log = structlog.get_logger("doorwarden.agent.capture.audio")

AAC_FRAME = 1024  # samples per channel in one AAC-LC packet
# Decoded, then encoded to AAC-LC: what IP cameras and doorbells send besides AAC.
TRANSCODED = frozenset(
    {"pcm_mulaw", "pcm_alaw", "opus", "adpcm_g726", "adpcm_g726le", "pcm_s16be", "pcm_s16le"}
)
TRANSCODE_RATE = 48_000
# A transcoder input further than this from where its samples say it should be (lost
# packets, a reconnect) is a new start: the encoder's timeline is re-anchored to it.
MAX_DRIFT_S = 0.25


def audio_pts(time_s: float, start_s: float, info: AudioInfo) -> int:
    """A packet's pts in 1/sample_rate, relative to a clip's (or viewer's) first video time."""
    return round((time_s - start_s) * info.sample_rate)


def mime_codec(info: AudioInfo) -> str:
    """The RFC 6381 codec of the AAC track, from its AudioSpecificConfig: mp4a.40.2 for
    AAC-LC (what the transcoder makes), mp4a.40.5 for a camera's HE-AAC."""
    object_type = info.extradata[0] >> 3 if info.extradata else 2
    return f"mp4a.40.{object_type or 2}"


def _layout(channels: int) -> str:
    """FFmpeg's default layout for an AAC channel configuration (1-6, 8 channels)."""
    names = {1: "mono", 2: "stereo", 3: "3.0", 4: "4.0", 5: "5.0", 6: "5.1", 8: "7.1"}
    return names.get(channels, "stereo")


def add_audio_stream(container: OutputContainer, info: AudioInfo) -> AudioStream:
    """An AAC track in `container` that capture's packets can be muxed into as they are.

    The stream gets an encoder context (PyAV fills the codec parameters from it); it is
    opened here, then given the source's own AudioSpecificConfig, so a copied HE-AAC or
    5.1 track is described as it really is rather than as our encoder would make it.
    """
    stream = container.add_stream("aac", rate=info.sample_rate)
    ctx = stream.codec_context
    ctx.layout = _layout(info.channels)
    ctx.time_base = Fraction(1, info.sample_rate)
    stream.time_base = Fraction(1, info.sample_rate)
    ctx.open()
    ctx.extradata = info.extradata
    return stream


class AudioMuxer:
    """Writes capture's AAC packets into an output's AAC track, relative to `start`
    (the output's first video time): audio from before it is dropped, pts never repeat."""

    def __init__(self, container: OutputContainer, info: AudioInfo) -> None:
        self.info = info
        self.stream = add_audio_stream(container, info)
        self.packets = 0
        self._container = container
        self._last_pts: int | None = None

    def packet(self, audio: AudioPacket, start: float) -> av.Packet[Any] | None:
        """The packet to mux for `audio`, or None when it has no place in this output."""
        pts = audio_pts(audio.time, start, self.info)
        if pts < 0:
            return None  # before the output's first frame
        last = self._last_pts
        if last is not None:
            if pts <= last:
                return None
            # Rounding puts a packet a sample early now and then; AAC packets abut.
            pts = max(pts, last + AAC_FRAME) if pts - last < AAC_FRAME else pts
        self._last_pts = pts
        out = av.Packet(bytes(audio.packet))
        out.time_base = Fraction(1, self.info.sample_rate)
        out.pts = out.dts = pts
        out.duration = AAC_FRAME
        out.stream = self.stream
        return out

    def write(self, packets: list[AudioPacket], start: float) -> None:
        for audio in packets:
            out = self.packet(audio, start)
            if out is not None:
                self._container.mux(out)
                self.packets += 1


class AacEncoder:
    """PCM frames (any format, rate, layout) in, AAC-LC packets out, each with its time.

    `push(frame, time)`: `time` is the frame's first sample on the video's clock. The
    encoder's own timeline counts samples from an anchor; a packet's time is the anchor
    plus its pts (which FFmpeg already shifts back by the encoder's delay).
    """

    def __init__(self, rate: int, channels: int) -> None:
        self.rate = rate
        self.channels = min(channels, 2)  # more is downmixed: a doorbell has one microphone
        layout = _layout(self.channels)
        encoder = av.CodecContext.create("aac", "w")
        assert isinstance(encoder, av.AudioCodecContext)  # noqa: S101 - "aac" is audio
        encoder.sample_rate, encoder.layout, encoder.format = rate, layout, "fltp"
        encoder.time_base = Fraction(1, rate)
        encoder.bit_rate = 64_000 * self.channels
        encoder.open()
        self._encoder = encoder
        self.extradata = bytes(encoder.extradata or b"")
        self._resampler = AudioResampler(format="fltp", layout=layout, rate=rate)
        self._fifo = AudioFifo()
        self._anchor: float | None = None  # clock time of encoder sample 0
        self._fed = 0  # samples given to the FIFO
        self._encoded = 0  # samples taken from it

    def push(self, frame: AudioFrame, time: float) -> list[AudioPacket]:
        for out in self._resampler.resample(frame):
            expected = None if self._anchor is None else self._anchor + self._fed / self.rate
            if expected is None or abs(time - expected) > MAX_DRIFT_S:
                self._anchor = time - self._fed / self.rate
            out.pts = None  # the FIFO checks continuity of pts; ours is the anchor's
            self._fifo.write(out)
            self._fed += out.samples
            time += out.samples / self.rate
        packets = []
        while self._fifo.samples >= AAC_FRAME:
            chunk = self._fifo.read(AAC_FRAME)
            assert chunk is not None  # noqa: S101 - enough samples were there
            chunk.pts, chunk.time_base = self._encoded, Fraction(1, self.rate)
            self._encoded += AAC_FRAME
            for packet in self._encoder.encode(chunk):
                assert self._anchor is not None  # noqa: S101 - set by the first frame
                pts = packet.pts if packet.pts is not None else self._encoded
                packets.append(AudioPacket(packet, self._anchor + pts / self.rate))
        return packets


class AudioTrack:
    """The audio stream of one open input: its packets, as AAC with their times."""

    def __init__(self, stream: AudioStream) -> None:
        self.stream = stream
        ctx = stream.codec_context
        self.source_codec = ctx.name
        self.copy = ctx.name == "aac" and bool(ctx.extradata)
        self._encoder: AacEncoder | None = None
        if self.copy:
            extradata = bytes(ctx.extradata or b"")
            self.info = AudioInfo(ctx.sample_rate, ctx.channels, extradata, ctx.name)
        else:
            self._encoder = AacEncoder(TRANSCODE_RATE, ctx.channels or 1)
            self.info = AudioInfo(
                self._encoder.rate, self._encoder.channels, self._encoder.extradata, ctx.name
            )
        self._last: float | None = None
        self.errors = 0

    def push(self, packet: av.Packet[Any], time: float) -> list[AudioPacket]:
        """The AAC packets `packet` (demuxed at clock time `time`) yields; decode errors
        skip the packet, with a warning now and then."""
        if self._encoder is None:
            produced = [AudioPacket(packet, time)]
        else:
            produced = []
            try:
                frames = self.stream.decode(packet)
            except av.FFmpegError as exc:
                self.errors += 1
                if self.errors == 1 or self.errors % 100 == 0:
                    log.warning("capture.audio_decode_error", error=str(exc), count=self.errors)
                return []
            for frame in frames:
                produced += self._encoder.push(frame, time)
                time += frame.samples / (frame.sample_rate or self._encoder.rate)
        fresh = []
        for audio in produced:
            if self._last is None or audio.time > self._last:
                self._last = audio.time
                fresh.append(audio)
        return fresh


def no_audio_warning(camera: str | None, what: str) -> None:
    log.warning(
        "capture.no_audio", camera=camera, source=what,
        message=f"audio is on for this camera, but {what} has no audio stream: "
        "recording video only",
    )  # fmt: skip


def open_audio(
    container: InputContainer, *, camera: str | None, what: str, warn: bool = True
) -> AudioTrack | None:
    """The input's first audio stream, ready to deliver AAC; None (with one warning line
    saying why, when `warn`) when it has none or none we can carry. Video works either way."""
    if not container.streams.audio:
        if warn:
            no_audio_warning(camera, what)
        return None
    stream = container.streams.audio[0]
    name = stream.codec_context.name
    if name != "aac" and name not in TRANSCODED:
        if warn:
            log.warning(
                "capture.audio_unsupported", camera=camera, source=what, codec=name,
                message=f"{what} sends audio as {name}, which doorwarden cannot carry: "
                "recording video only",
            )  # fmt: skip
        return None
    try:
        return AudioTrack(stream)
    except (av.FFmpegError, ValueError) as exc:
        log.warning(
            "capture.audio_unsupported", camera=camera, source=what, codec=name,
            message=f"cannot transcode {what}'s {name} audio ({exc}): recording video only",
        )  # fmt: skip
        return None
