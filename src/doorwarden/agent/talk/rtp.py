"""Talk audio as RTP payloads for a camera's backchannel: G.711 (RFC 3551: PCMU/PCMA,
8 kHz, 20 ms a packet) and AAC (RFC 3640 MPEG4-GENERIC, one access unit a packet), and
the RTP header around them (RFC 3550)."""

from __future__ import annotations

import secrets
import struct
from collections.abc import Iterator

import av
from av.audio.codeccontext import AudioCodecContext

from doorwarden.agent.talk.output import TalkError
from doorwarden.agent.talk.sdp import Format

G711_PACKET_MS = 20  # the RTP profile's default packet time


class RtpPacketiser:
    """Numbers packets: a random SSRC, sequence number and timestamp origin (RFC 3550 §5.1)."""

    def __init__(self, payload_type: int) -> None:
        self.payload_type = payload_type
        self.ssrc = secrets.randbits(32)
        self.sequence = secrets.randbits(16)
        self.origin = secrets.randbits(32)

    def packet(self, payload: bytes, timestamp: int, *, marker: bool) -> bytes:
        header = struct.pack(
            "!BBHII",
            0x80,  # version 2, no padding, no extension, no CSRC
            (0x80 if marker else 0) | self.payload_type,
            self.sequence,
            (self.origin + timestamp) & 0xFFFFFFFF,
            self.ssrc,
        )
        self.sequence = (self.sequence + 1) & 0xFFFF
        return header + payload


class Encoder:
    """Frames in the format `audio_format` names; out come (payload, samples) pairs."""

    audio_format: tuple[str, str, int]

    def encode(self, frame: av.AudioFrame | None) -> Iterator[tuple[bytes, int]]:
        raise NotImplementedError


class G711Encoder(Encoder):
    """PCMU or PCMA, one byte a sample, cut into 20 ms payloads."""

    def __init__(self, codec: str) -> None:
        self.audio_format = ("s16", "mono", 8000)
        self._context = _encoder("pcm_mulaw" if codec == "pcmu" else "pcm_alaw", 8000, "mono")
        self._pending = b""
        self._size = 8000 * G711_PACKET_MS // 1000

    def encode(self, frame: av.AudioFrame | None) -> Iterator[tuple[bytes, int]]:
        if frame is not None:
            frame.pts = None
            for packet in self._context.encode(frame):
                self._pending += bytes(packet)
        while len(self._pending) >= self._size or (frame is None and self._pending):
            payload, self._pending = self._pending[: self._size], self._pending[self._size :]
            yield payload, len(payload)


class AacEncoder(Encoder):
    """AAC-LC at the camera's rate and channels, each access unit with its RFC 3640 AU
    header (AAC-hbr: 13-bit size, 3-bit index, as the fmtp says)."""

    def __init__(self, fmt: Format) -> None:
        channels = fmt.channels if fmt.channels in (1, 2) else 1
        layout = "mono" if channels == 1 else "stereo"
        self.audio_format = ("fltp", layout, fmt.clock_rate)
        lbr = fmt.fmtp.get("mode", "").lower() == "aac-lbr"
        self.size_bits = _int(fmt.fmtp.get("sizelength"), 6 if lbr else 13)
        self.index_bits = _int(fmt.fmtp.get("indexlength"), 2 if lbr else 3)
        if (self.size_bits + self.index_bits) % 8 or not 0 < self.size_bits <= 16:
            raise TalkError("the camera asks for an AAC packet layout this agent cannot make")
        bit_rate = 32_000 * channels if fmt.clock_rate <= 24_000 else 64_000 * channels
        self._context = _encoder("aac", fmt.clock_rate, layout, bit_rate)

    def encode(self, frame: av.AudioFrame | None) -> Iterator[tuple[bytes, int]]:
        if frame is not None:
            frame.pts = None
        for packet in self._context.encode(frame):
            access_unit = bytes(packet)
            if len(access_unit) >= 1 << self.size_bits:
                continue  # cannot be described in this mode's AU header; the next one can
            header_bits = self.size_bits + self.index_bits
            header = (len(access_unit) << self.index_bits).to_bytes(header_bits // 8, "big")
            yield struct.pack("!H", header_bits) + header + access_unit, 1024


def encoder_for(fmt: Format) -> Encoder:
    if fmt.codec in ("pcmu", "pcma"):
        if fmt.clock_rate != 8000 or fmt.channels != 1:
            raise TalkError("the camera asks for G.711 at a rate other than 8 kHz mono")
        return G711Encoder(fmt.codec)
    return AacEncoder(fmt)


def _encoder(name: str, rate: int, layout: str, bit_rate: int = 0) -> AudioCodecContext:
    context = av.CodecContext.create(name, "w")
    assert isinstance(context, AudioCodecContext)  # noqa: S101 - these codecs are audio
    context.sample_rate = rate
    context.layout = layout
    context.format = "fltp" if name == "aac" else "s16"
    if bit_rate:
        context.bit_rate = bit_rate
    try:
        context.open()
    except av.FFmpegError as exc:
        raise TalkError(f"this agent cannot encode the camera's audio format ({exc})") from None
    return context


def _int(text: str | None, default: int) -> int:
    return int(text) if text is not None and text.isdigit() else default
