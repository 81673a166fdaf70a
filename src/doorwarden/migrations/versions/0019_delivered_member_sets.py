"""delivered member sets: which end-to-end member set each camera was given, and when
(devices/delivered_sets.py: a clip sealed while offline across a removal is accepted)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 01:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import doorwarden.db

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "delivered_member_sets",
        sa.Column("device_id", sa.Uuid(), nullable=False),
        sa.Column("key_ids", doorwarden.db.SafeString(length=2112), nullable=False),
        sa.Column("served_at", doorwarden.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_delivered_member_sets_device_id_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivered_member_sets")),
    )
    op.create_index(
        op.f("ix_delivered_member_sets_device_id"),
        "delivered_member_sets",
        ["device_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_delivered_member_sets_device_id"), table_name="delivered_member_sets")
    op.drop_table("delivered_member_sets")
