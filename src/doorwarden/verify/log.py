"""Checking the audit log from outside: what `doorwarden verify-log` does.

Needs only the log's public face — a server's `/api/v1/log/...` or a file written by
`doorwarden log export` — and the log's verifier key, which the user pins (a key fetched
from the log under test proves nothing). With a state saved by an earlier run (the
checkpoint then, and the right edge of the tree then) the check is incremental and
catches what a single look cannot:

* the new checkpoint's signature, by the pinned key, for the expected origin;
* a smaller tree than the saved one: the log was rolled back (a database restored from an
  older copy);
* a consistency proof (RFC 9162 section 2.1.4.2) from the saved tree to the new one, and
  the same size with another root: a fork, a rewritten history;
* every entry since, in order, hashed onto the saved right edge, must give the new root
  exactly: an entry edited, deleted, inserted or moved changes it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

from doorwarden.formats import merkle
from doorwarden.formats.checkpoint import Checkpoint, CheckpointError, NoteKey, open_checkpoint

PAGE = 1000


class VerifyFailed(Exception):
    """The log is not what its checkpoints say: the message says what was found."""


class LogSource(Protocol):
    def checkpoint(self) -> bytes: ...
    def entries(self, start: int, end: int) -> list[str]: ...
    def consistency(self, first: int, second: int) -> list[bytes]: ...
    def inclusion(self, index: int, size: int) -> list[bytes]: ...


class HttpSource:
    """A running instance's public log API."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url.rstrip("/") + "/api/v1/log"
        self.client = httpx.Client(timeout=60)

    def __enter__(self) -> HttpSource:
        return self

    def __exit__(self, *_: object) -> None:
        self.client.close()

    def _get(self, path: str, **params: int) -> httpx.Response:
        response = self.client.get(self.base + path, params=params)
        if response.status_code != 200:
            raise VerifyFailed(f"GET {path}: HTTP {response.status_code}: {response.text[:200]}")
        return response

    def checkpoint(self) -> bytes:
        return self._get("/checkpoint").content

    def entries(self, start: int, end: int) -> list[str]:
        body = self._get("/entries", start=start, end=end).json()
        found = body.get("entries", [])
        indexes = [e.get("index") for e in found]
        if indexes != list(range(start, start + len(found))):
            raise VerifyFailed(f"entries {start}..{end - 1}: the server sent indexes {indexes}")
        return [str(e["leaf"]) for e in found]

    def consistency(self, first: int, second: int) -> list[bytes]:
        body = self._get("/proofs/consistency", first=first, second=second).json()
        return [bytes.fromhex(h) for h in body.get("proof", [])]

    def inclusion(self, index: int, size: int) -> list[bytes]:
        body = self._get("/proofs/inclusion", index=index, size=size).json()
        return [bytes.fromhex(h) for h in body.get("proof", [])]


class FileSource:
    """A log exported with `doorwarden log export FILE` (JSON: checkpoint, entries)."""

    def __init__(self, path: Path) -> None:
        try:
            data: dict[str, Any] = json.loads(path.read_text())
            self.note = str(data["checkpoint"]).encode()
            self.leaves = [str(leaf) for leaf in data["entries"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise VerifyFailed(f"{path}: not a log export ({exc})") from exc
        self._nodes: merkle.MemoryNodeStore | None = None

    def checkpoint(self) -> bytes:
        return self.note

    def entries(self, start: int, end: int) -> list[str]:
        return self.leaves[start:end]

    def _tree(self) -> merkle.MemoryNodeStore:
        if self._nodes is None:  # the file holds every entry: rebuild the tree once
            self._nodes = merkle.MemoryNodeStore()
            hashes = [merkle.leaf_hash(leaf.encode()) for leaf in self.leaves]
            self._nodes.put(merkle.append_nodes(0, hashes, self._nodes))
        return self._nodes

    def consistency(self, first: int, second: int) -> list[bytes]:
        return merkle.consistency_proof(first, second, self._tree())

    def inclusion(self, index: int, size: int) -> list[bytes]:
        return merkle.inclusion_proof(index, size, self._tree())


@dataclass
class SavedState:
    """What a verifier keeps between runs: the checkpoint it accepted and the tree's right
    edge then, so the next run only reads the entries added since."""

    note: str
    edge: list[str] = field(default_factory=list)

    def dump(self) -> str:
        return json.dumps({"checkpoint": self.note, "edge": self.edge}, indent=1) + "\n"

    @classmethod
    def load(cls, path: Path) -> SavedState:
        try:
            data = json.loads(path.read_text())
            return cls(str(data["checkpoint"]), [str(h) for h in data["edge"]])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise VerifyFailed(f"{path}: not a saved verifier state ({exc})") from exc


@dataclass(frozen=True)
class Report:
    checkpoint: Checkpoint
    checked_from: int  # the entries checked this run: checked_from .. size - 1
    state: SavedState


def _open(note: bytes, key: NoteKey, origin: str | None, what: str) -> Checkpoint:
    try:
        return open_checkpoint(note, key, origin=origin)
    except CheckpointError as exc:
        raise VerifyFailed(f"{what}: {exc}") from exc


def _pages(start: int, end: int) -> Iterator[tuple[int, int]]:
    for first in range(start, end, PAGE):
        yield first, min(first + PAGE, end)


def verify_log(
    source: LogSource, key: NoteKey, *, saved: SavedState | None = None, origin: str | None = None
) -> Report:
    note = source.checkpoint()
    new = _open(note, key, origin, "the log's checkpoint")
    edge = merkle.CompactRange()
    if saved is not None:
        old = _open(saved.note.encode(), key, origin, "the saved checkpoint")
        try:
            edge = merkle.CompactRange.from_hex(old.size, saved.edge)
        except ValueError as exc:
            raise VerifyFailed(f"the saved state is damaged: {exc}") from exc
        if edge.root() != old.root:
            raise VerifyFailed("the saved state does not match its own checkpoint")
        _check_extension(source, old, new)
    checked_from = edge.size
    for start, end in _pages(edge.size, new.size):
        leaves = source.entries(start, end)
        if len(leaves) != end - start:
            raise VerifyFailed(
                f"entries {start}..{end - 1}: got {len(leaves)}; entries are missing"
            )
        edge.append([merkle.leaf_hash(leaf.encode()) for leaf in leaves])
    if edge.root() != new.root:
        raise VerifyFailed(
            f"the {new.size} entries do not hash to the signed root: an entry was edited, "
            "deleted, inserted or moved"
        )
    return Report(new, checked_from, SavedState(note.decode("utf-8"), edge.to_hex()))


def _check_extension(source: LogSource, old: Checkpoint, new: Checkpoint) -> None:
    if new.size < old.size:
        raise VerifyFailed(
            f"rolled back: the log has {new.size} entries, but a checkpoint you saved "
            f"has {old.size}"
        )
    if new.size == old.size:
        if new.root != old.root:
            raise VerifyFailed(f"forked: two different trees of {new.size} entries were signed")
        return
    if old.size == 0:
        return
    proof: Sequence[bytes] = source.consistency(old.size, new.size)
    if not merkle.verify_consistency(old.size, new.size, proof, old.root, new.root):
        raise VerifyFailed(
            f"forked: the tree of {new.size} entries does not extend the saved tree of "
            f"{old.size} (the consistency proof fails)"
        )


@dataclass(frozen=True)
class EntriesReport:
    checkpoint: Checkpoint
    verified: int  # entries proven included under the checkpoint
    pending: int  # entries newer than the checkpoint (appended since; check again later)


def verify_entries(
    source: LogSource,
    key: NoteKey,
    entries: Sequence[dict[str, Any]],
    *,
    origin: str | None = None,
) -> EntriesReport:
    """A household's own entries (GET /api/v1/households/{id}/log-entries): each leaf
    recomputed from its private fields and salt, and proven included under the newest
    signed checkpoint. Catches an event edited after it was logged, and a log that
    dropped or never held an entry the household was shown."""
    checkpoint = _open(source.checkpoint(), key, origin, "the log's checkpoint")
    verified = pending = 0
    for entry in entries:
        try:
            index, leaf = int(entry["index"]), str(entry["leaf"])
            salt, private = bytes.fromhex(str(entry["salt"])), str(entry["private"])
            committed = json.loads(leaf)["commitment"]
        except (KeyError, TypeError, ValueError) as exc:
            raise VerifyFailed(f"not a log entry: {str(entry)[:120]} ({exc})") from exc
        if hashlib.sha256(salt + private.encode()).hexdigest() != committed:
            raise VerifyFailed(
                f"entry {index}: its details do not match what was logged (changed since)"
            )
        if index >= checkpoint.size:
            pending += 1
            continue
        proof = source.inclusion(index, checkpoint.size)
        if not merkle.verify_inclusion(
            merkle.leaf_hash(leaf.encode()), index, checkpoint.size, proof, checkpoint.root
        ):
            raise VerifyFailed(f"entry {index} is not in the signed log as shown")
        verified += 1
    return EntriesReport(checkpoint, verified, pending)
