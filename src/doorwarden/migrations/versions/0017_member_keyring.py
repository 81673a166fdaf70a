"""member keyring: passphrase and passkey backups of members' end-to-end keys (ciphertext
only), passkeys registered for their PRF output, WebAuthn challenges, device-add requests
and their approvals, and retired keys sealed under the current one

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 00:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import doorwarden.db

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "keyring_backups",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("slot", doorwarden.db.SafeString(length=300), nullable=False),
        sa.Column("key_id", doorwarden.db.SafeString(length=32), nullable=False),
        sa.Column("record", sa.JSON(), nullable=False),
        sa.Column(
            "fetch_window_started_at", doorwarden.db.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("fetches", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", doorwarden.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_keyring_backups_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_keyring_backups")),
        sa.UniqueConstraint("user_id", "slot", name=op.f("uq_keyring_backups_user_id")),
    )
    op.create_table(
        "keyring_ceremonies",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("purpose", doorwarden.db.SafeString(length=16), nullable=False),
        sa.Column("challenge", doorwarden.db.SafeString(length=100), nullable=False),
        sa.Column("prf_salt", doorwarden.db.SafeString(length=43), nullable=True),
        sa.Column("expires_at", doorwarden.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", doorwarden.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", doorwarden.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_keyring_ceremonies_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_keyring_ceremonies")),
    )
    with op.batch_alter_table("keyring_ceremonies", schema=None) as batch_op:
        batch_op.create_index(
            "ix_keyring_ceremonies_user_expires", ["user_id", "expires_at"], unique=False
        )

    op.create_table(
        "keyring_device_requests",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("public_key", doorwarden.db.SafeString(length=64), nullable=False),
        sa.Column("expires_at", doorwarden.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("approved_at", doorwarden.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("approved_key_id", doorwarden.db.SafeString(length=32), nullable=True),
        sa.Column("wrapped", sa.JSON(), nullable=True),
        sa.Column("collected_at", doorwarden.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", doorwarden.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", doorwarden.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_keyring_device_requests_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_keyring_device_requests")),
    )
    with op.batch_alter_table("keyring_device_requests", schema=None) as batch_op:
        batch_op.create_index(
            "ix_keyring_device_requests_user_expires", ["user_id", "expires_at"], unique=False
        )

    op.create_table(
        "keyring_passkeys",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("credential_id", doorwarden.db.SafeString(length=300), nullable=False),
        sa.Column("public_key", doorwarden.db.SafeString(length=1500), nullable=False),
        sa.Column("sign_count", sa.BigInteger(), nullable=False),
        sa.Column("prf_salt", doorwarden.db.SafeString(length=43), nullable=False),
        sa.Column("last_used_at", doorwarden.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", doorwarden.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_keyring_passkeys_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_keyring_passkeys")),
        sa.UniqueConstraint("credential_id", name=op.f("uq_keyring_passkeys_credential_id")),
    )
    with op.batch_alter_table("keyring_passkeys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_keyring_passkeys_user_id"), ["user_id"], unique=False)

    op.create_table(
        "keyring_retired_keys",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("sealed_under", doorwarden.db.SafeString(length=32), nullable=False),
        sa.Column("keys", sa.JSON(), nullable=False),
        sa.Column("updated_at", doorwarden.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_keyring_retired_keys_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_keyring_retired_keys")),
    )


def downgrade() -> None:
    op.drop_table("keyring_retired_keys")
    with op.batch_alter_table("keyring_passkeys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_keyring_passkeys_user_id"))

    op.drop_table("keyring_passkeys")
    with op.batch_alter_table("keyring_device_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_keyring_device_requests_user_expires")

    op.drop_table("keyring_device_requests")
    with op.batch_alter_table("keyring_ceremonies", schema=None) as batch_op:
        batch_op.drop_index("ix_keyring_ceremonies_user_expires")

    op.drop_table("keyring_ceremonies")
    op.drop_table("keyring_backups")
