"""Fragmented MP4, read back: what live view needs to know about the muxer's bytes.

FFmpeg's mp4 muxer writes to a file-like object; live view (live.py) gives it a
`FragmentCollector`, which cuts the byte stream at box boundaries into the init segment
(ftyp+moov) and one fragment (moof+mdat) per frame. A box may arrive in several writes,
so the collector keeps what is still incomplete until the rest comes.

Two facts are read from the boxes rather than trusted from elsewhere:

* `codec_string`: the RFC 6381 codec that MediaSource needs, from the avcC box the
  browser will parse itself;
* `is_keyframe_fragment`: whether a fragment starts with a sync sample, from its trun or
  tfhd flags, i.e. whether a viewer (or a send queue that dropped frames) can start there.
  With a camera's audio, a fragment may hold an audio sample, a video sample or both, one
  track fragment (traf) each: only the video track's decides (`video_track_id` reads which
  track that is from the init segment), and a fragment without video is never a start.
"""

from __future__ import annotations

from dataclasses import dataclass

NON_SYNC_SAMPLE = 0x0001_0000  # ISO/IEC 14496-12 sample_is_non_sync_sample


@dataclass(frozen=True)
class Box:
    kind: str
    start: int  # of the header
    body: int  # of the payload
    end: int


def complete_boxes(data: bytes | bytearray, start: int = 0, end: int | None = None) -> list[Box]:
    """The complete boxes in data[start:end], in order; stops at one still being written."""
    end = len(data) if end is None else end
    found = []
    pos = start
    while pos + 8 <= end:
        size, header = int.from_bytes(data[pos : pos + 4], "big"), 8
        if size == 1:  # a 64-bit size follows the type
            if pos + 16 > end:
                break
            size, header = int.from_bytes(data[pos + 8 : pos + 16], "big"), 16
        if size < header or pos + size > end:
            break
        kind = bytes(data[pos + 4 : pos + 8]).decode("latin-1")
        found.append(Box(kind, pos, pos + header, pos + size))
        pos += size
    return found


def _child(data: bytes, box: Box, kind: str) -> Box | None:
    return next((b for b in complete_boxes(data, box.body, box.end) if b.kind == kind), None)


def video_track_id(init: bytes) -> int | None:
    """The track ID of an init segment's video track (its handler is 'vide')."""
    for top in complete_boxes(init):
        if top.kind != "moov":
            continue
        for trak in complete_boxes(init, top.body, top.end):
            tkhd = _child(init, trak, "tkhd") if trak.kind == "trak" else None
            mdia = _child(init, trak, "mdia") if tkhd is not None else None
            hdlr = _child(init, mdia, "hdlr") if mdia is not None else None
            if tkhd is None or hdlr is None or init[hdlr.body + 8 : hdlr.body + 12] != b"vide":
                continue
            at = tkhd.body + (20 if init[tkhd.body] == 1 else 12)  # after the times
            return int.from_bytes(init[at : at + 4], "big")
    return None


def is_keyframe_fragment(moof: bytes, track_id: int | None = None) -> bool:
    """Whether the first sample of a moof (alone, or followed by its mdat) is a sync
    sample, from its trun or tfhd flags: of the track `track_id` (the video's), or of the
    first track fragment when None. A fragment without that track is not a keyframe."""
    for top in complete_boxes(moof):
        if top.kind != "moof":
            continue
        for traf in complete_boxes(moof, top.body, top.end):
            if traf.kind != "traf":
                continue
            default: int | None = None
            for box in complete_boxes(moof, traf.body, traf.end):
                at = box.body
                flags = int.from_bytes(moof[at + 1 : at + 4], "big")
                track = int.from_bytes(moof[at + 4 : at + 8], "big")
                if box.kind == "tfhd" and track_id is not None and track != track_id:
                    break  # another track's fragment: look at the next traf
                if box.kind == "tfhd" and flags & 0x20:
                    # After the track id come the optional base offset, description
                    # index, duration and size, then the default sample flags.
                    pos = at + 8 + (8 if flags & 0x01 else 0)
                    pos += sum(4 for bit in (0x02, 0x08, 0x10) if flags & bit)
                    default = int.from_bytes(moof[pos : pos + 4], "big")
                elif box.kind == "trun":
                    sample_flags = _first_sample_flags(moof[at : box.end], flags)
                    chosen = sample_flags if sample_flags is not None else default
                    return chosen is not None and not chosen & NON_SYNC_SAMPLE
    return False


def _first_sample_flags(trun: bytes, flags: int) -> int | None:
    pos = 8 + (4 if flags & 0x01 else 0)  # version/flags, sample count, data offset
    if flags & 0x04:  # first_sample_flags
        return int.from_bytes(trun[pos : pos + 4], "big")
    pos += sum(4 for bit in (0x100, 0x200) if flags & bit)  # duration, size
    if flags & 0x400:  # per-sample flags
        return int.from_bytes(trun[pos : pos + 4], "big")
    return None


def codec_string(init: bytes) -> str | None:
    """The RFC 6381 codec of an init segment's H.264 track, e.g. avc1.64001f.

    Read from the avcC box the browser will parse: profile, constraint flags, level.
    """
    at = init.find(b"avcC")
    if at < 0 or at + 8 > len(init) or init[at + 4] != 1:  # configurationVersion 1
        return None
    return "avc1." + init[at + 5 : at + 8].hex()


class FragmentCollector:
    """The muxer's file: collects what it writes and cuts it into init and fragments."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.init: bytes | None = None
        self.fragments: list[bytes] = []  # moof+mdat each
        self._ftyp = b""
        self._moof: bytes | None = None

    def write(self, data: bytes) -> int:
        self.buffer += data
        boxes = complete_boxes(self.buffer)
        if not boxes:
            return len(data)
        for box in boxes:
            whole = bytes(self.buffer[box.start : box.end])
            if box.kind == "ftyp":
                self._ftyp = whole
            elif box.kind == "moov":
                self.init = self._ftyp + whole
            elif box.kind == "moof":
                self._moof = whole
            elif box.kind == "mdat" and self._moof is not None:
                self.fragments.append(self._moof + whole)
                self._moof = None
            # Anything else (mfra at the end, free) has no place in a live stream.
        del self.buffer[: boxes[-1].end]
        return len(data)

    def take(self) -> list[bytes]:
        """The fragments completed since the last take, in order."""
        out, self.fragments = self.fragments, []
        return out
