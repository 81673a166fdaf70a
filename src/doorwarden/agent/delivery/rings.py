"""What a live-only plan still delivers: the clips of doorbell presses.

A live-only plan stores no recordings, but a press always records a clip labelled "ring"
(agent/ring, the recorder's `trigger`), and the server keeps such clips for a short
while (clips/ingest.py, within an hourly bound per camera). On that plan the delivery
loop (worker.py) seals only the plain entries whose sidecar labels include "ring"
(`RingClips`, the plain spool seen through that filter: the sealer takes its entries
from it) and uploads only the sealed clips whose signed manifest says "ring"
(`is_ring_clip`); the other clips stay where they are, as before, until the plan
stores recordings again.
"""

from __future__ import annotations

from typing import Any

from doorwarden.agent.recording.spool import Spool, SpoolEntry
from doorwarden.crypto.errors import MalformedError
from doorwarden.formats.clip_files import SealedPaths, read_manifest

RING_LABEL = "ring"


def has_ring_label(metadata: dict[str, Any]) -> bool:
    """Whether a plain entry's sidecar (recorder.py writes `labels`) marks a press."""
    labels = metadata.get("labels")
    return isinstance(labels, list) and RING_LABEL in labels


class RingClips(Spool):
    """The plain spool's ring clips only (same directory, same entries, fewer listed)."""

    def entries(self) -> list[SpoolEntry]:
        return [entry for entry in super().entries() if has_ring_label(entry.metadata)]


def is_ring_clip(paths: SealedPaths) -> bool:
    """Whether a sealed clip's signed manifest is labelled "ring" (the server decides by
    the same labels). An unreadable manifest is not: it waits for a recording plan,
    where the uploader holds it with its reason."""
    try:
        return RING_LABEL in read_manifest(paths.manifest).manifest.labels
    except (OSError, MalformedError):
        return False
