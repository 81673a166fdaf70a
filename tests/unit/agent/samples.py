"""Test video for the recorder and privacy tests: made with PyAV, read back into Samples.

Each frame carries its own index as a bar code along the top edge (10 bits, white/black
blocks), so a test can tell exactly which source frames a stored clip contains, and a
bright coloured square moves across the picture so masks have something to hide.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from doorwarden.agent.capture.media import Sample, StreamInfo

BITS = 10
BAR_W = 16
BAR_H = 8
SQUARE = 48
SQUARE_RGB = (250, 40, 200)  # saturated magenta: strong chroma, so a chroma leak shows

RGB = npt.NDArray[np.uint8]


def draw(index: int, width: int, height: int) -> RGB:
    img = np.full((height, width, 3), 70, np.uint8)
    # The square sweeps left to right and back, along the picture's middle band.
    span = width - SQUARE
    x = index * 7 % (2 * span)
    x = x if x < span else 2 * span - x
    y = height // 2 - SQUARE // 2
    img[y : y + SQUARE, x : x + SQUARE] = SQUARE_RGB
    for bit in range(BITS):
        on = (index >> bit) & 1
        img[:BAR_H, bit * BAR_W : (bit + 1) * BAR_W] = 255 if on else 0
    return img


def read_index(rgb: RGB) -> int:
    index = 0
    for bit in range(BITS):
        block = rgb[2 : BAR_H - 2, bit * BAR_W + 4 : (bit + 1) * BAR_W - 4]
        if block.mean() > 128:
            index |= 1 << bit
    return index


def make_video(
    path: Path,
    *,
    width: int = 320,
    height: int = 240,
    fps: int = 10,
    seconds: float = 10,
    gop: int = 10,
    bframes: int = 0,
) -> Path:
    """An H.264 MP4 with a keyframe exactly every `gop` frames."""
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream(
            "libx264",
            rate=fps,
            options={
                "g": str(gop),
                "keyint_min": str(gop),
                "sc_threshold": "0",
                "bf": str(bframes),
                "preset": "ultrafast" if bframes == 0 else "fast",
            },
        )
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        for i in range(round(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(draw(i, width, height), format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


@dataclass
class Source:
    info: StreamInfo
    samples: list[Sample]


@contextmanager
def read_samples(path: Path) -> Iterator[Source]:
    """Demux and decode like a capture source: one Sample per packet, time from 0, rising.

    The container stays open inside the block: the recorder stream-copies from its stream.
    """
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        info = StreamInfo(
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            fps=float(stream.average_rate or 10),
            time_base=stream.time_base or Fraction(1, 90000),
            codec=stream.codec_context.name,
            stream=stream,
        )
        samples: list[Sample] = []
        first: int | None = None
        for packet in container.demux(stream):
            frames = list(packet.decode())
            if packet.size == 0 or packet.dts is None:
                if samples:
                    samples[-1].frames.extend(frames)  # the decoder's flush
                continue
            first = packet.dts if first is None else first
            t = float((packet.dts - first) * packet.time_base)
            samples.append(Sample(packet, frames, t, packet.is_keyframe))
        yield Source(info, samples)


@dataclass
class Clip:
    codec: str
    pix_fmt: str
    indices: list[int]
    frames: list[RGB]
    packets: list[bytes]
    keyframes: list[bool]
    duration: float


def decode_clip(path: Path) -> Clip:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        codec = stream.codec_context.name
        pix_fmt = stream.codec_context.pix_fmt or ""
        frames: list[RGB] = []
        packets: list[bytes] = []
        keyframes: list[bool] = []
        for packet in container.demux(stream):
            if packet.size:
                packets.append(bytes(packet))
                keyframes.append(packet.is_keyframe)
            frames.extend(f.to_ndarray(format="rgb24") for f in packet.decode())
        duration = float(stream.duration * stream.time_base) if stream.duration else 0.0
    return Clip(
        codec, pix_fmt, [read_index(f) for f in frames], frames, packets, keyframes, duration
    )


def top_level_boxes(path: Path) -> list[str]:
    """The MP4's top-level box types in file order (faststart puts moov before mdat)."""
    data = path.read_bytes()
    boxes, pos = [], 0
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8].decode("latin-1")
        if size == 1:
            size = int.from_bytes(data[pos + 8 : pos + 16], "big")
        boxes.append(kind)
        if size < 8:
            break
        pos += size
    return boxes
