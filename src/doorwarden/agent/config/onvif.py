"""A camera's ONVIF connection and the events taken from it (`onvif:` in a camera's
configuration; issue 19, docs/onvif.md).

Apart from models.py to keep each file small; the same rules: a title and a description
on every field, unknown keys rejected. The password is best kept in a file
(`password_file`, read when a subscription starts, so a rotated file is picked up)
rather than in the configuration.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MOTION_TOPICS = [
    "VideoSource/MotionAlarm",
    "RuleEngine/CellMotionDetector/Motion",
    "RuleEngine/MotionRegionDetector/Motion",
    "RuleEngine/MyRuleDetector/Motion",
    "MyMotionDetectorRule",
]
TAMPER_TOPICS = [
    "VideoSource/GlobalSceneChange",
    "VideoSource/ImageTooDark",
    "VideoSource/ImageTooBlurry",
    "VideoSource/ImageTooBright",
    "RuleEngine/TamperDetector",
]
DOORBELL_TOPICS = [
    "Device/Trigger/DigitalInput",
    "RuleEngine/MyRuleDetector/Visitor",
    "Doorbell",
    "Visitor",
]
MAX_PASSWORD_BYTES = 4096


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Topics = list[str]


class OnvifEvents(Strict):
    motion: bool = Field(
        True,
        title="Motion events",
        description="The camera's own motion events record a clip labelled onvif-motion "
        "beside the agent's motion detection (as long as the camera reports motion), "
        "when the household's mode records.",
    )
    tamper: bool = Field(
        True,
        title="Tamper events",
        description="Tamper events (the scene changed, the image too dark or blurred: "
        "covered, sprayed, turned away) record a clip labelled tamper, whatever the "
        "mode, and log a warning.",
    )
    doorbell: bool = Field(
        False,
        title="Doorbell events",
        description="Presses (doorbell_topics) ring this camera's doorbell as `ring.onvif` "
        "would, from this one subscription; ignored when `ring.onvif` is set (it has "
        "its own). Off by default: a digital input may be wired to something else.",
    )
    motion_topics: Topics = Field(
        default_factory=lambda: list(MOTION_TOPICS),
        title="Motion topics",
        description="An event whose topic contains one of these (prefixes ignored, "
        "case-insensitive) is motion; its state (IsMotion, State) says start or end.",
    )
    tamper_topics: Topics = Field(
        default_factory=lambda: list(TAMPER_TOPICS),
        title="Tamper topics",
        description="An event whose topic contains one of these is tampering.",
    )
    doorbell_topics: Topics = Field(
        default_factory=lambda: list(DOORBELL_TOPICS),
        title="Doorbell topics",
        description="An event whose topic contains one of these and whose state turns "
        "true is a press.",
    )
    input_token: str | None = Field(
        None,
        title="Doorbell input token",
        description="Only this digital input (the event's InputToken) is a press; null: any.",
    )

    @field_validator("motion_topics", "tamper_topics", "doorbell_topics")
    @classmethod
    def _topics(cls, topics: list[str]) -> list[str]:
        if len(topics) > 32 or any(not t.strip() or len(t) > 256 for t in topics):
            raise ValueError("at most 32 topics, each 1 to 256 characters")
        return topics


class OnvifConfig(Strict):
    host: str = Field(
        min_length=1,
        max_length=253,
        title="Host",
        description="The camera's address (`doorwarden agent discover` finds it).",
        pattern=r"^[A-Za-z0-9.:\[\]-]+$",
    )
    port: int = Field(80, ge=1, le=65535, title="Port", description="Its ONVIF (HTTP) port.")
    username: str | None = Field(
        None, max_length=128, title="User name", description="An ONVIF user of the camera."
    )
    password: str | None = Field(
        None,
        repr=False,
        max_length=256,
        title="Password",
        description="Its password; prefer password_file, which keeps it out of this file.",
    )
    password_file: Path | None = Field(
        None,
        title="Password file",
        description="An absolute path to a file holding the password (one line; keep it "
        "private). Read at each (re)subscription.",
    )
    events: OnvifEvents = Field(
        default_factory=OnvifEvents,
        title="Events",
        description="Which of the camera's events trigger recordings.",
    )
    reconnect_initial_s: float = Field(
        2.0,
        gt=0,
        le=600,
        title="First resubscribe delay (s)",
        description="After a failed or lost subscription, wait this long before trying again.",
    )
    reconnect_max_s: float = Field(
        120.0,
        gt=0,
        le=3600,
        title="Longest resubscribe delay (s)",
        description="Delays double after each failure up to this.",
    )

    @field_validator("password_file")
    @classmethod
    def _absolute(cls, path: Path | None) -> Path | None:
        # The camera's YAML may be read from any working directory: a relative path
        # would name a different file depending on where the agent was started.
        if path is not None and not path.expanduser().is_absolute():
            raise ValueError("password_file must be an absolute path")
        return path.expanduser() if path is not None else None

    @model_validator(mode="after")
    def _one_password(self) -> OnvifConfig:
        if self.password is not None and self.password_file is not None:
            raise ValueError("give password or password_file, not both")
        if (self.password is not None or self.password_file is not None) and not self.username:
            raise ValueError("a password needs a username")
        if self.reconnect_initial_s > self.reconnect_max_s:
            raise ValueError("reconnect_initial_s must not exceed reconnect_max_s")
        return self

    def secret(self) -> str | None:
        """The password: inline, or read from password_file (OSError, ValueError if the
        file cannot be read or is not a password)."""
        if self.password_file is None:
            return self.password
        return read_password_file(self.password_file)


def read_password_file(path: Path) -> str:
    """The first line of `path`, without its line end: OSError when unreadable,
    ValueError when empty or too large to be a password."""
    with path.open("rb") as fh:
        raw = fh.read(MAX_PASSWORD_BYTES + 1)
    if len(raw) > MAX_PASSWORD_BYTES:
        raise ValueError(f"{path} is too large to be a password")
    text = raw.decode("utf-8").splitlines()
    if not text or not text[0]:
        raise ValueError(f"{path} is empty")
    return text[0]
