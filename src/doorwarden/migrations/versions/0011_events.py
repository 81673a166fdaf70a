"""events: doorbell rings, people and motion as events a household sees and is told of

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 11:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import doorwarden.db

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KIND = sa.Enum("ring", "person", "motion", name="eventkind", native_enum=False, length=32)
SOURCE = sa.Enum(
    "button", "gpio", "onvif", "mqtt", "cli", "detector",
    name="eventsource", native_enum=False, length=32,
)  # fmt: skip


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("household_id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.Uuid(), nullable=False),
        sa.Column("camera", doorwarden.db.SafeString(length=64), nullable=False),
        sa.Column("kind", KIND, nullable=False),
        sa.Column("occurred_at", doorwarden.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("received_at", doorwarden.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("source", SOURCE, nullable=False),
        sa.Column("agent_event_id", doorwarden.db.SafeString(length=64), nullable=True),
        sa.Column("clip_id", sa.Uuid(), nullable=True),
        sa.Column("notified_at", doorwarden.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["clip_id"], ["clips.id"], name=op.f("fk_events_clip_id_clips"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_events_device_id_devices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["household_id"],
            ["households.id"],
            name=op.f("fk_events_household_id_households"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint("clip_id", name=op.f("uq_events_clip_id")),
        sa.UniqueConstraint("device_id", "agent_event_id", name=op.f("uq_events_device_id")),
    )
    op.create_index("ix_events_household_id_occurred_at", "events", ["household_id", "occurred_at"])
    op.create_index(
        "ix_events_device_id_kind_occurred_at", "events", ["device_id", "kind", "occurred_at"]
    )
    op.create_index(
        "ix_events_unnotified",
        "events",
        ["received_at"],
        postgresql_where=sa.text("notified_at IS NULL"),
        sqlite_where=sa.text("notified_at IS NULL"),
    )
    op.create_table(
        "event_seen",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("seen_at", doorwarden.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_event_seen_event_id_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_event_seen_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("event_id", "user_id", name=op.f("pk_event_seen")),
    )
    op.create_index(op.f("ix_event_seen_user_id"), "event_seen", ["user_id"])
    op.create_table(
        "event_ring_refusals",
        sa.Column("device_id", sa.Uuid(), nullable=False),
        sa.Column("household_id", sa.Uuid(), nullable=False),
        sa.Column("refused", sa.Integer(), nullable=False),
        sa.Column("first_refused_at", doorwarden.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_refused_at", doorwarden.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_event_ring_refusals_device_id_devices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["household_id"],
            ["households.id"],
            name=op.f("fk_event_ring_refusals_household_id_households"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("device_id", name=op.f("pk_event_ring_refusals")),
    )
    op.create_index(
        op.f("ix_event_ring_refusals_household_id"), "event_ring_refusals", ["household_id"]
    )


def downgrade() -> None:
    op.drop_table("event_ring_refusals")
    op.drop_table("event_seen")
    op.drop_table("events")
