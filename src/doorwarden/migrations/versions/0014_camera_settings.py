"""camera settings set from the web: overrides per camera, version, the agent's report

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 17:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import doorwarden.db

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "camera_settings",
        sa.Column("device_id", sa.Uuid(), nullable=False),
        sa.Column("camera", doorwarden.db.SafeString(length=100), nullable=False),
        sa.Column("household_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("overrides", sa.JSON(), nullable=False),
        sa.Column("updated_at", doorwarden.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.Uuid(), nullable=True),
        sa.Column("applied_version", sa.Integer(), nullable=True),
        sa.Column("applied_ok", sa.Boolean(), nullable=True),
        sa.Column("applied_error", doorwarden.db.SafeString(length=500), nullable=True),
        sa.Column("applied_at", doorwarden.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("effective", sa.JSON(), nullable=True),
        sa.Column("sources", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_camera_settings_device_id_devices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["household_id"],
            ["households.id"],
            name=op.f("fk_camera_settings_household_id_households"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["updated_by"],
            ["users.id"],
            name=op.f("fk_camera_settings_updated_by_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("device_id", "camera", name=op.f("pk_camera_settings")),
    )
    op.create_index(
        op.f("ix_camera_settings_household_id"), "camera_settings", ["household_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_camera_settings_household_id"), table_name="camera_settings")
    op.drop_table("camera_settings")
