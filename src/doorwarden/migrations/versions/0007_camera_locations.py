"""camera locations: each device carries its household's location and cell, with a
partial index of the cameras in service by cell (area queries read it without a join)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 19:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import doorwarden.db

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("latitude", sa.Double(), nullable=True))
        batch_op.add_column(sa.Column("longitude", sa.Double(), nullable=True))
        batch_op.add_column(
            sa.Column("location_cell", doorwarden.db.SafeString(length=16), nullable=True)
        )
    # Existing cameras take their household's location (the code keeps it current from
    # now on): one statement, the same on both databases.
    op.execute(
        "UPDATE devices SET"
        " latitude = (SELECT h.latitude FROM households h WHERE h.id = devices.household_id),"
        " longitude = (SELECT h.longitude FROM households h WHERE h.id = devices.household_id),"
        " location_cell ="
        " (SELECT h.location_cell FROM households h WHERE h.id = devices.household_id)"
    )
    op.create_index(
        "ix_devices_location_cell_in_service",
        "devices",
        ["location_cell", "latitude", "longitude", "household_id", "id"],
        sqlite_where=sa.text("revoked_at IS NULL"),
        postgresql_where=sa.text("revoked_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_devices_location_cell_in_service", table_name="devices")
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_column("location_cell")
        batch_op.drop_column("longitude")
        batch_op.drop_column("latitude")
