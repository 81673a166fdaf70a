"""Where a camera's two-way talk comes out (`talk:` in a camera's configuration; issue 18,
docs/backchannel.md).

Apart from models.py to keep each file small; the same rules: a title and a description
on every field, unknown keys rejected.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Codec = Literal["pcmu", "pcma", "aac"]
CODECS: tuple[Codec, ...] = ("pcmu", "pcma", "aac")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BackchannelTalk(Strict):
    kind: Literal["backchannel"] = Field(
        title="Kind",
        description="The camera's own speaker, through its ONVIF audio backchannel (RTSP).",
    )
    url: str | None = Field(
        None,
        title="URL",
        description="rtsp://user:pass@host:554/path of the stream that offers the "
        "backchannel; null: the camera's source URL (an rtsp:// source).",
        pattern=r"^rtsp://",
    )
    codecs: list[Codec] = Field(
        default_factory=lambda: list(CODECS),
        min_length=1,
        title="Codecs",
        description="What to send, in order of preference, among what the camera offers: "
        "pcmu, pcma (G.711, 8 kHz), aac (MPEG4-GENERIC).",
    )
    timeout_s: float = Field(
        5.0,
        gt=0,
        le=60,
        title="Timeout (s)",
        description="The camera must answer each RTSP request, and take audio, within this.",
    )


class SpeakerTalk(Strict):
    kind: Literal["speaker"] = Field(
        title="Kind",
        description="A speaker on this machine (needs `sounddevice`: the agent-talk extra).",
    )
    device: str | int | None = Field(
        None,
        title="Device",
        description="The PortAudio output device, by name or index "
        "(`python -m sounddevice` lists them); null: the default.",
    )


TalkConfig = Annotated[BackchannelTalk | SpeakerTalk, Field(discriminator="kind")]
