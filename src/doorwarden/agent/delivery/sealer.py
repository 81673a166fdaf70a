"""The sealed spool: every finished clip sealed exactly once into `<spool_dir>/sealed/`.

A plain spool entry (`spool.py`) becomes sequence number N of this device's chain in
these steps, each durable before the next (each file: temporary name, fsync, rename —
for the manifest a hard link, which never replaces an existing one — then directory
fsync; `identity.write_atomic`):

1. `N.clip.dws`, the MP4 encrypted as it is read from disk, 1 MiB at a time (in e2e
   mode its fragmented remux, `_plaintext`);
2. `N.thumb.dws`, the sealed thumbnail, when the entry has one;
3. `N.source`, the plain entry's id;
4. `N.manifest.json`, signed, naming the hash of manifest N-1: the COMMIT POINT — a
   sealed clip exists exactly when its manifest does;
5. `chain.json` `{"device", "next_sequence", "previous"}`, the chain head;
6. the plain entry is removed (`Spool.remove`).

Why a crash anywhere neither loses nor duplicates a clip, nor forks the chain
(`recover()` runs at start-up, before anything else touches the spool):

* before 4, the plain entry is intact and nothing is committed: `recover()` deletes the
  temporary files and the clip/thumb/source files that have no manifest, and the clip is
  sealed again — under the same N, which is fine: nobody ever saw an uncommitted N;
* after 4 and before 6, the plain entry is still there but `N.source` (durable before
  the manifest was renamed) names it: `recover()` removes it instead of sealing it twice;
* after 4 and before 5, `chain.json` is behind: `recover()` takes the head as the
  greater of `chain.json` and the newest committed manifest (N+1, that manifest's hash);
* `remove(N)` (the server verified clip N) deletes the manifest first, so a crash there
  leaves only debris; and it never deletes a manifest that `chain.json` does not already
  cover, so the head never goes back and a sequence number is never reused, even once
  every sealed clip was uploaded and deleted.

Within the process one lock serialises sealing, `remove` and eviction, so an uploader
thread cannot delete clip N between its commit and the removal of its plain entry (that
would leave a plain entry no `.source` names: a duplicate). One agent process owns a
spool directory.

A failed write (a full disk) before the commit point leaves the plain entry in place
and removes what was written for N; the OSError is logged (`spool.seal_failed`) and
raised, and the next `seal_pending` tries again. Eviction (`enforce_limit`, which the
caller runs after `seal_pending`, and `evict_oldest` when the disk is full: room.py)
deletes the oldest sealed clips, logging `spool.evicted`; the delivery records each
eviction for `agent status` and the device health report, and the server sees the gap
in the chain and alerts the owner, so footage never disappears silently. With a full
disk, `chain.json` may not be writable: a clip is still removed when a newer manifest
keeps the head past it. After pairing again (another device id) the old
chain's sealed clips, which can no longer be delivered, are deleted (`spool.discarded`)
and a new chain starts at 0 from GENESIS.

Test hook: DOORWARDEN_TEST_CRASH_AT=<step>[@<n>] kills this process with SIGKILL the
n-th time (default 1) sealing reaches <step> (one of `CRASH_STEPS`); the crash tests use
it. Unset, it does nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from doorwarden.agent.delivery.identity import TMP_PREFIX, DeviceIdentity, write_atomic
from doorwarden.agent.recording.fragment import write_fragmented
from doorwarden.agent.recording.spool import SEALED_DIR, Spool, SpoolEntry, fsync_dir
from doorwarden.crypto.errors import MalformedError
from doorwarden.crypto.keys import SigningKey
from doorwarden.crypto.manifest import GENESIS, SignedManifest, sign
from doorwarden.crypto.seal import ClipFacts, ClipSeal
from doorwarden.formats.clip_files import SealedPaths, committed, read_blocks, read_manifest

log = structlog.get_logger("doorwarden.agent.delivery.sealer")

CHAIN_FILE = "chain.json"
CRASH_ENV = "DOORWARDEN_TEST_CRASH_AT"
CRASH_STEPS = (
    "clip_partial",  # the first block of the sealed clip written, not yet fsynced
    "clip_written",  # ... complete under its temporary name
    "clip",  # ... renamed
    "thumb_written",
    "thumb",
    "source_written",
    "source",
    "manifest_written",
    "manifest",  # committed; chain.json not yet updated
    "chain",  # chain.json updated; the plain entry not yet removed
    "plain_removed",  # done; before the next clip
)
_PER_SEQUENCE = re.compile(r"^(\d{12})\.(?:clip\.dws|thumb\.dws|source)$")


class SealedSpoolError(Exception):
    """The sealed spool is in a state the agent must not guess about."""


@dataclass(frozen=True)
class ChainHead:
    device: str
    next_sequence: int
    previous: str  # digest of manifest next_sequence - 1, GENESIS before the first


@dataclass(frozen=True)
class SealRecovery:
    head: ChainHead
    removed: list[Path]  # sealed debris deleted
    plain_removed: list[str]  # plain entries that were already sealed
    discarded: list[int]  # sealed clips of a previous pairing, deleted


class SealedSpool:
    def __init__(
        self,
        spool_dir: Path | str,
        identity: DeviceIdentity,
        key: SigningKey,
        *,
        max_bytes: int | None = None,
    ) -> None:
        if not identity.recipients:
            raise ValueError("the device has no recipients: a clip nobody can open is refused")
        self.directory = Path(spool_dir) / SEALED_DIR
        self.identity = identity
        self.key = key
        self.max_bytes = max_bytes
        self._lock = threading.RLock()
        self._head: ChainHead | None = None  # known once recover() ran
        self._on_disk_next = 0  # chain.json's next_sequence
        self._crash = _CrashHook.from_env()

    # -- start-up ------------------------------------------------------------------------

    def recover(self, spool: Spool) -> SealRecovery:
        """Clear what a crash left, restore the chain head, drop plain entries already
        sealed. Run once at start-up, before the other methods (they refuse otherwise)."""
        with self._lock:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            discarded = self._discard_other_devices()
            ours = committed(self.directory)
            kept = {p.sequence for p in ours}
            removed = []
            for path in sorted(self.directory.iterdir()):
                match = _PER_SEQUENCE.match(path.name)
                if path.name.startswith(TMP_PREFIX) or (match and int(match.group(1)) not in kept):
                    path.unlink(missing_ok=True)
                    removed.append(path)
            fsync_dir(self.directory)

            on_disk = self._read_chain()
            head = on_disk or ChainHead(self.identity.device_id, 0, GENESIS)
            if ours and ours[-1].sequence >= head.next_sequence:
                newest = ours[-1]
                digest = read_manifest(newest.manifest).manifest.digest
                head = ChainHead(self.identity.device_id, newest.sequence + 1, digest)
            self._on_disk_next = on_disk.next_sequence if on_disk else -1
            self._head = head
            if head != on_disk:
                self._write_chain()

            plain_removed = self._drop_sealed_plain(spool)
            if removed or plain_removed or discarded:
                log.info(
                    "spool.sealed_recovered",
                    removed=[p.name for p in removed],
                    plain_removed=plain_removed,
                    discarded=discarded,
                    next_sequence=head.next_sequence,
                )
            return SealRecovery(head, removed, plain_removed, discarded)

    # -- sealing -------------------------------------------------------------------------

    def seal_pending(self, spool: Spool) -> list[int]:
        """Seal every plain entry, oldest first; their sequence numbers.

        Raises OSError (logged as `spool.seal_failed`) at the first clip that cannot be
        written; the clips sealed before it are committed, that one and the later ones
        stay in the plain spool for the next call.
        """
        with self._lock:
            self._require_recovered()
            self._drop_sealed_plain(spool)
            sealed = (self._seal(spool, entry) for entry in spool.entries())
            return [seq for seq in sealed if seq is not None]

    def _seal(self, spool: Spool, entry: SpoolEntry) -> int | None:
        """Seal one entry as the next sequence number; None if its metadata is unusable."""
        head = self._require_recovered()
        paths = SealedPaths(self.directory, head.next_sequence)
        if paths.manifest.exists():  # recover() puts the head past every manifest: a bug
            raise SealedSpoolError(f"{paths.manifest} exists: the chain head is behind it")
        try:
            facts = _facts(entry.metadata, head)
        except ValueError as exc:
            # Sealing it would sign nonsense; leaving it keeps it for a person to look at.
            log.error("spool.seal_invalid", entry=entry.id, error=str(exc))
            return None
        signed: SignedManifest | None = None
        plaintext = entry.clip
        try:
            plaintext = self._plaintext(paths, entry)
            seal = self._write_parts(paths, entry, plaintext)
            signed = sign(seal.manifest(facts), self.key)
            write_atomic(
                paths.manifest,
                signed.to_bytes(),
                replace=False,  # a committed manifest is never overwritten
                before_rename=lambda: self._crash.reached("manifest_written"),
            )
        except OSError as exc:
            if signed is None or not paths.manifest.exists():
                self._discard_uncommitted(paths)
                log.error(
                    "spool.seal_failed",
                    entry=entry.id,
                    sequence=paths.sequence,
                    errno=exc.errno,
                    error=str(exc),
                )
                raise
            # The manifest was renamed into place and only the directory fsync after it
            # failed: the clip is committed all the same, and later fsyncs persist it.
            log.warning("spool.commit_unsynced", sequence=paths.sequence, error=str(exc))
        except BaseException:
            if not paths.manifest.exists():
                self._discard_uncommitted(paths)
            raise
        finally:
            if plaintext != entry.clip:
                plaintext.unlink(missing_ok=True)
        self._crash.reached("manifest")
        self._committed(paths.sequence, signed.manifest.digest, entry, spool)
        if plaintext == entry.clip:
            _check_unchanged(entry, signed.manifest.sha256, paths.sequence)
        return paths.sequence

    def _plaintext(self, paths: SealedPaths, entry: SpoolEntry) -> Path:
        """The MP4 to seal. End-to-end: the clip remuxed as fragmented MP4, so that a
        member's browser plays it while it downloads and decrypts (recording/fragment.py),
        in a temporary file beside the sealed clip (removed after sealing; `recover()`
        clears one a crash left). The server never reads an end-to-end clip, so only the
        camera can do this. A clip FFmpeg cannot remux is sealed as recorded: it still
        plays, after the whole of it has been checked. Standard mode: the clip itself."""
        if self.identity.mode != "e2e":
            return entry.clip
        _check_unchanged(entry, _sha256(entry.clip), paths.sequence)  # the remux's differs
        target = paths.clip.with_name(f"{TMP_PREFIX}{paths.clip.name}.fmp4")
        try:
            write_fragmented(entry.clip, target)
        except Exception as exc:  # noqa: BLE001 - any failure: seal the clip as recorded
            target.unlink(missing_ok=True)
            log.warning("spool.fragment_failed", entry=entry.id, error=str(exc))
            return entry.clip
        return target

    def _write_parts(self, paths: SealedPaths, entry: SpoolEntry, plaintext: Path) -> ClipSeal:
        """Steps 1-3: the sealed clip, the sealed thumbnail, the source; each durable."""
        seal = ClipSeal([public for _, public in self.identity.recipients], mode=self.identity.mode)
        write_atomic(
            paths.clip,
            self._first_then(seal.encrypt(read_blocks(plaintext)), "clip_partial"),
            before_rename=lambda: self._crash.reached("clip_written"),
        )
        self._crash.reached("clip")
        if entry.thumbnail is not None and not entry.thumbnail.is_file():
            log.warning("spool.thumbnail_missing", entry=entry.id)  # the clip matters more
        elif entry.thumbnail is not None:
            write_atomic(
                paths.thumbnail,
                seal.seal_thumbnail(entry.thumbnail.read_bytes()),
                before_rename=lambda: self._crash.reached("thumb_written"),
            )
            self._crash.reached("thumb")
        write_atomic(
            paths.source,
            entry.id.encode(),
            before_rename=lambda: self._crash.reached("source_written"),
        )
        self._crash.reached("source")
        return seal

    def _committed(self, sequence: int, digest: str, entry: SpoolEntry, spool: Spool) -> None:
        """After the commit point nothing may fail the seal: what is left undone here is
        redone by the next `seal_pending` or `recover` (see the module docstring)."""
        self._head = ChainHead(self.identity.device_id, sequence + 1, digest)
        try:
            self._write_chain()
            self._crash.reached("chain")
            spool.remove(entry)
            self._crash.reached("plain_removed")
        except OSError as exc:
            log.warning("spool.seal_cleanup_failed", sequence=sequence, error=str(exc))

    # -- the uploader's side -------------------------------------------------------------

    def pending(self) -> list[SealedPaths]:
        """Committed sealed clips, oldest first."""
        with self._lock:
            return committed(self.directory) if self.directory.is_dir() else []

    def remove(self, sequence: int) -> None:
        """Delete a sealed clip (the server verified it, or eviction): manifest first."""
        with self._lock:
            head = self._require_recovered()
            if self._on_disk_next < head.next_sequence and sequence >= self._on_disk_next:
                # Without this, a crash after the manifest's deletion could leave a head
                # (recomputed from chain.json and the manifests) below `sequence`.
                try:
                    self._write_chain()
                except OSError:
                    # A full disk: a newer manifest still puts the head past `sequence`,
                    # so the clip may go (eviction must free room when nothing is written).
                    if not any(p.sequence > sequence for p in committed(self.directory)):
                        raise
            paths = SealedPaths(self.directory, sequence)
            paths.manifest.unlink(missing_ok=True)
            fsync_dir(self.directory)
            for path in (paths.clip, paths.thumbnail, paths.source):
                path.unlink(missing_ok=True)

    def evict_oldest(self) -> int | None:
        """Remove the oldest committed sealed clip for room (room.py records and logs it);
        its sequence number, or None when there is none or it cannot be removed."""
        with self._lock:
            pending = self.pending()
            if not pending or self._head is None:
                return None
            oldest = pending[0].sequence
            try:
                self.remove(oldest)
            except OSError as exc:
                log.error("spool.evict_failed", sequence=oldest, error=str(exc))
                return None
            log.warning("spool.evicted", sequences=[oldest], reason="disk_full")
            return oldest

    def guard(self) -> threading.RLock:
        """The lock that serialises sealing, removal and eviction (room.py takes it to
        evict plain entries, which sealing reads)."""
        return self._lock

    def enforce_limit(self) -> list[int]:
        """Evict the oldest sealed clips until they take at most `max_bytes`."""
        if self.max_bytes is None:
            return []
        with self._lock:
            sizes = [(p.sequence, _size(p)) for p in self.pending()]
            total = sum(size for _, size in sizes)
            evicted = []
            for sequence, size in sizes:
                if total <= self.max_bytes:
                    break
                self.remove(sequence)
                total -= size
                evicted.append(sequence)
            if evicted:
                log.warning(
                    "spool.evicted",
                    sequences=evicted,
                    max_bytes=self.max_bytes,
                    remaining_bytes=total,
                )
            return evicted

    # -- internals -----------------------------------------------------------------------

    def _require_recovered(self) -> ChainHead:
        if self._head is None:
            raise RuntimeError("SealedSpool.recover() must run before the spool is used")
        return self._head

    def _first_then(self, blocks: Iterator[bytes], step: str) -> Iterator[bytes]:
        """`blocks`, reaching `step` once the first one was handed to the writer."""
        first = True
        for block in blocks:
            yield block
            if first:
                first = False
                self._crash.reached(step)

    def _read_chain(self) -> ChainHead | None:
        """chain.json if it belongs to this device; None if absent or another pairing's."""
        path = self.directory / CHAIN_FILE
        try:
            body = json.loads(path.read_bytes())
            head = ChainHead(
                device=_typed(body, "device", str),
                next_sequence=_typed(body, "next_sequence", int),
                previous=_typed(body, "previous", str),
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            # Guessing would risk reusing a sequence number the server already holds.
            raise SealedSpoolError(
                f"{path} is unreadable ({exc}); pair this camera again to start a new chain"
            ) from None
        return head if head.device == self.identity.device_id else None

    def _write_chain(self) -> None:
        head = self._require_recovered()
        body = {
            "device": head.device,
            "next_sequence": head.next_sequence,
            "previous": head.previous,
        }
        write_atomic(self.directory / CHAIN_FILE, json.dumps(body, sort_keys=True).encode())
        self._on_disk_next = head.next_sequence

    def _discard_other_devices(self) -> list[int]:
        """Sealed clips of a previous pairing: signed by a key that was deleted, for a
        device the server revoked, encrypted to the old household. They can never be
        delivered and their sequence numbers would collide with the new chain."""
        discarded = []
        for paths in committed(self.directory):
            try:
                device = read_manifest(paths.manifest).manifest.device
            except (OSError, MalformedError) as exc:
                # Bit rot or tampering: kept for a person to look at, out of the chain. Its
                # other files go as debris (the clip key was wrapped inside the manifest),
                # and a plain entry it was made from, if still there, is sealed again.
                paths.manifest.rename(paths.manifest.with_name(paths.manifest.name + ".corrupt"))
                log.error("spool.manifest_unreadable", sequence=paths.sequence, error=str(exc))
                continue
            if device != self.identity.device_id:
                paths.manifest.unlink()
                discarded.append(paths.sequence)
        if discarded:
            fsync_dir(self.directory)
            log.warning("spool.discarded", reason="re-paired", sequences=discarded)
        return discarded

    def _drop_sealed_plain(self, spool: Spool) -> list[str]:
        """Remove plain entries that a committed `.source` names (sealed before a crash)."""
        sealed = set()
        for paths in committed(self.directory):
            try:
                sealed.add(paths.source.read_text().strip())
            except OSError:
                continue
        dropped = [entry for entry in spool.entries() if entry.id in sealed]
        for entry in dropped:
            spool.remove(entry)
        return [entry.id for entry in dropped]

    def _discard_uncommitted(self, paths: SealedPaths) -> None:
        for path in (paths.clip, paths.thumbnail, paths.source):
            with contextlib.suppress(OSError):  # else recover() removes it at the next start
                path.unlink(missing_ok=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    for block in read_blocks(path):
        digest.update(block)
    return digest.hexdigest()


def _check_unchanged(entry: SpoolEntry, sha256: str, sequence: int) -> None:
    """Say so if the MP4 changed since the recorder hashed it (disk fault, tampering)."""
    if entry.metadata.get("sha256") not in (None, sha256):
        log.warning("spool.clip_changed", entry=entry.id, sequence=sequence)


def _facts(meta: Mapping[str, Any], head: ChainHead) -> ClipFacts:
    """The manifest's facts from a plain entry's sidecar (recorder.py writes it)."""
    try:
        duration_s = float(_typed(meta, "duration_s", (int, float)))
        peak = float(_typed(meta, "peak_score", (int, float)))
        labels = _typed(meta, "labels", list)
        if not all(isinstance(label, str) for label in labels):
            raise ValueError("labels: must be strings")
        if duration_s < 0:
            raise ValueError("duration_s: negative")
        return ClipFacts(
            device=head.device,
            sequence=head.next_sequence,
            previous=head.previous,
            start_utc=_typed(meta, "start_utc", str),
            end_utc=_typed(meta, "end_utc", str),
            duration_ms=round(duration_s * 1000),
            labels=tuple(labels),
            motion_score=min(1000, max(0, round(peak * 1000))),
            codec=_typed(meta, "codec", str),
            width=_typed(meta, "width", int),
            height=_typed(meta, "height", int),
        )
    except OverflowError as exc:  # an infinite float
        raise ValueError(str(exc)) from None


def _typed(body: Mapping[str, Any], name: str, kind: Any) -> Any:
    value = body.get(name) if isinstance(body, Mapping) else None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"{name}: missing or of the wrong type")
    return value


def _size(paths: SealedPaths) -> int:
    total = 0
    for path in (paths.manifest, paths.clip, paths.thumbnail, paths.source):
        with contextlib.suppress(FileNotFoundError):
            total += path.stat().st_size
    return total


class _CrashHook:
    """The test hook (see the module docstring); `reached` is a no-op when unset."""

    def __init__(self, step: str | None, occurrence: int) -> None:
        self.step = step
        self.remaining = occurrence

    @classmethod
    def from_env(cls) -> _CrashHook:
        spec = os.environ.get(CRASH_ENV)
        if not spec:
            return cls(None, 0)
        step, _, nth = spec.partition("@")
        if step not in CRASH_STEPS or (nth and not nth.isdigit()):
            raise ValueError(f"{CRASH_ENV}={spec!r}: expected one of {CRASH_STEPS}[@<n>]")
        return cls(step, int(nth or 1))

    def reached(self, step: str) -> None:
        if step != self.step:
            return
        self.remaining -= 1
        if self.remaining == 0:
            os.kill(os.getpid(), signal.SIGKILL)
