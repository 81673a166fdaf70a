"""The part of an SDP (RFC 8866) a backchannel client needs: which audio media the camera
takes from us (ONVIF marks it `a=sendonly`, from the client's side), in which formats."""

from __future__ import annotations

from dataclasses import dataclass, field

# Static payload types (RFC 3551) a camera may list without an rtpmap line.
STATIC = {0: ("PCMU", 8000, 1), 8: ("PCMA", 8000, 1)}
CODECS = {"PCMU": "pcmu", "PCMA": "pcma", "MPEG4-GENERIC": "aac"}


@dataclass(frozen=True)
class Format:
    payload_type: int
    codec: str  # pcmu, pcma, aac
    clock_rate: int
    channels: int
    fmtp: dict[str, str]


@dataclass
class Media:
    kind: str  # audio, video, ...
    formats: list[int]
    direction: str = "sendrecv"
    control: str | None = None
    rtpmap: dict[int, tuple[str, int, int]] = field(default_factory=dict)
    fmtp: dict[int, dict[str, str]] = field(default_factory=dict)

    def format(self, payload_type: int) -> Format | None:
        name, rate, channels = self.rtpmap.get(payload_type) or STATIC.get(payload_type, ("", 0, 1))
        codec = CODECS.get(name.upper())
        if codec is None:
            return None
        params = self.fmtp.get(payload_type, {})
        if codec == "aac" and params.get("mode", "AAC-hbr").lower() not in ("aac-hbr", "aac-lbr"):
            return None  # CELP, generic: not audio we can make
        return Format(payload_type, codec, rate, channels, params)


@dataclass
class Sdp:
    control: str | None
    media: list[Media]

    def backchannel(self, preference: list[str]) -> tuple[Media, Format] | None:
        """The first `a=sendonly` audio media, in the codec first in `preference` that
        it offers; None when it has none we can send."""
        for media in self.media:
            if media.kind != "audio" or media.direction != "sendonly":
                continue
            offered = [f for f in map(media.format, media.formats) if f is not None]
            for codec in preference:
                for fmt in offered:
                    if fmt.codec == codec:
                        return media, fmt
        return None

    def offered(self) -> list[str]:
        """What the backchannel media offers, for an error message (rtpmap names)."""
        names = []
        for media in self.media:
            if media.kind == "audio" and media.direction == "sendonly":
                for pt in media.formats:
                    names.append(media.rtpmap.get(pt, STATIC.get(pt, (str(pt), 0, 1)))[0])
        return names


def parse(text: str) -> Sdp:
    session_control: str | None = None
    media: list[Media] = []
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("m="):
            parts = line[2:].split()
            formats = [int(p) for p in parts[3:] if p.isdigit()]
            media.append(Media(parts[0].lower() if parts else "", formats))
            continue
        if not line.startswith("a="):
            continue
        name, _, value = line[2:].partition(":")
        current = media[-1] if media else None
        if name == "control":
            if current is None:
                session_control = value.strip()
            else:
                current.control = value.strip()
        elif current is None:
            continue
        elif name in ("sendonly", "recvonly", "sendrecv", "inactive"):
            current.direction = name
        elif name == "rtpmap":
            _rtpmap(current, value)
        elif name == "fmtp":
            pt, _, params = value.strip().partition(" ")
            if pt.isdigit():
                current.fmtp[int(pt)] = _params(params)
    return Sdp(session_control, media)


def _rtpmap(media: Media, value: str) -> None:
    pt, _, spec = value.strip().partition(" ")
    bits = spec.split("/")
    if not pt.isdigit() or len(bits) < 2 or not bits[1].isdigit():
        return
    channels = int(bits[2]) if len(bits) > 2 and bits[2].isdigit() else 1
    media.rtpmap[int(pt)] = (bits[0], int(bits[1]), channels)


def _params(text: str) -> dict[str, str]:
    out = {}
    for item in text.split(";"):
        key, sep, value = item.strip().partition("=")
        if sep:
            out[key.strip().lower()] = value.strip()
    return out


def resolve(base: str, control: str | None) -> str:
    """A control attribute as a URL: absolute as it is, relative after the base (the
    way cameras and FFmpeg join them: with one slash)."""
    if not control or control == "*":
        return base
    if "://" in control:
        return control
    return base.rstrip("/") + "/" + control.lstrip("/")
