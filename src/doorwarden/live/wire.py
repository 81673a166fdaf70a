"""How a camera's stream crosses the bus (live/cluster.py). One message per frame:
kind (1 byte), sequence number (8 bytes), payload. The sequence number lets an instance
that asked for the current picture (init + GOP, answered by request) drop the frames it
received meanwhile that the answer already held."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass

import structlog

from doorwarden.bus import Handler

log = structlog.get_logger("doorwarden.live.cluster")

INIT, KEYFRAME, FRAGMENT, STATE = 0, 1, 2, 3
HEAD = struct.Struct(">BQ")
LEN = struct.Struct(">I")


class WireError(ValueError):
    """A frame from the bus that is not one of ours (dropped, with a log line)."""


@dataclass(frozen=True)
class Frame:
    kind: int
    seq: int
    init_json: str = ""
    data: bytes = b""  # the segment, the fragment, or the state JSON

    def encode(self) -> bytes:
        if self.kind == INIT:
            text = self.init_json.encode()
            return HEAD.pack(INIT, self.seq) + LEN.pack(len(text)) + text + self.data
        return HEAD.pack(self.kind, self.seq) + self.data


def decode(raw: bytes) -> Frame:
    if len(raw) < HEAD.size:
        raise WireError("a stream frame is at least 9 bytes")
    kind, seq = HEAD.unpack_from(raw)
    body = raw[HEAD.size :]
    if kind == INIT:
        if len(body) < LEN.size:
            raise WireError("an init frame carries its JSON's length")
        (size,) = LEN.unpack_from(body)
        if size > len(body) - LEN.size:
            raise WireError("an init frame's JSON is cut short")
        text = body[LEN.size : LEN.size + size].decode(errors="strict")
        _object(text)
        return Frame(INIT, seq, text, body[LEN.size + size :])
    if kind == STATE:
        state = _object(body.decode())
        if state.get("state") not in ("connecting", "streaming", "offline", "error"):
            raise WireError("a state frame names one of the four states")
        return Frame(STATE, seq, data=body)
    if kind in (KEYFRAME, FRAGMENT):
        return Frame(kind, seq, data=body)
    raise WireError(f"unknown stream frame kind {kind}")


def pack(frames: list[bytes]) -> bytes:
    """Several frames in one message (the answer to a catch-up request)."""
    return b"".join(LEN.pack(len(f)) + f for f in frames)


def unpack(raw: bytes) -> list[Frame]:
    frames, at = [], 0
    while at < len(raw):
        if at + LEN.size > len(raw):
            raise WireError("a packed frame's length is cut short")
        (size,) = LEN.unpack_from(raw, at)
        at += LEN.size
        if at + size > len(raw):
            raise WireError("a packed frame is cut short")
        frames.append(decode(raw[at : at + size]))
        at += size
    return frames


def _object(text: str) -> dict[str, object]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise WireError("not JSON") from exc
    if not isinstance(value, dict):
        raise WireError("not a JSON object")
    return value


def message(raw: bytes) -> dict[str, object]:
    """A control message on the bus: a JSON object, or WireError."""
    try:
        return _object(raw.decode())
    except UnicodeDecodeError as exc:
        raise WireError("not UTF-8") from exc


def guarded(handler: Handler) -> Handler:
    """Bad input on the bus is dropped with a log line; the hub carries on."""

    async def run(subject: str, data: bytes) -> bytes | None:
        try:
            return await handler(subject, data)
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
            log.warning("live.bus_message_dropped", subject=subject, error=repr(exc)[:300])
            return None

    return run
