"""Room on the spool's disk: when it fills, keep the newest clips the agent can.

A camera's card or disk fills (the server is unreachable for days, a spool limit set
above the disk's size, another program's files). Recording must go on, and what is
lost must be the oldest footage, never the newest, never silently, never a corrupted
spool. So:

* before a clip starts recording (`make_room`), and when a write fails with a full disk
  (`failed_write`, for `fileio.is_disk_full` errors), the oldest clips are evicted until
  `min_free_bytes` are free again (at most a quarter of the disk): sealed clips first
  (they are the oldest: plain entries are sealed in order), then plain ones. The failed
  write is then tried once more by its caller (the spool's commit, the sealer);
* a clip whose recording failed for room is discarded (its temporary file removed) and
  counted (`note_discarded`);
* every eviction of a clip not yet delivered is logged (`spool.evicted`, a warning),
  kept here (`evictions`, the newest 50: sequence range or count, reason `spool_limit` or
  `disk_full`, time), saved in `<state_dir>/spool-room.json` for `doorwarden agent
  status`, and reported to the server in the device health report.

Eviction is an un-commit first (the sealed spool deletes the manifest first, the plain
spool the sidecar), so a crash or another full-disk error half-way leaves only debris
that `recover()` removes: never half a clip.

Threads: camera threads (before recording, on commit) and the delivery thread (sealing)
call this. One lock serialises evictions; sealed clips are removed through the sealed
spool's own lock, taken after this one (the delivery thread never calls here while it
holds the sealed spool's lock, so the two cannot deadlock).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import structlog

from doorwarden.agent.recording.spool import Spool, fsync_dir
from doorwarden.fileio import is_disk_full

log = structlog.get_logger("doorwarden.agent.recording.room")

ROOM_FILE = "spool-room.json"
MAX_EVICTIONS = 50  # kept and reported, newest last (the health report's bound)
MERGE_S = 60.0  # evictions this close, continuing one another, are one record
Reason = Literal["spool_limit", "disk_full"]


class SealedEvictor(Protocol):
    """What the room needs of the sealed spool (delivery/sealer.py)."""

    def evict_oldest(self) -> int | None:
        """Remove the oldest committed sealed clip; its sequence, or None if none."""

    def guard(self) -> contextlib.AbstractContextManager[object]:
        """The sealed spool's lock: plain entries are evicted under it, so that sealing
        never races with eviction."""


@dataclass(frozen=True)
class Eviction:
    first: int | None  # sequence range of sealed clips; None for plain (unsealed) ones
    last: int | None
    count: int
    reason: Reason
    at: str  # ISO-8601, UTC: when this episode began (the server's key for it)
    last_at: str | None = None  # when it last grew (merging); kept here, not reported

    def to_json(self) -> dict[str, Any]:
        """As reported to the server: an episode that grows keeps its `at`, so the owner
        is alerted once per episode and sees its count grow."""
        body = asdict(self)
        del body["last_at"]
        return body

    def to_state(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def latest(self) -> str:
        return self.last_at or self.at


@dataclass(frozen=True)
class DiskUsage:
    free_bytes: int
    total_bytes: int


def disk_usage(path: Path) -> DiskUsage:
    stats = os.statvfs(path)
    return DiskUsage(stats.f_bavail * stats.f_frsize, stats.f_blocks * stats.f_frsize)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class SpoolRoom:
    """Keeps `min_free_bytes` free on `spool`'s disk by evicting the oldest clips."""

    def __init__(self, spool: Spool, *, min_free_bytes: int, state_dir: Path | None) -> None:
        self.spool = spool
        self.min_free_bytes = min_free_bytes
        self.state_dir = state_dir
        self.sealed: SealedEvictor | None = None  # set by the delivery once recovered
        self.disk_full = False  # a write failed for room and free space is not back yet
        self.discarded = 0  # recordings lost for room since the state file was started
        self.evictions: deque[Eviction] = deque(maxlen=MAX_EVICTIONS)
        self._lock = threading.RLock()
        self._load()
        spool.room = self

    # -- what is free ----------------------------------------------------------------------

    def usage(self) -> DiskUsage:
        return disk_usage(self.spool.directory)

    def reserve(self) -> int:
        """The free space kept: `min_free_bytes`, but never more than a quarter of the
        disk (a reserve larger than the disk would evict every clip for nothing)."""
        return min(self.min_free_bytes, self.usage().total_bytes // 4)

    def wrote(self) -> None:
        """A clip was committed or sealed: `disk_full` ends once twice the reserve is
        free (clips delivered and deleted): the margin keeps it from flapping on and
        off with every clip while the disk is still nearly full."""
        if not self.disk_full:
            return
        free = self.usage().free_bytes
        if free >= 2 * self.reserve():
            with self._lock:
                self.disk_full = False
                self._save()
            log.info("spool.disk_ok", free_bytes=free)

    def _full(self) -> None:
        if not self.disk_full:
            self.disk_full = True
            self._save()

    # -- making room -----------------------------------------------------------------------

    def make_room(self, reason: Reason = "disk_full") -> bool:
        """Evict the oldest clips until the reserve is free; True if it is. `disk_full`
        is set when clips had to go, or the reserve cannot be met."""
        with self._lock:
            sequences: list[int] = []
            plain = 0
            reserve = self.reserve()
            while self.usage().free_bytes < reserve:
                sequence = self.sealed.evict_oldest() if self.sealed is not None else None
                if sequence is not None:
                    sequences.append(sequence)
                    continue
                if not self._evict_oldest_plain():
                    break
                plain += 1
                log.warning("spool.evicted", plain=True, reason=reason)
            self.note_sealed_evicted(sequences, reason)
            if plain:
                self.note_evicted(None, None, plain, reason)
            if (sequences or plain) and reason == "disk_full":
                self._full()  # clips are being lost for room: the owner must know
            enough = self.usage().free_bytes >= reserve
            if not enough and reserve and not self.disk_full:
                self._full()
                log.warning(
                    "spool.disk_full",
                    free_bytes=self.usage().free_bytes,
                    min_free_bytes=self.min_free_bytes,
                    effect="nothing left to evict: new clips may be lost",
                )
            return enough

    def failed_write(self, exc: BaseException) -> bool:
        """A write failed: True (after making room) when it was for a full disk, and the
        caller should try it once more; False for any other failure."""
        if not is_disk_full(exc):
            return False
        with self._lock:
            self._full()
            log.warning("spool.disk_full", error=str(exc), effect="evicting the oldest clips")
            self._make_room_at_least_one()
        return True

    def _make_room_at_least_one(self) -> None:
        """After a failed write: evict to the reserve, and at least one clip even when
        the reserve looked met (the write needed more than the reserve)."""
        free_before = self.usage().free_bytes
        self.make_room("disk_full")
        if self.usage().free_bytes > free_before:
            return
        sequence = self.sealed.evict_oldest() if self.sealed is not None else None
        if sequence is not None:
            self.note_sealed_evicted([sequence], "disk_full")
        elif self._evict_oldest_plain():
            log.warning("spool.evicted", plain=True, reason="disk_full")
            self.note_evicted(None, None, 1, "disk_full")

    def _evict_oldest_plain(self) -> bool:
        guard = self.sealed.guard() if self.sealed is not None else contextlib.nullcontext()
        with guard:
            entries = self.spool.entries()
            if not entries:
                return False
            self.spool.remove(entries[0])
            return True

    # -- what was lost ---------------------------------------------------------------------

    def note_discarded(self, camera: str, error: str) -> None:
        """A recording could not be written for room: it is lost, and the owner told."""
        with self._lock:
            self.discarded += 1
            self._full()
            log.warning("spool.recording_discarded", camera=camera, reason="disk_full", error=error)
            self.note_evicted(None, None, 1, "disk_full")

    def note_evicted(self, first: int | None, last: int | None, count: int, reason: Reason) -> None:
        """Record an eviction of `count` undelivered clips (first..last when sealed)."""
        if count <= 0:
            return
        with self._lock:
            eviction = Eviction(first, last, count, reason, _now())
            previous = self.evictions[-1] if self.evictions else None
            if previous is not None and _continues(previous, eviction):
                # One episode of a full disk is one record (clips 0..40), not forty: the
                # list stays short enough to show, and its 50 entries reach further back.
                eviction = Eviction(
                    previous.first,
                    last,
                    previous.count + count,
                    reason,
                    previous.at,
                    last_at=eviction.at,
                )
                self.evictions[-1] = eviction
            else:
                self.evictions.append(eviction)
            self._save()
        log.info("spool.eviction_recorded", **eviction.to_json())

    def note_sealed_evicted(self, sequences: list[int], reason: Reason) -> None:
        """Record evicted sealed clips, as ranges of consecutive sequence numbers."""
        for first, last in _ranges(sorted(sequences)):
            self.note_evicted(first, last, last - first + 1, reason)

    # -- the state file --------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "disk_full": self.disk_full,
            "discarded": self.discarded,
            "evictions": [e.to_state() for e in self.evictions],
        }

    def _save(self) -> None:
        if self.state_dir is None:
            return
        # Not write_atomic from delivery/: recording/ does not depend on delivery/.
        path = self.state_dir / ROOM_FILE
        tmp = path.with_name(f".tmp-{ROOM_FILE}-{os.getpid()}-{threading.get_ident()}")
        try:
            self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            with tmp.open("wb") as f:
                f.write(json.dumps(self.to_json(), indent=1).encode())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
            fsync_dir(self.state_dir)
        except OSError as exc:
            # The disk may be the full one: the report in memory still goes to the server.
            tmp.unlink(missing_ok=True)
            log.warning("spool.room_unsaved", error=str(exc))

    def _load(self) -> None:
        if self.state_dir is None:
            return
        body = read_room(self.state_dir)
        self.disk_full = bool(body.get("disk_full"))
        self.discarded = int(body.get("discarded") or 0)
        for item in body.get("evictions") or []:
            with contextlib.suppress(TypeError, ValueError, KeyError):
                self.evictions.append(
                    Eviction(
                        item["first"],
                        item["last"],
                        int(item["count"]),
                        item["reason"],
                        item["at"],
                        last_at=item.get("last_at"),
                    )
                )


def read_room(state_dir: Path) -> dict[str, Any]:
    """The saved room state (for `agent status`); empty if absent or unreadable."""
    try:
        body = json.loads((state_dir / ROOM_FILE).read_bytes())
        return body if isinstance(body, dict) else {}
    except (OSError, ValueError):
        return {}


def _continues(previous: Eviction, new: Eviction) -> bool:
    """Whether `new` carries on `previous`: same reason, within MERGE_S, and the next
    sealed clips (or unsealed ones after unsealed ones)."""
    if previous.reason != new.reason:
        return False
    try:
        gap = datetime.fromisoformat(new.at) - datetime.fromisoformat(previous.latest)
    except ValueError:
        return False
    if not 0 <= gap.total_seconds() <= MERGE_S:
        return False
    if previous.first is None or new.first is None:
        return previous.first is None and new.first is None
    return previous.last is not None and new.first == previous.last + 1


def _ranges(sequences: list[int]) -> Iterator[tuple[int, int]]:
    """Consecutive runs of sorted sequence numbers as (first, last)."""
    start = prev = None
    for sequence in sequences:
        if prev is not None and sequence == prev + 1:
            prev = sequence
            continue
        if start is not None and prev is not None:
            yield start, prev
        start = prev = sequence
    if start is not None and prev is not None:
        yield start, prev
