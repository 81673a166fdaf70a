"""Appending audit events to the Merkle log, and reading it back with proofs.

One appender (`append_pending`, run by the server every `log_interval_s` and by
`doorwarden log append`) takes the events not yet in the log, oldest first, and appends
them in one transaction: their leaves, the perfect-subtree nodes they complete, their
`log_index`, and a new signed checkpoint. Events are appended in the order the appender
sees them committed, so a request that commits late is appended late, never skipped.
On PostgreSQL an advisory lock keeps a second appender (another server process) out; on
SQLite the write transaction does.

A leaf is the canonical JSON of the event's public fields — identifiers, the tag, the
time — and a commitment (SHA-256 over a salt and the private fields: request id,
details, and where the actor acted from). The public can check the log without learning
who asked from where; a resident, given the salt of an event about their household, can
recompute its leaf and check its inclusion.

Where the actor acted from (client address, user agent) is committed to one step
further in (leaf version 2): the private fields hold a hash of it under a second salt,
so the household can check every entry without learning where staff acted from (an
IPv4 address under a salt the household held would be 2^32 guesses away). Both salts
are derived from the one stored per leaf, which is never served; `household_entries`
hands out the commitment's.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, cast

from sqlalchemy import Table, bindparam, func, insert, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.audit.log_models import LogCheckpoint, LogLeaf, LogNode
from doorwarden.audit.models import AuditEvent
from doorwarden.audit.readers import SCOPED_TARGETS, acted_from_outside
from doorwarden.crypto.canonical import canonical_json
from doorwarden.db import Base
from doorwarden.formats import merkle
from doorwarden.formats.checkpoint import Checkpoint, NoteKey, sign_checkpoint

# 1: the address and agent among the private fields; 2: hashed apart; 3: a quiet entry's
# actor and camera (any target naming a home or its footage) private too
LEAF_VERSION = 3
APPEND_BATCH = 20_000
MAX_ENTRIES_PER_PAGE = 1000
_LOCK_ID = 0x646F6F72  # "door": the appender's PostgreSQL advisory lock


class LogError(ValueError):
    """A request about the log that cannot be answered (an index or size out of range)."""


@dataclass(frozen=True)
class LogSigner:
    origin: str
    key: NoteKey
    private: bytes


class EventFields(Protocol):
    """An audit event's columns: a loaded AuditEvent, or a row of `_LEAF_COLUMNS`."""

    id: uuid.UUID
    occurred_at: datetime
    tag: str
    actor_user_id: uuid.UUID | None
    actor_role: str | None
    household_id: uuid.UUID | None
    agency_id: uuid.UUID | None
    target_type: str | None
    target_id: str | None
    client_address: str | None
    user_agent: str | None
    request_id: str | None
    extra: dict[str, Any] | None


# Entries that must not say in public which household they are about: legal process,
# sharing with an agency, camera programmes. Their household (and, for a clip, the clip)
# is committed to with the private fields instead: an agency reading the log must not
# learn which homes were asked, which shared and which did not, nor link a shared clip
# to the rest of its household's entries. The household still gets these entries, with
# their salts, and checks them as any other (its rows keep the household id).
QUIET_HOUSEHOLD_TAGS = ("legal:", "clip:share", "governance:programme:")


def quiet(event: EventFields) -> bool:
    return event.tag.startswith(QUIET_HOUSEHOLD_TAGS)


def _hidden_target(event: EventFields, version: int) -> bool:
    """Whether a quiet entry's target is private: a clip since version 2; since version 3
    any target naming a home or its footage (a camera too: `device:pair` and
    `clip:receive` name it in public, so it would lead back to the household)."""
    if version < 3:
        return event.target_type == "clip"
    return event.target_type in SCOPED_TARGETS


def _derived(salt: str, label: bytes) -> bytes:
    """A salt of its own for each use, from the stored one: knowing one tells nothing of
    the stored salt, nor so of the other."""
    return hashlib.sha256(b"doorwarden log " + label + b"\x00" + bytes.fromhex(salt)).digest()[:16]


def opening_salt(salt: str, version: int = LEAF_VERSION) -> str:
    """The salt of a leaf's commitment: what a household is given (hex)."""
    return salt if version == 1 else _derived(salt, b"commitment").hex()


def network(event: EventFields, salt: str) -> str:
    """The commitment to where the actor acted from, under a salt nobody is given."""
    text = _json({"client_address": event.client_address, "user_agent": event.user_agent})
    return hashlib.sha256(_derived(salt, b"network") + text).hexdigest()


def private_fields(event: EventFields, salt: str, version: int = LEAF_VERSION) -> dict[str, Any]:
    fields: dict[str, Any] = {"request_id": event.request_id, "extra": event.extra or {}}
    if version == 1:
        fields |= {"client_address": event.client_address, "user_agent": event.user_agent}
    else:
        fields["network"] = network(event, salt)
    if quiet(event):
        fields["household"] = str(event.household_id) if event.household_id else None
        if _hidden_target(event, version):
            fields["target"] = event.target_id
        if version >= 3:  # the actor's other entries (a login, a pairing) are public
            fields["actor"] = str(event.actor_user_id) if event.actor_user_id else None
    return fields


def _json(value: dict[str, Any]) -> bytes:
    """Sorted keys, no whitespace, UTF-8. Not crypto.canonical_json, which refuses floats:
    an event's details may hold one (a live session's duration), and the server that
    committed is the one that re-serialises."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return text.encode()


def private_json(event: EventFields, salt: str, version: int = LEAF_VERSION) -> bytes:
    """The private fields as committed to."""
    return _json(private_fields(event, salt, version))


def commitment(salt: str, event: EventFields, version: int = LEAF_VERSION) -> str:
    opening = bytes.fromhex(opening_salt(salt, version))
    return hashlib.sha256(opening + private_json(event, salt, version)).hexdigest()


def leaf_of(event: EventFields, salt: str) -> bytes:
    """The bytes the log hashes for `event`: public fields only (no address, no agent)."""
    at = event.occurred_at
    hidden = quiet(event)
    return canonical_json(
        {
            "v": LEAF_VERSION,
            "event": str(event.id),
            "at": int(at.timestamp() * 1000),
            "tag": event.tag,
            "actor": str(event.actor_user_id) if event.actor_user_id and not hidden else None,
            "role": event.actor_role,
            "household": str(event.household_id) if event.household_id and not hidden else None,
            "agency": str(event.agency_id) if event.agency_id else None,
            "target_type": event.target_type,
            "target": None if hidden and _hidden_target(event, LEAF_VERSION) else event.target_id,
            "commitment": commitment(salt, event),
        }
    )


class _Nodes:
    """A NodeStore over rows fetched ahead (merkle's functions are synchronous)."""

    def __init__(self, found: Mapping[merkle.Key, bytes]) -> None:
        self.found = dict(found)

    def get(self, keys: Collection[merkle.Key]) -> Mapping[merkle.Key, bytes]:
        return {k: self.found[k] for k in keys if k in self.found}


async def _fetch(db: AsyncSession, keys: Collection[merkle.Key]) -> _Nodes:
    found: dict[merkle.Key, bytes] = {}
    wanted = list(set(keys))
    for start in range(0, len(wanted), 500):  # bound the statement's parameters
        chunk = wanted[start : start + 500]
        rows = await db.execute(
            select(LogNode.level, LogNode.index, LogNode.hash).where(
                tuple_(LogNode.level, LogNode.index).in_(chunk)
            )
        )
        found.update({(level, index): bytes(h) for level, index, h in rows})
    return _Nodes(found)


async def tree_size(db: AsyncSession) -> int:
    last = await db.scalar(select(func.max(LogLeaf.index)))
    return 0 if last is None else int(last) + 1


async def _lock(db: AsyncSession) -> None:
    if db.get_bind().dialect.name == "postgresql":
        await db.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})


async def append_pending(db: AsyncSession, signer: LogSigner, *, limit: int = APPEND_BATCH) -> int:
    """Append up to `limit` events not yet in the log and sign the new checkpoint; the
    number appended. The caller commits (one transaction for all of it).

    Core statements, not ORM objects: the appender writes three rows per event, and ORM
    bookkeeping would cost more than the hashing (bench/bench_log_append.py)."""
    await _lock(db)
    events = (
        await db.execute(
            select(*_LEAF_COLUMNS)
            .where(AuditEvent.log_index.is_(None))
            .order_by(AuditEvent.occurred_at, AuditEvent.id)
            .limit(limit)
        )
    ).all()
    if not events:
        return 0
    start = await tree_size(db)
    salts = [secrets.token_hex(16) for _ in events]
    leaves = [leaf_of(e, s) for e, s in zip(events, salts, strict=True)]
    hashes = [merkle.leaf_hash(leaf) for leaf in leaves]
    new_nodes = merkle.append_nodes(start, hashes, await _fetch(db, merkle.root_keys(start)))
    await db.execute(  # Core tables: no ORM bulk bookkeeping on the hot path
        insert(_table(LogLeaf)),
        [
            {"index": start + i, "event_id": e.id, "leaf": leaf.decode(), "salt": salt}
            for i, (e, leaf, salt) in enumerate(zip(events, leaves, salts, strict=True))
        ],
    )
    await db.execute(
        insert(_table(LogNode)),
        [{"level": k[0], "index": k[1], "hash": h} for k, h in new_nodes.items()],
    )
    events_table = _table(AuditEvent)
    await db.execute(
        update(events_table).where(events_table.c.id == bindparam("event_id")),
        [{"event_id": e.id, "log_index": start + i} for i, e in enumerate(events)],
    )
    size = start + len(events)
    nodes = await _fetch(db, set(merkle.root_keys(size)) - new_nodes.keys())
    nodes.found.update(new_nodes)
    root = merkle.root(size, nodes)
    note = sign_checkpoint(Checkpoint(signer.origin, size, root), signer.key.name, signer.private)
    db.add(LogCheckpoint(size=size, root=root, note=note.decode()))
    return len(events)


def _table(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


_LEAF_COLUMNS = (
    AuditEvent.id, AuditEvent.occurred_at, AuditEvent.tag, AuditEvent.actor_user_id,
    AuditEvent.actor_role, AuditEvent.household_id, AuditEvent.agency_id,
    AuditEvent.target_type, AuditEvent.target_id, AuditEvent.client_address,
    AuditEvent.user_agent, AuditEvent.request_id, AuditEvent.extra,
)  # fmt: skip


async def latest_checkpoint(db: AsyncSession, signer: LogSigner) -> bytes:
    """The newest signed checkpoint; for an empty log, one signed now (size 0)."""
    note = await db.scalar(select(LogCheckpoint.note).order_by(LogCheckpoint.size.desc()).limit(1))
    if note is not None:
        return note.encode()
    return sign_checkpoint(
        Checkpoint(signer.origin, 0, merkle.EMPTY_ROOT), signer.key.name, signer.private
    )


async def entries(db: AsyncSession, start: int, end: int) -> Sequence[tuple[int, str]]:
    if start < 0 or end < start or end - start > MAX_ENTRIES_PER_PAGE:
        raise LogError(f"ask for 0 to {MAX_ENTRIES_PER_PAGE} entries from a start of 0 or more")
    rows = await db.execute(
        select(LogLeaf.index, LogLeaf.leaf)
        .where(LogLeaf.index >= start, LogLeaf.index < end)
        .order_by(LogLeaf.index)
    )
    return [(int(i), leaf) for i, leaf in rows]


async def _check_size(db: AsyncSession, size: int) -> None:
    current = await tree_size(db)
    if not 0 <= size <= current:
        raise LogError(f"the log has {current} entries; no tree of size {size}")


async def inclusion(db: AsyncSession, index: int, size: int) -> list[bytes]:
    await _check_size(db, size)
    if not 0 <= index < size:
        raise LogError(f"entry {index} is not in a tree of size {size}")
    return merkle.inclusion_proof(index, size, await _fetch(db, merkle.inclusion_keys(index, size)))


async def consistency(db: AsyncSession, first: int, second: int) -> list[bytes]:
    await _check_size(db, second)
    if not 0 < first <= second:
        raise LogError("consistency needs 0 < first <= second")
    keys = merkle.consistency_keys(first, second)
    return merkle.consistency_proof(first, second, await _fetch(db, keys))


@dataclass(frozen=True)
class HouseholdEntry:
    """A household's own entry, with what only its members get: the salt and the private
    fields, from which the leaf's commitment can be recomputed."""

    index: int
    leaf: str
    salt: str
    private: str  # private_json(...), exactly as committed to


async def household_entries(
    db: AsyncSession, household_id: uuid.UUID, *, before: int | None = None, limit: int = 100
) -> list[HouseholdEntry]:
    """Entries about one household, newest first (below `before`, when given), each with
    what the household may be given to check it. A version 1 entry of an actor from
    outside the household is left out: its salt opens the staff address and agent it
    commits to (they could be guessed from it), and without its salt it cannot be
    checked. Version 1 leaves predate this rule; every later one is version 2 or 3."""
    query = (
        select(LogLeaf.index.label("log_index"), LogLeaf.leaf, LogLeaf.salt, *_LEAF_COLUMNS)
        .join(AuditEvent, AuditEvent.id == LogLeaf.event_id)
        .where(AuditEvent.household_id == household_id)
        .order_by(LogLeaf.index.desc())
        .limit(limit)
    )
    if before is not None:
        query = query.where(LogLeaf.index < before)
    found = []
    for row in (await db.execute(query)).all():
        version = int(json.loads(row.leaf)["v"])
        if version == 1 and acted_from_outside(row.actor_role):
            continue
        opening, private = opening_salt(row.salt, version), private_json(row, row.salt, version)
        found.append(HouseholdEntry(row.log_index, row.leaf, opening, private.decode()))
    return found
