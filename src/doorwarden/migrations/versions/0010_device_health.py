"""device health: each camera's latest health report (its spool's disk, the clips it holds
back, defers or evicted), so the owner sees what may be lost before it is

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 10:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import doorwarden.db

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # integrity_alerts.kind gains camera_disk_full, clip_held and clips_evicted: it is a
    # non-native enum (VARCHAR(32), no CHECK constraint), so there is nothing to alter.
    op.create_table(
        "device_health",
        sa.Column("device_id", sa.Uuid(), nullable=False),
        sa.Column("reported_at", doorwarden.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("disk_full_since", doorwarden.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_device_health_device_id_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("device_id", name=op.f("pk_device_health")),
    )


def downgrade() -> None:
    op.drop_table("device_health")
