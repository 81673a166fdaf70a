"""household modes: home, away, disarmed, their schedule, and snoozes

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 11:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import doorwarden.db

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "household_modes",
        sa.Column("household_id", sa.Uuid(), nullable=False),
        sa.Column("mode", doorwarden.db.SafeString(length=16), nullable=False),
        sa.Column("mode_set_at", doorwarden.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("mode_set_by", sa.Uuid(), nullable=True),
        sa.Column("source", doorwarden.db.SafeString(length=16), nullable=False),
        sa.Column("definitions", sa.JSON(), nullable=False),
        sa.Column("schedule", sa.JSON(), nullable=False),
        sa.Column("scheduled", sa.Boolean(), nullable=False),
        sa.Column("updated_at", doorwarden.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["household_id"],
            ["households.id"],
            name=op.f("fk_household_modes_household_id_households"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["mode_set_by"],
            ["users.id"],
            name=op.f("fk_household_modes_mode_set_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("household_id", name=op.f("pk_household_modes")),
    )
    op.create_index(
        op.f("ix_household_modes_scheduled"), "household_modes", ["scheduled"], unique=False
    )
    op.create_table(
        "mode_snoozes",
        sa.Column("household_id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.Uuid(), nullable=True),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", doorwarden.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("until", doorwarden.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_mode_snoozes_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_mode_snoozes_device_id_devices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["household_id"],
            ["households.id"],
            name=op.f("fk_mode_snoozes_household_id_households"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_mode_snoozes_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mode_snoozes")),
    )
    op.create_index(
        "ix_mode_snoozes_household_until", "mode_snoozes", ["household_id", "until"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_mode_snoozes_household_until", table_name="mode_snoozes")
    op.drop_table("mode_snoozes")
    op.drop_index(op.f("ix_household_modes_scheduled"), table_name="household_modes")
    op.drop_table("household_modes")
