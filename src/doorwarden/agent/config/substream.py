"""Which sub-streams make sense for which main source (`CameraConfig.substream`).

A sub-stream is the same camera at a lower resolution: detection runs on it and the main
stream is recorded (docs/substreams.md). The two are put on one clock either by their
media time (files and synthetic scenes: both start at 0, e.g. two encodings of one
scene) or by when their packets arrive (a live camera's RTSP or V4L2 streams), so a pair
must be of one family: a file main with an RTSP sub has no common time, and is refused.
Apart from models.py to keep that file small; models.py calls `check_substream`.
"""

from __future__ import annotations

from typing import Protocol
from urllib.parse import urlsplit

RECORDED = frozenset({"file", "synthetic"})  # times from the media, starting at 0
LIVE = frozenset({"rtsp", "v4l2"})  # times from arrival on this machine


class _Source(Protocol):
    @property
    def kind(self) -> str: ...


def _where(url: str) -> str:
    """An RTSP URL without its credentials (the same stream whoever logs in)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme.lower()}://{host}{port}{parts.path}?{parts.query}"


def _same(main: _Source, sub: _Source) -> bool:
    """Whether the two name one stream (an RTSP URL whoever logs in, a file, a device)."""
    if main.kind != sub.kind:
        return False
    if main.kind == "rtsp":
        return _where(getattr(main, "url", "")) == _where(getattr(sub, "url", ""))
    if main.kind == "synthetic":
        return main == sub
    where = "path" if main.kind == "file" else "device"
    return bool(getattr(main, where, None) == getattr(sub, where, None))


def check_substream(main: _Source, sub: _Source) -> None:
    """ValueError (one sentence, for `check-config`) when `sub` cannot be `main`'s
    sub-stream."""
    family = RECORDED if main.kind in RECORDED else LIVE
    if sub.kind not in family:
        raise ValueError(
            f"substream of kind {sub.kind!r} cannot go with a {main.kind!r} source: their "
            "times cannot be aligned (a file or synthetic main needs a file or synthetic "
            "substream of the same scene; a live camera, an rtsp or v4l2 one)"
        )
    if _same(main, sub):
        raise ValueError(
            "substream is the same stream as source: give the camera's lower-resolution "
            "stream (its ONVIF sub profile; `doorwarden agent discover` prints it), or "
            "leave substream out"
        )
    if main.kind in RECORDED and getattr(main, "pace", False) != getattr(sub, "pace", False):
        raise ValueError(
            "substream and source must both be paced or both not: one running ahead of "
            "the other would put detection and recording at different times"
        )
    if getattr(main, "loop", False) != getattr(sub, "loop", False):
        raise ValueError(
            "substream and source must both loop or both not: a file that starts again "
            "while the other goes on would no longer show the same moment"
        )
    if main.kind == "synthetic" and sub.kind == "synthetic":
        fields = ("scene", "seed", "enter_at_s", "duration_s")
        differ = [f for f in fields if getattr(main, f) != getattr(sub, f)]
        if differ:
            raise ValueError(
                f"a synthetic substream must show the same scene as source ({', '.join(differ)} "
                "differ): it is the same camera at a lower resolution"
            )
