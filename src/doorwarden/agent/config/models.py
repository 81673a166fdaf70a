"""Agent configuration: one YAML or TOML file, validated by these models.

Every field has a title and a description (the docs and `--check-config` come from
them), and unknown keys are rejected. Polygons are in normalised image coordinates
(0..1 from the top-left), so a zone drawn once survives a resolution change.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from doorwarden.agent.config.mqtt import MqttConfig
from doorwarden.agent.config.onvif import OnvifConfig
from doorwarden.agent.config.ring import RingConfig
from doorwarden.agent.config.substream import check_substream
from doorwarden.agent.config.talk import TalkConfig

Point = tuple[Annotated[float, Field(ge=0, le=1)], Annotated[float, Field(ge=0, le=1)]]


Polygon = Annotated[list[Point], Field(min_length=3, max_length=64)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileSource(Strict):
    kind: Literal["file"] = Field(title="Kind", description="Play a local video file.")
    path: Path = Field(title="Path", description="Video file to read (any container FFmpeg reads).")
    pace: bool = Field(
        True,
        title="Real-time pacing",
        description="Deliver frames at the file's frame rate, like a live camera.",
    )
    loop: bool = Field(False, title="Loop", description="Start again at the end of the file.")


class RtspSource(Strict):
    kind: Literal["rtsp"] = Field(title="Kind", description="An RTSP or RTSPS camera stream.")
    url: str = Field(
        title="URL",
        description="rtsp://user:pass@host:554/path or rtsps://...",
        pattern=r"^rtsps?://",
    )
    reconnect_initial_s: float = Field(
        1.0,
        gt=0,
        le=60,
        title="First reconnect delay (s)",
        description="Wait before the first reconnect attempt.",
    )
    reconnect_max_s: float = Field(
        30.0,
        gt=0,
        le=600,
        title="Longest reconnect delay (s)",
        description="Delays double after each failure up to this.",
    )
    timeout_s: float = Field(
        10.0,
        gt=0,
        le=120,
        title="Read timeout (s)",
        description="No data for this long counts as a dropped stream.",
    )


class V4l2Source(Strict):
    kind: Literal["v4l2"] = Field(title="Kind", description="A local V4L2 capture device.")
    device: str = Field("/dev/video0", title="Device", description="Device node.")
    width: int | None = Field(None, ge=16, le=7680, title="Width", description="Requested width.")
    height: int | None = Field(
        None, ge=16, le=4320, title="Height", description="Requested height."
    )
    fps: float | None = Field(None, gt=0, le=240, title="Frame rate", description="Requested rate.")


class SyntheticSource(Strict):
    kind: Literal["synthetic"] = Field(
        title="Kind", description="Generated H.264 video with a scripted scene (tests, benchmarks)."
    )
    width: int = Field(640, ge=64, le=3840, title="Width", description="Frame width.")
    height: int = Field(360, ge=64, le=2160, title="Height", description="Frame height.")
    fps: float = Field(10.0, gt=0, le=60, title="Frame rate", description="Frames per second.")
    duration_s: float = Field(10.0, gt=0, le=3600, title="Duration (s)", description="Length.")
    scene: Literal["static", "object", "lights", "noise", "sunset"] = Field(
        "object",
        title="Scene",
        description="static: nothing happens; object: a box enters at enter_at_s; lights: the "
        "whole image brightens at enter_at_s; noise: sensor noise only; sunset: slow dimming.",
    )
    enter_at_s: float = Field(
        3.0, ge=0, title="Event time (s)", description="When the scene's event starts."
    )
    seed: int = Field(0, title="Seed", description="Random seed for noise.")
    pace: bool = Field(False, title="Real-time pacing", description="Deliver at the frame rate.")
    audio: bool = Field(
        False,
        title="Tone track",
        description="An audio track: a 1 kHz beep of 0.1 s every beep_every_s seconds, "
        "shown at the same instant by a white square in the top-left corner (to measure "
        "audio/video sync). Carried only when the camera's `audio` is on.",
    )
    beep_every_s: float = Field(
        2.0, ge=0.5, le=60, title="Beep interval (s)", description="Time between beeps."
    )


SourceConfig = Annotated[
    FileSource | RtspSource | V4l2Source | SyntheticSource, Field(discriminator="kind")
]


HwAccel = Literal["off", "auto", "vaapi", "v4l2m2m", "videotoolbox", "cuda", "qsv"]


class DecodeConfig(Strict):
    """How the camera's video is decoded (capture/hwaccel.py). Hardware decode is opt-in:
    a failure to open it, or mid-stream, falls back to software with one log line."""

    hwaccel: HwAccel = Field(
        "off",
        title="Hardware decode",
        description="off: software (FFmpeg's threads); auto: the first of vaapi, v4l2m2m, "
        "videotoolbox, cuda, qsv that opens; or one of them by name (vaapi: Intel/AMD, "
        "v4l2m2m: Raspberry Pi, videotoolbox: macOS, cuda: NVIDIA, qsv: Intel Quick Sync). "
        "When it cannot be used the camera decodes in software and says so in the log.",
    )
    device: str | None = Field(
        None,
        title="Decode device",
        description="The accelerator's device, e.g. /dev/dri/renderD128 (vaapi), "
        "/dev/video10 (v4l2m2m) or 0 (cuda); null: its default.",
        max_length=200,
    )


class MotionConfig(Strict):
    analysis_fps: float = Field(
        5.0,
        gt=0,
        le=30,
        title="Analysis rate (frames/s)",
        description="How many frames a second are analysed; below the stream rate.",
    )
    analysis_width: int = Field(
        320,
        ge=64,
        le=1280,
        title="Analysis width (px)",
        description="Width of the small grey copy motion is computed on.",
    )
    threshold: int = Field(
        25,
        ge=1,
        le=255,
        title="Pixel threshold",
        description="Luma difference from the background that counts as changed.",
    )
    min_area: float = Field(
        0.002,
        gt=0,
        le=1,
        title="Minimum area",
        description="Smallest changed region, as a fraction of the image.",
    )
    sensitivity: float = Field(
        0.5,
        ge=0,
        le=1,
        title="Sensitivity",
        description="0: only large, sustained motion; 1: the smallest change.",
    )
    zones: list[Polygon] = Field(
        default_factory=list,
        title="Motion zones",
        description="Only motion inside these polygons counts; empty means the whole image.",
    )
    ignore: list[Polygon] = Field(
        default_factory=list,
        title="Ignore areas",
        description="Motion inside these polygons never counts (a tree, a road).",
    )


class RecordConfig(Strict):
    pre_roll_s: float = Field(
        3.0,
        ge=0,
        le=30,
        title="Pre-roll (s)",
        description="Video kept from before the trigger (from the keyframe before it).",
    )
    post_roll_s: float = Field(
        5.0,
        ge=0,
        le=120,
        title="Post-roll (s)",
        description="Recording continues this long after motion ends.",
    )
    min_clip_s: float = Field(
        3.0, ge=0, le=600, title="Minimum clip (s)", description="Shorter events are extended."
    )
    max_clip_s: float = Field(
        60.0,
        gt=0,
        le=3600,
        title="Maximum clip (s)",
        description="A longer event is split into several clips.",
    )
    cooldown_s: float = Field(
        5.0,
        ge=0,
        le=600,
        title="Cool-down (s)",
        description="After a clip ends, no new event starts for this long.",
    )

    @model_validator(mode="after")
    def _lengths(self) -> RecordConfig:
        if self.min_clip_s > self.max_clip_s:
            raise ValueError("min_clip_s must not exceed max_clip_s")
        return self


class DetectorKind(StrEnum):
    none = "none"
    nanodet = "nanodet"
    hog = "hog"
    onnx = "onnx"


class DetectConfig(Strict):
    kind: DetectorKind = Field(
        DetectorKind.nanodet,
        title="Detector",
        description="nanodet: the bundled NanoDet COCO model (people); hog: OpenCV's "
        "people detector (bundled, weaker on small or partly hidden people); onnx: a "
        "YOLO-style model file of your own; none.",
    )
    model_path: Path | None = Field(
        None, title="ONNX model", description="Path to the model (onnx only)."
    )
    labels: list[str] = Field(
        default_factory=lambda: ["person"],
        title="Labels",
        description="Class names of the model's outputs, in order (onnx only).",
    )
    min_confidence: float = Field(
        0.5, ge=0, le=1, title="Minimum confidence", description="Weaker detections are dropped."
    )
    alert: Literal["any_motion", "person_only"] = Field(
        "any_motion",
        title="Alert mode",
        description="person_only: keep only events in which a person was detected.",
    )

    @model_validator(mode="after")
    def _model(self) -> DetectConfig:
        if (self.kind is DetectorKind.onnx) != (self.model_path is not None):
            raise ValueError("model_path is required for kind 'onnx', and only for it")
        # person_only without anything that can see a person would silently drop every event.
        if self.alert == "person_only" and (
            self.kind is DetectorKind.none
            or (self.kind is DetectorKind.onnx and "person" not in self.labels)
        ):
            raise ValueError("alert 'person_only' needs a detector that reports 'person'")
        return self


class CameraConfig(Strict):
    name: str = Field(
        title="Name",
        description="Unique within this agent, e.g. front-door.",
        pattern=r"^[a-z0-9][a-z0-9-]{0,62}$",
    )
    source: SourceConfig = Field(title="Source", description="Where the video comes from.")
    decode: DecodeConfig = Field(
        default_factory=DecodeConfig,
        title="Decoding",
        description="Software or hardware decode of this camera's streams.",
    )
    substream: SourceConfig | None = Field(
        None,
        title="Sub-stream",
        description="The camera's lower-resolution stream (its ONVIF sub profile), e.g. "
        "640x360: motion and person detection, thumbnails and snapshots come from it, "
        "clips and live view are the main stream's packets, so the main stream is not "
        "decoded at all unless privacy zones need it re-encoded. Same family as source "
        "(rtsp/v4l2 with rtsp/v4l2; file/synthetic with the same scene). When it is down, "
        "detection falls back to the main stream until it returns (docs/substreams.md). "
        "null: everything from source.",
    )
    motion: MotionConfig = Field(
        default_factory=MotionConfig, title="Motion detection", description="Motion settings."
    )
    privacy_zones: list[Polygon] = Field(
        default_factory=list,
        title="Privacy zones",
        description="Blacked out in every clip, thumbnail and live frame; "
        "the pixels never leave the agent.",
    )
    record: RecordConfig = Field(
        default_factory=RecordConfig, title="Recording", description="Clip settings."
    )
    detect: DetectConfig = Field(
        default_factory=DetectConfig, title="Detection", description="Smart detection."
    )
    audio: bool = Field(
        False,
        title="Audio",
        description="Record the camera's sound in clips and carry it to live view (AAC; "
        "G.711 and Opus are transcoded). Off by default: recording sound is regulated more "
        "strictly than video in many places (two-party consent laws for conversations). "
        "Privacy zones hide video only; sound is recorded whole.",
    )
    ring: RingConfig = Field(
        default_factory=RingConfig,
        title="Doorbell",
        description="Where presses of this camera's doorbell come from (`doorwarden agent "
        "ring CAMERA` always works). A press records a clip labelled ring, whatever the mode.",
    )
    talk: TalkConfig | None = Field(
        None,
        title="Two-way talk",
        description="Where a resident's voice comes out when they press Talk: the camera's "
        "ONVIF audio backchannel or a speaker on this machine (docs/backchannel.md); "
        "null: talk is off for this camera.",
    )
    onvif: OnvifConfig | None = Field(
        None,
        title="ONVIF",
        description="The camera's ONVIF service: its motion, tamper (and doorbell) events "
        "trigger recordings beside the agent's own motion detection (docs/onvif.md; "
        "needs `onvif-zeep-async`). null: no ONVIF.",
    )

    @model_validator(mode="after")
    def _substream(self) -> CameraConfig:
        if self.substream is not None:
            check_substream(self.source, self.substream)  # config/substream.py
        return self


GIB = 1024**3
KIB = 1024


class UploadConfig(Strict):
    max_spool_bytes: int = Field(
        2 * GIB,
        ge=1024 * KIB,
        title="Sealed spool limit (bytes)",
        description="When sealed clips waiting for upload take more than this, the oldest are "
        "deleted (logged; the server sees the gap in the chain and alerts the owner).",
    )
    part_bytes: int = Field(
        512 * KIB,
        ge=KIB,
        le=64 * 1024 * KIB,
        title="Upload part size (bytes)",
        description="A sealed clip is sent in parts of this size; an interrupted upload "
        "resumes after the last part the server received. A server that takes only "
        "smaller parts says so, and its limit is used.",
    )
    backoff_initial_s: float = Field(
        1.0,
        gt=0,
        le=600,
        title="First retry delay (s)",
        description="Wait this long after a network error or server failure before retrying.",
    )
    backoff_max_s: float = Field(
        60.0,
        gt=0,
        le=3600,
        title="Longest retry delay (s)",
        description="Retry delays double after each failure up to this.",
    )
    timeout_s: float = Field(
        30.0,
        gt=0,
        le=600,
        title="Request timeout (s)",
        description="A request to the server that sees no progress for this long is retried.",
    )

    @model_validator(mode="after")
    def _backoff(self) -> UploadConfig:
        if self.backoff_initial_s > self.backoff_max_s:
            raise ValueError("backoff_initial_s must not exceed backoff_max_s")
        return self


class AgentConfig(Strict):
    spool_dir: Path = Field(
        Path("spool"),
        title="Spool directory",
        description="Finished clips wait here, crash-safe, until uploaded.",
    )
    spool_max_bytes: int = Field(
        2 * GIB,
        ge=1024 * KIB,
        title="Spool limit for unsealed clips (bytes)",
        description="Clips that are not sealed for upload (the agent is not paired, the "
        "camera was removed, or the plan stores nothing) take at most this; beyond it the "
        "oldest are deleted, with a warning. Sealed clips have their own limit "
        "(upload.max_spool_bytes).",
    )
    spool_min_free_bytes: int = Field(
        64 * 1024 * KIB,
        ge=0,
        title="Free space kept on the spool's disk (bytes)",
        description="Before a clip starts recording, and when a write fails for a full disk, "
        "the oldest clips (sealed first, then unsealed) are deleted until this much is free "
        "again (at most a quarter of the disk), so the newest clips are kept. Each deletion "
        "of a clip not yet delivered is logged, shown by `doorwarden agent status` and "
        "reported to the server; 0 only reacts to full-disk errors.",
    )
    state_dir: Path = Field(
        Path("state"),
        title="State directory",
        description="The device key and pairing (`doorwarden agent pair`); keep it private.",
    )
    upload: UploadConfig = Field(
        default_factory=UploadConfig,
        title="Upload",
        description="Delivering sealed clips to the server (once paired).",
    )
    cameras: list[CameraConfig] = Field(
        min_length=1, title="Cameras", description="The cameras this agent runs."
    )
    mqtt: MqttConfig | None = Field(
        None,
        title="MQTT",
        description="Publish motion, person, rings, finished clips and availability to the "
        "home's MQTT broker, with Home Assistant discovery, and take its commands "
        "(docs/mqtt.md; needs `aiomqtt`: the agent-mqtt extra). null: no MQTT.",
    )

    @field_validator("cameras")
    @classmethod
    def _unique_names(cls, cameras: list[CameraConfig]) -> list[CameraConfig]:
        names = [c.name for c in cameras]
        if len(names) != len(set(names)):
            raise ValueError("camera names must be unique")
        return cameras
