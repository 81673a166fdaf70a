"""covering indexes for area queries: households by cell with coordinates and id,
devices by household with revoked_at and id (replacing the single-column ones)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 13:20:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_households_location_cell_cover",
        "households",
        ["location_cell", "latitude", "longitude", "id"],
    )
    op.drop_index("ix_households_location_cell", table_name="households")
    op.create_index(
        "ix_devices_household_in_service", "devices", ["household_id", "revoked_at", "id"]
    )
    op.drop_index("ix_devices_household_id", table_name="devices")


def downgrade() -> None:
    op.create_index("ix_devices_household_id", "devices", ["household_id"])
    op.drop_index("ix_devices_household_in_service", table_name="devices")
    op.create_index("ix_households_location_cell", "households", ["location_cell"])
    op.drop_index("ix_households_location_cell_cover", table_name="households")
