"""Types shared by the agent's stages: what a source yields and what it describes."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av


@dataclass(frozen=True)
class AudioInfo:
    """A source's audio as it leaves capture: always AAC (copied, or transcoded to AAC-LC)."""

    sample_rate: int
    channels: int
    extradata: bytes  # the AAC AudioSpecificConfig, as an MP4's esds carries it
    source_codec: str  # what the camera sends, e.g. "aac", "pcm_mulaw", "opus"


@dataclass(frozen=True)
class AudioPacket:
    """One AAC packet (1024 samples per channel) and its time in seconds on the same
    clock as `Sample.time`."""

    packet: av.Packet[Any]
    time: float


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
    # The camera's audio, in AAC; None without audio, or with audio off for this camera.
    audio: AudioInfo | None = None


@dataclass
class Sample:
    """One demuxed video packet and the frames decoded from it (often one, sometimes none),
    with the camera's audio that arrived since the video packet before it.

    `time` is seconds on the source's own clock, increasing, starting near 0; after a
    reconnect or a loop it keeps increasing (sources rebase it), so stages never see time
    go backwards.
    """

    packet: av.Packet[Any] | None
    frames: list[av.VideoFrame]
    time: float
    keyframe: bool
    # The audio demuxed since the previous video packet (empty without audio).
    audio: list[AudioPacket] = field(default_factory=list)
    # Each frame's own time on the clock, where the decoder gave it one: a decoder with
    # frame threads hands a frame out a few packets after its own, and audio/video sync in
    # a re-encode needs when the frame is shown, not when the packet that released it came.
    frame_times: list[float] = field(default_factory=list)

    def frame_time(self, index: int, fps: float) -> float:
        """When frame `index` of `frames` is shown, on the source's clock."""
        if index < len(self.frame_times):
            return self.frame_times[index]
        return self.time + index / (fps or 10.0)


class SourceError(Exception):
    """The source cannot be read (missing file, corrupt input, refused connection)."""
