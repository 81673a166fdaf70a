"""A recorded clip remuxed as fragmented MP4, for end-to-end clips that a browser plays
while they are still downloading and decrypting (docs/e2e.md, "Playing a clip").

Media Source Extensions take fragmented MP4 only: an initialisation segment (`ftyp` and a
`moov` without samples) and then `moof`+`mdat` fragments. The recorder writes a plain MP4
with the index up front (clip_writer.py), which `<video src>` plays but MSE cannot; the
server could remux it for standard clips, but an end-to-end clip's bytes are never
readable there, so the camera remuxes before sealing. Stream copy: the same packets, the
same timestamps, no re-encode.

The layout, which static/e2e/clipstream.js relies on:

    ftyp | moov (empty, with mvex) | sidx per track | moof mdat | moof mdat | ... | mfra

one fragment per video keyframe, and up front one `sidx` per track (FFmpeg's
`global_sidx`) that gives every fragment's byte size and duration: the page maps a seek
time to a fragment's offset, that offset to a sealed chunk, and fetches from there.
"""

from __future__ import annotations

from pathlib import Path

import av

FRAGMENTED_OPTIONS = {
    "movflags": "frag_keyframe+empty_moov+default_base_moof+global_sidx",
}


def write_fragmented(clip: Path, target: Path) -> None:
    """The clip's packets, every stream, as fragmented MP4 (the layout above) in `target`.
    A file, not memory: FFmpeg goes back to fill in the `sidx` once every fragment is out."""
    with (
        av.open(str(clip)) as source,
        av.open(str(target), "w", format="mp4", options=FRAGMENTED_OPTIONS) as out,
    ):
        streams = {}
        for stream in source.streams:
            if stream.type in ("video", "audio"):
                streams[stream.index] = out.add_stream_from_template(stream)
        for packet in source.demux(*[source.streams[i] for i in streams]):
            if packet.dts is None:  # the demuxer's flush packet
                continue
            packet.stream = streams[packet.stream.index]
            out.mux(packet)
