"""member key history: which end-to-end key was whose, and who was a member of which
household, from when to when (docs/e2e.md, rotation on membership change)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 00:30:00.000000
"""

import base64
import hashlib
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import doorwarden.db

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _key_id(public_b64: str) -> str:
    """crypto.keys.key_id, written out: a migration must not change when that module does."""
    raw = base64.urlsafe_b64decode(public_b64 + "=" * (-len(public_b64) % 4))
    return hashlib.sha256(raw).hexdigest()[:32]


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def upgrade() -> None:
    periods = op.create_table(
        "household_member_periods",
        sa.Column("household_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("joined_at", doorwarden.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("left_at", doorwarden.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["household_id"],
            ["households.id"],
            name=op.f("fk_household_member_periods_household_id_households"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_household_member_periods_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_household_member_periods")),
    )
    op.create_index(
        "ix_household_member_periods_member",
        "household_member_periods",
        ["household_id", "user_id"],
        unique=False,
    )
    key_periods = op.create_table(
        "member_key_periods",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("key_id", doorwarden.db.SafeString(length=32), nullable=False),
        sa.Column("public_key", doorwarden.db.SafeString(length=64), nullable=False),
        sa.Column("valid_from", doorwarden.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("valid_to", doorwarden.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_member_key_periods_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_member_key_periods")),
    )
    op.create_index(
        op.f("ix_member_key_periods_key_id"), "member_key_periods", ["key_id"], unique=False
    )
    op.create_index(
        op.f("ix_member_key_periods_user_id"), "member_key_periods", ["user_id"], unique=False
    )
    # What is known today opens the history: current members since they joined, current
    # keys since they were registered. Earlier keys and former members left no trace.
    bind = op.get_bind()
    stamp = doorwarden.db.UTCDateTime(timezone=True)
    members_table = sa.table(
        "household_members",
        sa.column("household_id", sa.Uuid()),
        sa.column("user_id", sa.Uuid()),
        sa.column("added_at", stamp),
    )
    keys_table = sa.table(
        "member_keys",
        sa.column("user_id", sa.Uuid()),
        sa.column("public_key", sa.String()),
        sa.column("created_at", stamp),
    )
    member_rows = [
        {
            "id": uuid.uuid4(),
            "household_id": h,
            "user_id": u,
            "joined_at": _utc(at),
            "left_at": None,
        }
        for h, u, at in bind.execute(sa.select(*members_table.c))
    ]
    key_rows = [
        {"id": uuid.uuid4(), "user_id": u, "key_id": _key_id(k), "public_key": k,
         "valid_from": _utc(at), "valid_to": None}
        for u, k, at in bind.execute(sa.select(*keys_table.c))
    ]  # fmt: skip
    if member_rows:
        op.bulk_insert(periods, member_rows)
    if key_rows:
        op.bulk_insert(key_periods, key_rows)


def downgrade() -> None:
    op.drop_index(op.f("ix_member_key_periods_user_id"), table_name="member_key_periods")
    op.drop_index(op.f("ix_member_key_periods_key_id"), table_name="member_key_periods")
    op.drop_table("member_key_periods")
    op.drop_index("ix_household_member_periods_member", table_name="household_member_periods")
    op.drop_table("household_member_periods")
