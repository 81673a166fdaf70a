"""The crash-safe spool: finished clips wait here until the uploader takes them.

Layout: `<dir>/<id>.mp4`, `<dir>/<id>.jpg` (optional) and `<dir>/<id>.json`, plus `<dir>/tmp/`
for work in progress. The JSON sidecar is the commit marker and is written last: an entry
exists exactly when its sidecar does, so a crash at any moment leaves either a complete
entry or debris that `recover()` removes — never half an entry, never a duplicate.

A write that fails (a full disk, EIO) un-does the commit's earlier steps before the
error propagates: the clip goes back to its temporary name (the caller removes it), the
thumbnail and the sidecar's temporary file are deleted, so no uncommitted media is left
taking room until the next start. With a `room` (room.py), a full disk first evicts the
oldest clips and the commit is tried once more.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import structlog

log = structlog.get_logger("doorwarden.agent.recording.spool")

CLIP_SUFFIX = ".mp4"
THUMB_SUFFIX = ".jpg"
SIDECAR_SUFFIX = ".json"
SEALED_DIR = "sealed"


class _MonotonicMicros:
    """Wall-clock microseconds that never repeat or go backwards within a process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0

    def next(self) -> int:
        with self._lock:
            self._last = max(time.time_ns() // 1000, self._last + 1)
            return self._last


_micros = _MonotonicMicros()


def new_id() -> str:
    """A unique id that sorts by creation time: UTC microseconds, then 64 random bits.

    The clock part is monotonic (a clock step back would otherwise sort a new clip before
    an old one); the random part keeps two agents sharing one directory apart.
    """
    us = _micros.next()
    stamp = datetime.fromtimestamp(us // 1_000_000, UTC).strftime("%Y%m%dT%H%M%S")
    return f"{stamp}{us % 1_000_000:06d}Z-{secrets.token_hex(8)}"


class RoomKeeper(Protocol):
    """What the spool and the recorder ask of the room keeper (room.py's SpoolRoom),
    named here so that the spool does not import it back."""

    def make_room(self, reason: Literal["spool_limit", "disk_full"] = "disk_full") -> bool: ...

    def failed_write(self, exc: BaseException) -> bool: ...

    def wrote(self) -> None: ...

    def note_discarded(self, camera: str, error: str) -> None: ...

    def note_evicted(
        self,
        first: int | None,
        last: int | None,
        count: int,
        reason: Literal["spool_limit", "disk_full"],
    ) -> None: ...


@dataclass(frozen=True)
class SpoolEntry:
    id: str
    clip: Path
    thumbnail: Path | None
    sidecar: Path
    metadata: dict[str, Any] = field(compare=False)


@dataclass(frozen=True)
class Recovery:
    kept: int
    removed: list[Path]


class Spool:
    """Finished clips before sealing. `max_bytes` bounds them: a camera that is not paired
    (or was removed, or whose plan stores nothing) keeps recording, and must not fill its
    disk. Past the bound the oldest clips are deleted, with a warning."""

    def __init__(self, directory: Path | str, *, max_bytes: int | None = None) -> None:
        self.directory = Path(directory)
        self.tmp = self.directory / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.room: RoomKeeper | None = None  # set by SpoolRoom: evictions when the disk fills

    def tmp_path(self, suffix: str = CLIP_SUFFIX) -> Path:
        """A fresh path in tmp/ to write a clip into; committing it is then a rename."""
        return self.tmp / f"{new_id()}{suffix}.part"

    def commit(
        self, clip_path_tmp: Path, thumb_bytes: bytes | None, metadata: Mapping[str, Any]
    ) -> SpoolEntry:
        """Move a finished clip (and its thumbnail) into the spool; durable on return.

        On OSError nothing of it is left in the spool and `clip_path_tmp` is where it
        was (for the caller to remove); a full disk is first met by evicting the oldest
        clips (`room`) and one more try.
        """
        try:
            entry = self._commit(Path(clip_path_tmp), thumb_bytes, metadata)
        except OSError as exc:
            if self.room is None or not self.room.failed_write(exc):
                raise
            log.warning("spool.commit_retried", reason="disk_full", error=str(exc))
            entry = self._commit(Path(clip_path_tmp), thumb_bytes, metadata)
        try:
            self.enforce_limit(keep=entry)
        except OSError as exc:  # committed all the same; the next commit tries again
            log.warning("spool.limit_unenforced", error=str(exc))
        if self.room is not None:
            self.room.wrote()
        return entry

    def _commit(
        self, clip_tmp: Path, thumb_bytes: bytes | None, metadata: Mapping[str, Any]
    ) -> SpoolEntry:
        entry_id = new_id()
        source = clip_tmp
        if clip_tmp.parent.resolve() != self.tmp.resolve():
            # Elsewhere may be another file system, where a rename is not atomic.
            staged = self.tmp / f"{entry_id}{CLIP_SUFFIX}.part"
            try:
                shutil.copyfile(clip_tmp, staged)
            except OSError:
                staged.unlink(missing_ok=True)
                raise
            clip_tmp = staged
        clip = self.directory / f"{entry_id}{CLIP_SUFFIX}"
        thumb_tmp = self.tmp / f"{entry_id}{THUMB_SUFFIX}.part" if thumb_bytes else None
        thumb = self.directory / f"{entry_id}{THUMB_SUFFIX}" if thumb_bytes else None
        sidecar = self.directory / f"{entry_id}{SIDECAR_SUFFIX}"
        sidecar_tmp = self.tmp / f"{entry_id}{SIDECAR_SUFFIX}.part"
        moved = False
        try:
            _fsync_file(clip_tmp)
            if thumb_tmp is not None and thumb_bytes:
                _write_durable(thumb_tmp, thumb_bytes)
            os.replace(clip_tmp, clip)
            moved = True
            if thumb_tmp is not None and thumb is not None:
                os.replace(thumb_tmp, thumb)
            fsync_dir(self.directory)
            body = {
                **metadata,
                "id": entry_id,
                "clip": clip.name,
                "thumbnail": thumb.name if thumb else None,
                "clip_bytes": clip.stat().st_size,
            }
            _write_durable(sidecar_tmp, json.dumps(body, sort_keys=True, indent=1).encode())
            os.replace(sidecar_tmp, sidecar)  # the commit point
        except OSError:
            # Un-do: nothing uncommitted may stay in the spool taking room. (A crash runs
            # no code at all: recover() clears its debris at the next start.)
            sidecar_tmp.unlink(missing_ok=True)
            for path in (thumb_tmp, thumb):
                if path is not None:
                    with contextlib.suppress(OSError):
                        path.unlink(missing_ok=True)
            if moved:
                with contextlib.suppress(OSError):
                    os.replace(clip, clip_tmp)
            if clip_tmp != source:
                clip_tmp.unlink(missing_ok=True)  # the staged copy; the caller's is intact
            raise
        if source != clip_tmp:
            source.unlink(missing_ok=True)  # moved into the spool by copy
        try:
            fsync_dir(self.directory)
        except OSError as exc:
            # The sidecar is in place: committed; later fsyncs of the directory persist it.
            log.warning("spool.commit_unsynced", entry=entry_id, error=str(exc))
        return SpoolEntry(entry_id, clip, thumb, sidecar, body)

    def enforce_limit(self, *, keep: SpoolEntry | None = None) -> list[str]:
        """Delete the oldest entries (never `keep`, the clip just recorded) until the spool
        holds at most `max_bytes`; the ids deleted."""
        if self.max_bytes is None:
            return []
        entries = self.entries()
        sizes = {e.id: _entry_bytes(e) for e in entries}
        total = sum(sizes.values())
        evicted: list[str] = []
        for entry in entries:
            if total <= self.max_bytes:
                break
            if keep is not None and entry.id == keep.id:
                continue
            self.remove(entry)
            total -= sizes[entry.id]
            evicted.append(entry.id)
        if evicted:
            log.warning(
                "spool.plain_evicted", clips=evicted, max_bytes=self.max_bytes,
                hint="clips are not being sealed and uploaded: is this agent paired?",
            )  # fmt: skip
            if self.room is not None:
                self.room.note_evicted(None, None, len(evicted), "spool_limit")
        return evicted

    def entries(self) -> list[SpoolEntry]:
        """Committed entries, oldest first."""
        out = []
        for sidecar in sorted(self.directory.glob(f"*{SIDECAR_SUFFIX}")):
            entry = self._load(sidecar)
            if entry is not None:
                out.append(entry)
        return out

    def remove(self, entry: SpoolEntry) -> None:
        """Drop an entry (uploaded): un-commit first, so a crash leaves only orphans."""
        entry.sidecar.unlink(missing_ok=True)
        fsync_dir(self.directory)
        entry.clip.unlink(missing_ok=True)
        if entry.thumbnail:
            entry.thumbnail.unlink(missing_ok=True)

    def recover(self) -> Recovery:
        """At start-up, before any commit: delete work in progress and uncommitted media."""
        removed: list[Path] = []
        for path in sorted(self.tmp.iterdir()):
            _remove(path)
            removed.append(path)
        committed = {p.stem for p in self.directory.glob(f"*{SIDECAR_SUFFIX}")}
        for path in sorted(self.directory.iterdir()):
            # sealed/ belongs to the sealed spool (agent/sealer.py), which recovers itself.
            if path in (self.tmp, self.directory / SEALED_DIR) or path.suffix == SIDECAR_SUFFIX:
                continue
            if path.suffix in (CLIP_SUFFIX, THUMB_SUFFIX) and path.stem in committed:
                continue
            _remove(path)
            removed.append(path)
        fsync_dir(self.directory)
        kept = len(self.entries())
        if removed:
            log.info("spool_recovered", kept=kept, removed=[p.name for p in removed])
        return Recovery(kept=kept, removed=removed)

    def _load(self, sidecar: Path) -> SpoolEntry | None:
        try:
            body = json.loads(sidecar.read_bytes())
        except (OSError, ValueError):
            log.exception("spool_sidecar_unreadable", sidecar=str(sidecar))
            return None
        clip = self.directory / str(body.get("clip", ""))
        if not clip.is_file():
            log.error("spool_clip_missing", sidecar=str(sidecar))
            return None
        thumb = body.get("thumbnail")
        return SpoolEntry(
            id=sidecar.stem,
            clip=clip,
            thumbnail=self.directory / thumb if thumb else None,
            sidecar=sidecar,
            metadata=body,
        )


def _entry_bytes(entry: SpoolEntry) -> int:
    total = 0
    for path in (entry.clip, entry.thumbnail, entry.sidecar):
        if path is not None:
            with contextlib.suppress(OSError):  # removed meanwhile (sealed and uploaded)
                total += path.stat().st_size
    return total


def _write_durable(path: Path, data: bytes) -> None:
    with path.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Make the renames and unlinks in `path` durable (they live in the directory)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
