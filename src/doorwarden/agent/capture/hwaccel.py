"""Hardware video decode (opt-in, `CameraConfig.decode`), with software decode as the
fallback that loses no sample.

Why a decode context of our own for the hardware, next to the container's: the
container's stream keeps its software decoder (frame threads, as always) untouched and
unused while the hardware decodes, so when the hardware fails mid-stream it takes over at
the next keyframe with nothing to set up. The source still yields every demuxed packet
as a `Sample` whatever the decoder does (a packet whose frames are lost carries none), so
the recorder, which copies packets, loses nothing of an event in progress; only motion
analysis misses the frames between the failure and the next keyframe.

FFmpeg's accelerators come in two shapes: hwaccels (vaapi, videotoolbox, cuda, qsv) that
attach a device to the ordinary decoder, and V4L2 memory-to-memory, a decoder of its
own (`h264_v4l2m2m`, the Raspberry Pi's). Frames are downloaded to system memory by PyAV
(nv12 for 8-bit streams, which motion reads as it reads yuv420p).

Failure is said once per source, as `capture.hwaccel_fallback` (camera, accel, reason):
a warning when an accelerator was asked for by name, info for `auto` finding none
(`capture.hwaccel_none`). After a fallback the source stays in software, also across
reconnects: a decoder that failed once is not trusted again until the camera restarts.
"""

from __future__ import annotations

from typing import Any, Protocol, cast

import av
import structlog
from av.codec.context import CodecContext
from av.codec.hwaccel import HWAccel, hwdevices_available
from av.video.stream import VideoStream

from doorwarden.agent.capture.rtsp import ffmpeg_reason
from doorwarden.agent.config.models import DecodeConfig

log = structlog.get_logger("doorwarden.agent.capture.hwaccel")

# `auto` tries these in order: the common Linux boxes first, then macOS, then GPUs.
AUTO_ORDER = ("vaapi", "v4l2m2m", "videotoolbox", "cuda", "qsv")
# A damaged packet is the stream's fault, not the device's: the source skips it as it
# does in software; only this many in a row are taken for a failing decoder.
MAX_INVALID_IN_ROW = 3
_ERRORS = (av.FFmpegError, OSError, RuntimeError, ValueError)


class HwUnavailable(Exception):
    """The accelerator cannot be used here (the reason is the message)."""


class DecodeContext(Protocol):
    """What we use of PyAV's CodecContext (the boundary tests wrap)."""

    def decode(self, packet: Any = None) -> list[Any]: ...

    def flush_buffers(self) -> None: ...


def create_context(codec: str, hwaccel: HWAccel | None) -> DecodeContext:
    """PyAV's decoder context for `codec`, on `hwaccel`'s device when given."""
    # PyAV's stubs type decode() on the subclasses only: the Protocol says what we use.
    return cast(DecodeContext, CodecContext.create(codec, "r", hwaccel=hwaccel))


def open_hardware(stream: VideoStream, accel: str, device: str | None) -> DecodeContext:
    """An open decoder for `stream` on `accel`; HwUnavailable with the reason if not."""
    name = stream.codec_context.name
    if accel == "v4l2m2m":
        codec, hwaccel = f"{name}_v4l2m2m", None
        if codec not in av.codecs_available:
            raise HwUnavailable(f"this FFmpeg has no {codec} decoder")
    else:
        codec = name
        if accel not in hwdevices_available():
            raise HwUnavailable(f"this FFmpeg was built without {accel}")
        # No silent software inside FFmpeg: we want to know, and to say so.
        hwaccel = HWAccel(device_type=accel, device=device, allow_software_fallback=False)
    try:
        ctx = create_context(codec, hwaccel)
        extradata = stream.codec_context.extradata
        if extradata:
            ctx.extradata = extradata  # type: ignore[attr-defined]
        ctx.open()  # type: ignore[attr-defined]
    except _ERRORS as exc:
        raise HwUnavailable(_reason(exc)) from None
    if hwaccel is not None and not getattr(ctx, "is_hwaccel", True):
        raise HwUnavailable(f"{accel} cannot decode {name}")
    return ctx


def _reason(exc: BaseException) -> str:
    if isinstance(exc, av.FFmpegError):
        return ffmpeg_reason(exc)
    return str(exc) or type(exc).__name__


def describe(cfg: DecodeConfig | None) -> str:
    """What decode a camera with `cfg` asks for, in words (check-config), without opening
    a device: hardware is only known to work once a stream is decoded on it."""
    if cfg is None or cfg.hwaccel == "off":
        return "software"
    built = set(hwdevices_available())
    usable = [a for a in AUTO_ORDER if a in built or a == "v4l2m2m"]
    if cfg.hwaccel == "auto":
        if not usable:
            return "software (auto: this FFmpeg has no hardware decoders)"
        return f"auto: first that opens of {', '.join(usable)}, else software"
    where = f" on {cfg.device}" if cfg.device else ""
    if cfg.hwaccel not in usable:
        return f"software ({cfg.hwaccel} asked, but this FFmpeg was built without it)"
    return f"{cfg.hwaccel}{where}, software if it fails"


class Decoder:
    """Decodes one stream's packets: on the hardware while it works, else in software.

    `decode(None)` drains at the end of the stream; `flush()` after a seek (a looped file).
    The stream's own context stays the one to configure: its `skip_frame` (which the
    sub-stream feed turns to ALL while the main stream needs no pictures) is mirrored to
    the hardware context before each packet.
    """

    def __init__(
        self,
        stream: VideoStream,
        *,
        camera: str | None = None,
        hardware: DecodeContext | None = None,
        accel: str | None = None,
    ) -> None:
        self.stream = stream
        self.camera = camera
        self.accel = accel if hardware is not None else None  # in use now
        self.failed = False  # the hardware failed mid-stream: software from now on
        self._hw = hardware
        self._await_keyframe = False
        self._skip = "DEFAULT"
        self._invalid = 0  # damaged packets in a row

    def decode(self, packet: av.Packet[Any] | None) -> list[av.VideoFrame]:
        hw = self._hw
        if hw is None:
            if self._await_keyframe:
                if packet is None or not packet.is_keyframe:
                    return []  # software cannot start before a keyframe
                self._await_keyframe = False
            return self.stream.decode(packet)
        try:
            skip = self.stream.codec_context.skip_frame
            if skip != self._skip:
                hw.skip_frame = skip  # type: ignore[attr-defined]
                self._skip = skip
            frames = hw.decode(packet)
            self._invalid = 0
            return frames
        except av.InvalidDataError as exc:
            self._invalid += 1
            if self._invalid < MAX_INVALID_IN_ROW:
                raise  # the source skips this packet with a warning, as in software
            self._fall_back(f"{self._invalid} damaged packets in a row: {_reason(exc)}")
        except _ERRORS as exc:
            self._fall_back(_reason(exc))
        if packet is None:
            return []
        return self.decode(packet)  # in software, at once when this is a keyframe

    def flush(self) -> None:
        """Forget buffered packets (after a seek; the container flushes its own)."""
        if self._hw is not None:
            try:
                self._hw.flush_buffers()
            except _ERRORS as exc:
                self._fall_back(_reason(exc))

    def _fall_back(self, reason: str) -> None:
        log.warning(
            "capture.hwaccel_fallback",
            camera=self.camera,
            accel=self.accel,
            reason=reason,
            action="software decode from the next keyframe",
        )
        self._hw, self.accel, self.failed = None, None, True
        self._await_keyframe = True


def open_decoder(
    stream: VideoStream, cfg: DecodeConfig | None, *, camera: str | None = None
) -> Decoder:
    """The decoder `cfg` asks for on `stream`: hardware when it opens, else software
    (with the one log line). Never raises for a missing accelerator."""
    if cfg is None or cfg.hwaccel == "off":
        return Decoder(stream, camera=camera)
    if cfg.hwaccel == "auto":
        tried: dict[str, str] = {}
        for accel in AUTO_ORDER:
            try:
                ctx = open_hardware(stream, accel, cfg.device)
            except HwUnavailable as exc:
                tried[accel] = str(exc)
                continue
            log.info("capture.hwaccel", camera=camera, accel=accel, auto=True)
            return Decoder(stream, camera=camera, hardware=ctx, accel=accel)
        log.info("capture.hwaccel_none", camera=camera, tried=tried, action="software decode")
        return Decoder(stream, camera=camera)
    try:
        ctx = open_hardware(stream, cfg.hwaccel, cfg.device)
    except HwUnavailable as exc:
        log.warning(
            "capture.hwaccel_fallback",
            camera=camera,
            accel=cfg.hwaccel,
            reason=str(exc),
            action="software decode",
        )
        return Decoder(stream, camera=camera)
    log.info("capture.hwaccel", camera=camera, accel=cfg.hwaccel, device=cfg.device)
    return Decoder(stream, camera=camera, hardware=ctx, accel=cfg.hwaccel)
