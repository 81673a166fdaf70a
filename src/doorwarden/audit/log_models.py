"""The tamper-evident log of audit events: an RFC 6962 Merkle tree kept in three tables.

* `audit_log_leaves`: entry `index` is the leaf at that position, `leaf` the exact bytes
  hashed (canonical JSON of the event's public fields, see audit/log.py), `salt` the
  private half of its commitment to the fields that stay private (never served publicly).
* `audit_log_nodes`: every perfect subtree's hash, by (level, index), so that roots and
  proofs cost O(log n) look-ups however long the log grows.
* `audit_log_checkpoints`: each signed checkpoint (C2SP tlog-checkpoint), by tree size.

Rows here are only ever inserted, by the single appender; a verifier holding an earlier
checkpoint detects any later edit, deletion, reordering, fork or roll-back.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, LargeBinary, SmallInteger, Text
from sqlalchemy.orm import Mapped, mapped_column

from doorwarden.db import Base, SafeString, utcnow


class LogLeaf(Base):
    __tablename__ = "audit_log_leaves"

    index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    event_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    leaf: Mapped[str] = mapped_column(Text)
    salt: Mapped[str] = mapped_column(SafeString(32))


class LogNode(Base):
    __tablename__ = "audit_log_nodes"

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class LogCheckpoint(Base):
    __tablename__ = "audit_log_checkpoints"

    size: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
