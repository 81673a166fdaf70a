"""separation of duties: invites a second operator confirms, and agency
officer-administrators

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import doorwarden.db

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("invites", schema=None) as batch_op:
        batch_op.add_column(sa.Column("confirmed_by", sa.Uuid(), nullable=True))
        batch_op.add_column(
            sa.Column("confirmed_at", doorwarden.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("officer_admin", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_invites_confirmed_by_users"),
            "users",
            ["confirmed_by"],
            ["id"],
            ondelete="SET NULL",
        )
    with op.batch_alter_table("agency_officers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("is_admin", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    # Invites made before this revision were complete acts of the rules then in force.
    op.execute("UPDATE invites SET confirmed_at = created_at WHERE confirmed_at IS NULL")


def downgrade() -> None:
    with op.batch_alter_table("agency_officers", schema=None) as batch_op:
        batch_op.drop_column("is_admin")
    with op.batch_alter_table("invites", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_invites_confirmed_by_users"), type_="foreignkey")
        batch_op.drop_column("officer_admin")
        batch_op.drop_column("confirmed_at")
        batch_op.drop_column("confirmed_by")
