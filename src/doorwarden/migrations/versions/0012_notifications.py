"""notifications: push subscriptions, members' rules, and every delivery attempt

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 11:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import doorwarden.db

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Push subscriptions (notify/push_models.py).
    op.create_table(
        "push_subscriptions",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("endpoint", doorwarden.db.SafeText(), nullable=False),
        sa.Column("endpoint_sha256", doorwarden.db.SafeString(length=64), nullable=False),
        sa.Column("endpoint_host", doorwarden.db.SafeString(length=255), nullable=False),
        sa.Column("p256dh", sa.LargeBinary(), nullable=False),
        sa.Column("auth", sa.LargeBinary(), nullable=False),
        sa.Column("label", doorwarden.db.SafeString(length=64), nullable=True),
        sa.Column("last_success_at", doorwarden.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", doorwarden.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_push_subscriptions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_push_subscriptions")),
        sa.UniqueConstraint(
            "user_id", "endpoint_sha256", name=op.f("uq_push_subscriptions_user_id")
        ),
    )
    op.create_index(
        op.f("ix_push_subscriptions_user_id"), "push_subscriptions", ["user_id"], unique=False
    )
    # Members' rules, the outbox, every delivery attempt, and the alerts and notices
    # the outbox has handled (notify/models.py).
    op.create_table(
        "notify_sources",
        sa.Column(
            "source",
            sa.Enum(
                "event",
                "integrity_alert",
                "legal_notice",
                name="sourcekind",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("source_id", sa.Uuid(), nullable=False),
        sa.Column("noted_at", doorwarden.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", "source_id", name=op.f("pk_notify_sources")),
    )
    op.create_table(
        "notification_rules",
        sa.Column("household_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("cameras", sa.JSON(), nullable=True),
        sa.Column("kinds", sa.JSON(), nullable=False),
        sa.Column("quiet_start", doorwarden.db.SafeString(length=5), nullable=True),
        sa.Column("quiet_end", doorwarden.db.SafeString(length=5), nullable=True),
        sa.Column("cooldown_s", sa.Integer(), nullable=False),
        sa.Column("email", sa.Boolean(), nullable=False),
        sa.Column("updated_at", doorwarden.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["household_id"],
            ["households.id"],
            name=op.f("fk_notification_rules_household_id_households"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_notification_rules_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("household_id", "user_id", name=op.f("pk_notification_rules")),
    )
    op.create_index(
        op.f("ix_notification_rules_user_id"), "notification_rules", ["user_id"], unique=False
    )
    op.create_table(
        "notifications",
        sa.Column("household_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "ring",
                "person",
                "motion",
                "integrity_alert",
                "legal_notice",
                name="notifykind",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "source",
            sa.Enum(
                "event",
                "integrity_alert",
                "legal_notice",
                name="sourcekind",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("source_id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.Uuid(), nullable=True),
        sa.Column("occurred_at", doorwarden.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", doorwarden.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("title", doorwarden.db.SafeString(length=200), nullable=False),
        sa.Column("body", doorwarden.db.SafeString(length=500), nullable=False),
        sa.Column("url", doorwarden.db.SafeString(length=300), nullable=False),
        sa.Column("thumbnail", doorwarden.db.SafeString(length=300), nullable=True),
        sa.Column("email", sa.Boolean(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "delivered",
                "gave_up",
                "no_channel",
                name="notificationstatus",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", doorwarden.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("done_at", doorwarden.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_notifications_device_id_devices"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["household_id"],
            ["households.id"],
            name=op.f("fk_notifications_household_id_households"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_notifications_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("source", "source_id", "user_id", name=op.f("uq_notifications_source")),
    )
    op.create_index(
        op.f("ix_notifications_household_id"), "notifications", ["household_id"], unique=False
    )
    op.create_index(
        op.f("ix_notifications_next_attempt_at"), "notifications", ["next_attempt_at"], unique=False
    )
    op.create_index(
        "ix_notifications_user_id_created_at",
        "notifications",
        ["user_id", "created_at"],
        unique=False,
    )
    op.create_index(
        "ix_notifications_user_id_device_id_occurred_at",
        "notifications",
        ["user_id", "device_id", "occurred_at"],
        unique=False,
    )
    op.create_table(
        "notification_attempts",
        sa.Column("notification_id", sa.Uuid(), nullable=False),
        sa.Column(
            "channel",
            sa.Enum("push", "email", name="channel", native_enum=False, length=32),
            nullable=False,
        ),
        sa.Column("subscription_id", sa.Uuid(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "sent", "failed", "expired", name="attemptstatus", native_enum=False, length=32
            ),
            nullable=False,
        ),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("error", doorwarden.db.SafeString(length=300), nullable=True),
        sa.Column("at", doorwarden.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["notification_id"],
            ["notifications.id"],
            name=op.f("fk_notification_attempts_notification_id_notifications"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_attempts")),
    )
    op.create_index(
        op.f("ix_notification_attempts_notification_id"),
        "notification_attempts",
        ["notification_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_notification_attempts_notification_id"), table_name="notification_attempts"
    )
    op.drop_table("notification_attempts")
    op.drop_index("ix_notifications_user_id_device_id_occurred_at", table_name="notifications")
    op.drop_index("ix_notifications_user_id_created_at", table_name="notifications")
    op.drop_index(op.f("ix_notifications_next_attempt_at"), table_name="notifications")
    op.drop_index(op.f("ix_notifications_household_id"), table_name="notifications")
    op.drop_table("notifications")
    op.drop_index(op.f("ix_notification_rules_user_id"), table_name="notification_rules")
    op.drop_table("notification_rules")
    op.drop_table("notify_sources")
    op.drop_index(op.f("ix_push_subscriptions_user_id"), table_name="push_subscriptions")
    op.drop_table("push_subscriptions")
