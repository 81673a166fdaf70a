"""RTSP/RTSPS plumbing for the capture sources: connecting, backoff, keeping secrets out of logs.

Camera URLs routinely carry credentials (rtsp://admin:secret@host/...), and FFmpeg puts
the URL it failed on into its error text, so everything that leaves this module for a log
or an exception message goes through `redact_url` / `redact_text` first.
"""

from __future__ import annotations

from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit

import av
from av.container import InputContainer

from doorwarden.agent.capture.media import SourceError


def redact_url(url: str) -> str:
    """The URL without user, password or query string (cameras put tokens there too)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<unparsable url>"
    netloc = ("***@" if parts.username or parts.password else "") + host
    if port is not None:
        netloc += f":{port}"
    query = "***" if parts.query else ""
    return SplitResult(parts.scheme, netloc, parts.path, query, "").geturl()


def redact_text(text: str, url: str) -> str:
    """`text` (an FFmpeg error, say) with every spelling of `url`'s secrets removed."""
    text = text.replace(url, redact_url(url))
    try:
        parts = urlsplit(url)
    except ValueError:
        return text
    secrets = {parts.password, parts.username, parts.query}
    secrets.update(value for _, value in parse_qsl(parts.query))
    secrets.update(unquote(s) for s in list(secrets) if s)
    # Longest first, so a secret containing another is replaced whole.
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def ffmpeg_reason(exc: BaseException) -> str:
    """FFmpeg's own words for an error, without the file name PyAV appends."""
    return str(getattr(exc, "strerror", None) or exc)


def connect(url: str, timeout_s: float) -> InputContainer:
    """Open an RTSP(S) stream over TCP, or raise SourceError (without credentials).

    TCP because UDP loses packets behind NAT and on Wi-Fi, and a lost packet of an H.264
    keyframe smears grey over the image until the next one. FFmpeg >= 5 calls the socket
    I/O timeout `timeout` (microseconds; `stimeout` was removed); PyAV's own `timeout`
    additionally bounds open and each read through the interrupt callback, which also
    covers the RTSP handshake.
    """
    options = {"rtsp_transport": "tcp", "timeout": str(int(timeout_s * 1_000_000))}
    try:
        return av.open(url, container_options=options, timeout=(timeout_s, timeout_s))
    except (av.FFmpegError, OSError) as exc:
        # `from None`: the chained exception's text holds the raw URL.
        raise SourceError(
            f"cannot connect to {redact_url(url)}: {redact_text(ffmpeg_reason(exc), url)}"
        ) from None


class Backoff:
    """Exponential delays: initial, doubling, capped; reset after a good read."""

    def __init__(self, initial_s: float, max_s: float) -> None:
        self.initial_s = initial_s
        self.max_s = max(max_s, initial_s)
        self._next = initial_s

    def next_delay(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self.max_s)
        return delay

    def reset(self) -> None:
        self._next = self.initial_s
