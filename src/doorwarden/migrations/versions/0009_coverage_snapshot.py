"""coverage snapshot: where each household has been since (the map's cooling-off after a
move), and the published coverage counts

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 09:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import doorwarden.db

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "coverage_places",
        sa.Column("household_id", sa.Uuid(), nullable=False),
        sa.Column("latitude", sa.Double(), nullable=True),
        sa.Column("longitude", sa.Double(), nullable=True),
        sa.Column("since", doorwarden.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["household_id"],
            ["households.id"],
            name=op.f("fk_coverage_places_household_id_households"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("household_id", name=op.f("pk_coverage_places")),
    )
    op.create_table(
        "coverage_snapshots",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("generated_at", doorwarden.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coverage_snapshots")),
    )
    # Households of before this revision are where they were made (no move was tracked):
    # they keep counting; the age rules still apply to them.
    op.execute(
        "INSERT INTO coverage_places (household_id, latitude, longitude, since)"
        " SELECT id, latitude, longitude, created_at FROM households"
    )


def downgrade() -> None:
    op.drop_table("coverage_snapshots")
    op.drop_table("coverage_places")
