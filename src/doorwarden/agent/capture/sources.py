"""Video sources: a file, an RTSP camera, a V4L2 device or a synthetic scene, all yielding
`Sample`s (one demuxed packet and the frames decoded from it) on one increasing clock.

Use `open_source(cfg)`; it opens the input (so `info` is ready, and a bad input fails
here with a SourceError naming it), then iterate `samples()` on one thread. `stop()` may be
called from any thread and ends `samples()` between packets, or at once during a pacing or
reconnect wait; a blocking network read ends within the RTSP timeout at worst.

Damaged input, decided:
* a missing file, garbage, or a truncated file whose index is lost (MP4 without its
  `moov`) cannot be opened: SourceError naming the file;
* a file that opens but breaks later (truncated media data): the decodable part is
  delivered, single undecodable packets are skipped with a warning, and a read error ends
  the file as if it had ended there, with a warning. A recording cut short is normal
  (a camera lost power), and its first part is still worth analysing. Only a run of
  `MAX_BAD_PACKETS` undecodable packets in a row raises SourceError: that is not a
  damaged tail any more but a stream we cannot decode.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction

import av
import structlog
from av.container import InputContainer
from av.video.stream import VideoStream

from doorwarden.agent.capture.audio import AudioTrack, open_audio
from doorwarden.agent.capture.hwaccel import Decoder, open_decoder
from doorwarden.agent.capture.media import AudioPacket, Sample, SourceError, StreamInfo
from doorwarden.agent.capture.rtsp import Backoff, connect, ffmpeg_reason, redact_text, redact_url
from doorwarden.agent.capture.source import VideoSource, frame_time
from doorwarden.agent.config.models import DecodeConfig, FileSource, RtspSource, SourceConfig
from doorwarden.agent.config.models import V4l2Source as V4l2Config

log = structlog.get_logger("doorwarden.agent.capture.sources")

MAX_BAD_PACKETS = 25
_READ_ERRORS = (av.FFmpegError, OSError)


def _stream_info(stream: VideoStream, audio: AudioTrack | None) -> StreamInfo:
    ctx = stream.codec_context
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return StreamInfo(
        width=ctx.width,
        height=ctx.height,
        fps=float(rate) if rate else 0.0,
        time_base=stream.time_base or Fraction(1, 90_000),
        codec=ctx.name,
        stream=stream,
        audio=audio.info if audio is not None else None,
    )


class _ContainerSource(VideoSource):
    """Shared demux + decode loop over a PyAV input container."""

    _container: InputContainer | None = None
    _stream: VideoStream
    _audio: AudioTrack | None = None
    _decoder: Decoder | None = None
    # The camera's `decode` setting; None (software) once hardware failed or was absent,
    # so a reconnect neither retries it nor repeats the log line (capture/hwaccel.py).
    _decode_cfg: DecodeConfig | None = None

    def _attach(self, container: InputContainer, what: str) -> None:
        if not container.streams.video:
            container.close()
            raise SourceError(f"{what} has no video stream")
        self._container = container
        self._stream = container.streams.video[0]
        # Frame threading plus slice threading; the decoder releases the GIL meanwhile.
        self._stream.thread_type = "AUTO"
        self._audio = None
        if self.audio:
            self._audio = open_audio(
                container, camera=self.camera, what=what, warn=not self._audio_warned
            )
            self._audio_warned = self._audio is None
        if self._decoder is not None and self._decoder.failed:
            self._decode_cfg = None
        self._decoder = open_decoder(self._stream, self._decode_cfg, camera=self.camera)
        if self._decoder.accel is None:
            self._decode_cfg = None
        self.info = _stream_info(self._stream, self._audio)
        if self.info.fps > 0:
            self._clock.step = 1.0 / self.info.fps

    def _read(self, what: str) -> Iterator[Sample]:
        """Demux to the end; read errors propagate, decode errors skip the packet."""
        assert self._container is not None  # noqa: S101 - set by _attach
        assert self._decoder is not None  # noqa: S101 - set by _attach
        stream, bad, audio, decoder = self._stream, 0, self._audio, self._decoder
        pending: list[AudioPacket] = []
        streams = (stream,) if audio is None else (stream, audio.stream)
        for packet in self._container.demux(*streams):
            if self._stop.is_set():
                return
            if audio is not None and packet.stream is audio.stream:
                at = self._clock.other(packet.pts, packet.time_base)
                if packet.size and at is not None:
                    pending += audio.push(packet, at)
                continue
            if packet.size == 0:  # demuxer's end-of-stream marker: drain the decoder
                frames = decoder.decode(None)
                if frames and self._clock.last is not None:
                    times = self._frame_times(frames, self._clock.last)
                    yield Sample(None, frames, self._clock.last, False, pending, times)
                    pending = []
                continue
            t = self._clock.at(
                packet.dts if packet.dts is not None else packet.pts, packet.time_base
            )
            try:
                frames = decoder.decode(packet)
                bad = 0
            except av.FFmpegError as exc:
                bad += 1
                log.warning(
                    "capture.decode_error",
                    camera=self.camera,
                    source=what,
                    time=t,
                    error=ffmpeg_reason(exc),
                    in_a_row=bad,
                )
                if bad >= MAX_BAD_PACKETS:
                    raise SourceError(f"{what}: {bad} undecodable packets in a row") from None
                frames = []
            if not self._paced(t):
                return
            times = self._frame_times(frames, t)
            yield Sample(packet, frames, t, packet.is_keyframe, pending, times)
            pending = []

    def _frame_times(self, frames: list[av.VideoFrame], t: float) -> list[float]:
        if self._audio is None:
            return []  # only audio/video sync needs them
        return [frame_time(self._clock, f, self._stream.time_base, t) for f in frames]

    def close(self) -> None:
        super().close()
        if self._container is not None:
            self._container.close()
            self._container = None


class FileVideoSource(_ContainerSource):
    def __init__(
        self,
        cfg: FileSource,
        *,
        camera: str | None = None,
        audio: bool = False,
        decode: DecodeConfig | None = None,
    ) -> None:
        super().__init__(camera=camera, pace=cfg.pace, audio=audio)
        self._decode_cfg = decode
        self.path, self.loop = cfg.path, cfg.loop
        self.reads_ahead = not cfg.pace and not cfg.loop  # read_ahead.py says why only then
        self._what = f"video file {cfg.path}"
        if not cfg.path.is_file():
            raise SourceError(f"{self._what} does not exist or is not a file")
        try:
            container = av.open(str(cfg.path))
        except _READ_ERRORS as exc:
            raise SourceError(f"cannot read {self._what}: {ffmpeg_reason(exc)}") from None
        self._attach(container, self._what)

    def samples(self) -> Iterator[Sample]:
        while not self._stop.is_set():
            packets = 0
            try:
                for sample in self._read(self._what):
                    packets += sample.packet is not None
                    yield sample
            except _READ_ERRORS as exc:
                log.warning(
                    "capture.file_read_error",
                    camera=self.camera,
                    path=str(self.path),
                    error=ffmpeg_reason(exc),
                    action="ending the file here",
                )
                return
            if self._stop.is_set():
                return
            expected = self._stream.frames  # from the index; 0 when the container has none
            if expected and packets < expected:
                # FFmpeg ends a cut-off file quietly; say so, or a short clip looks complete.
                log.warning(
                    "capture.file_truncated",
                    camera=self.camera,
                    path=str(self.path),
                    packets=packets,
                    expected=expected,
                )
            if not self.loop or packets == 0:  # an empty pass would loop forever
                return
            self._rewind()

    def _rewind(self) -> None:
        assert self._container is not None  # noqa: S101 - open until close()
        try:
            self._container.seek(0)  # also flushes the decoder we drained at the end
            if self._decoder is not None:
                self._decoder.flush()  # a hardware one is not the container's
        except _READ_ERRORS:
            self._container.close()
            self._attach(av.open(str(self.path)), self._what)
        self._clock.rebase()


class V4l2VideoSource(_ContainerSource):
    def __init__(
        self,
        cfg: V4l2Config,
        *,
        camera: str | None = None,
        audio: bool = False,
        decode: DecodeConfig | None = None,
    ) -> None:
        super().__init__(camera=camera, audio=audio)
        self._decode_cfg = decode
        self._what = f"V4L2 device {cfg.device}"
        options: dict[str, str] = {}
        if cfg.width and cfg.height:
            options["video_size"] = f"{cfg.width}x{cfg.height}"
        if cfg.fps:
            options["framerate"] = f"{cfg.fps:g}"
        try:
            container = av.open(cfg.device, format="video4linux2", options=options)
        except _READ_ERRORS as exc:
            raise SourceError(f"cannot open {self._what}: {ffmpeg_reason(exc)}") from None
        self._attach(container, self._what)

    def samples(self) -> Iterator[Sample]:
        try:
            yield from self._read(self._what)
        except _READ_ERRORS as exc:
            raise SourceError(f"{self._what} failed: {ffmpeg_reason(exc)}") from None
        if not self._stop.is_set():
            raise SourceError(f"{self._what} stopped delivering frames")


class RtspVideoSource(_ContainerSource):
    """A camera stream; a drop (error, end, or silence for timeout_s) reconnects with backoff.

    The first connection is made by the constructor and fails with SourceError, so a wrong
    URL is reported at start-up; after that the source only ends when stopped.
    """

    def __init__(
        self,
        cfg: RtspSource,
        *,
        camera: str | None = None,
        audio: bool = False,
        decode: DecodeConfig | None = None,
    ) -> None:
        super().__init__(camera=camera, audio=audio)
        self._decode_cfg = decode
        self.cfg = cfg
        self.url = redact_url(cfg.url)  # the only spelling of the URL that may be logged
        self._attach(connect(cfg.url, cfg.timeout_s), self.url)

    def samples(self) -> Iterator[Sample]:
        backoff = Backoff(self.cfg.reconnect_initial_s, self.cfg.reconnect_max_s)
        attempt = 0
        while not self._stop.is_set():
            if self._container is None:
                attempt += 1
                if not self._reconnect(attempt, backoff.next_delay()):
                    continue
            reason = "end of stream"
            try:
                for sample in self._read(self.url):
                    if attempt:
                        backoff.reset()
                        attempt = 0
                    yield sample
            except _READ_ERRORS as exc:
                reason = redact_text(ffmpeg_reason(exc), self.cfg.url)
            if self._stop.is_set():
                return
            log.warning("capture.stream_dropped", camera=self.camera, url=self.url, error=reason)
            assert self._container is not None  # noqa: S101 - _read ran on it
            self._container.close()
            self._container = None

    def _reconnect(self, attempt: int, delay: float) -> bool:
        log.info(
            "capture.reconnecting", camera=self.camera, url=self.url, attempt=attempt, delay=delay
        )
        if self._stop.wait(delay):
            return False
        try:
            container = connect(self.cfg.url, self.cfg.timeout_s)
        except SourceError as exc:
            log.warning(
                "capture.reconnect_failed",
                camera=self.camera,
                url=self.url,
                attempt=attempt,
                error=str(exc),
            )
            return False
        self._attach(container, self.url)
        self._clock.rebase()
        log.info("capture.reconnected", camera=self.camera, url=self.url, attempt=attempt)
        return True


def open_source(
    cfg: SourceConfig,
    *,
    camera: str | None = None,
    audio: bool = False,
    decode: DecodeConfig | None = None,
) -> VideoSource:
    """Open the source `cfg` describes; SourceError (with a clear message) when it can't be.

    `camera` names the camera in log lines. `audio`: the camera's `audio` setting; its
    samples then carry the camera's audio as AAC, when the source has any (else a warning,
    and video only). `decode`: the camera's `decode` setting (hardware decode, opt-in;
    capture/hwaccel.py); synthetic scenes are rendered, not decoded, and ignore it.
    """
    if isinstance(cfg, FileSource):
        return FileVideoSource(cfg, camera=camera, audio=audio, decode=decode)
    if isinstance(cfg, RtspSource):
        return RtspVideoSource(cfg, camera=camera, audio=audio, decode=decode)
    if isinstance(cfg, V4l2Config):
        return V4l2VideoSource(cfg, camera=camera, audio=audio, decode=decode)
    # Deferred: scene rendering is test/benchmark code a camera agent never loads.
    from doorwarden.agent.capture.synthetic import SyntheticVideoSource  # noqa: PLC0415

    return SyntheticVideoSource(cfg, camera=camera, audio=audio)
