"""Checking a clip while its parts arrive, so that completing it needs no second pass over
its bytes (docs/clip-pipeline.md, "Verifying as parts arrive").

Each upload whose parts reach this process in order from offset 0 gets a `Tracked`: a
push-style verifier (`crypto.seal.ClipVerifier`: the ciphertext hash, and in standard
mode every chunk decrypted and the plaintext hashed) fed with each part as received, and
the records (offset, length, SHA-256) of the parts it was fed. At completion the records
are compared with the staging's own: equal, the verifier's verdict stands for the staged
bytes; different (a part went to another instance, this process restarted, a part was
sent again), the completion falls back to the full pass over the staged bytes.

Kept in memory only, and bounded: at most `max_uploads` uploads (the least recently fed
go first), none idle for more than `idle_s`, and none holding back more than
`MAX_HELD` bytes (a camera's chunk size sets what a verifier holds; a huge one gets the
full pass instead). Losing one costs a re-read at completion, never a wrong verdict.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field

from doorwarden.crypto.seal import ClipVerifier

MAX_HELD = 1024 * 1024 + 1024  # a 1 MiB chunk and its tag, with room to spare
DEFAULT_MAX_UPLOADS = 128
DEFAULT_IDLE_S = 600.0

Record = tuple[int, int, bytes]  # offset, length, SHA-256 of the part


@dataclass
class Tracked:
    verifier: ClipVerifier
    records: list[Record] = field(default_factory=list)
    # Local staging: the data file's identity after the last part (inode, size, mtime,
    # ctime), so a file changed behind the verifier's back is not taken on its word.
    fingerprint: tuple[int, ...] | None = None
    fed_at: float = 0.0

    @property
    def end(self) -> int:
        return self.records[-1][0] + self.records[-1][1] if self.records else 0


class Verifiers:
    def __init__(
        self, *, max_uploads: int = DEFAULT_MAX_UPLOADS, idle_s: float = DEFAULT_IDLE_S
    ) -> None:
        self.max_uploads = max_uploads
        self.idle_s = idle_s
        self._tracked: OrderedDict[tuple[uuid.UUID, int], Tracked] = OrderedDict()

    def __len__(self) -> int:
        return len(self._tracked)

    def start(self, device_id: uuid.UUID, sequence: int, verifier: ClipVerifier) -> Tracked:
        """A new upload from offset 0 (replacing any earlier one of the clip)."""
        self._expire()
        tracked = Tracked(verifier, fed_at=time.monotonic())
        key = (device_id, sequence)
        self._tracked.pop(key, None)
        self._tracked[key] = tracked
        while len(self._tracked) > self.max_uploads:
            self._tracked.popitem(last=False)
        return tracked

    def following(self, device_id: uuid.UUID, sequence: int, start: int) -> Tracked | None:
        """The upload's verifier if the part at `start` continues it, else None: a part
        sent again (before its end) leaves it; a gap (parts that went to another
        instance) drops it, and the clip gets the full pass."""
        self._expire()
        key = (device_id, sequence)
        tracked = self._tracked.get(key)
        if tracked is None:
            return None
        if tracked.end != start:
            if start > tracked.end:
                del self._tracked[key]
            return None
        self._tracked.move_to_end(key)
        return tracked

    def fed(self, device_id: uuid.UUID, sequence: int, tracked: Tracked, record: Record) -> None:
        """`tracked` was fed the part `record`; dropped if it now holds too much."""
        tracked.records.append(record)
        tracked.fed_at = time.monotonic()
        if tracked.verifier.buffered > MAX_HELD:
            self.drop(device_id, sequence)

    def take(self, device_id: uuid.UUID, sequence: int) -> Tracked | None:
        """The upload's verifier, removed (a completion uses it once)."""
        self._expire()
        return self._tracked.pop((device_id, sequence), None)

    def drop(self, device_id: uuid.UUID, sequence: int) -> None:
        self._tracked.pop((device_id, sequence), None)

    def _expire(self) -> None:
        cutoff = time.monotonic() - self.idle_s
        stale = [key for key, tracked in self._tracked.items() if tracked.fed_at < cutoff]
        for key in stale:
            del self._tracked[key]
