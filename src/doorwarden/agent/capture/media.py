"""Types shared by the agent's stages: what a source yields and what it describes."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av


@dataclass(frozen=True)
class StreamInfo:
    """The video stream of a source, as the recorder needs it for stream copy."""

    width: int
    height: int
    fps: float
    time_base: Fraction
    codec: str  # e.g. "h264"
    # The demuxer's stream, when there is one: lets the recorder stream-copy packets.
    stream: av.video.stream.VideoStream | None = field(default=None, compare=False, repr=False)


@dataclass
class Sample:
    """One demuxed packet and the frames decoded from it (often one, sometimes none).

    `time` is seconds on the source's own clock, increasing, starting near 0; after a
    reconnect or a loop it keeps increasing (sources rebase it), so stages never see time
    go backwards.
    """

    packet: av.Packet[Any] | None
    frames: list[av.VideoFrame]
    time: float
    keyframe: bool


class SourceError(Exception):
    """The source cannot be read (missing file, corrupt input, refused connection)."""
