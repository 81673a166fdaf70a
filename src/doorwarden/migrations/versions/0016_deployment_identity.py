"""deployment identity: the fingerprint of the secret key and the log origin that every
server instance shares; when each periodic job last started (one leader per job)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import doorwarden.db

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # One row, recorded by the first `doorwarden serve` (audit/deployment.py).
    op.create_table(
        "deployment_identity",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("secret_fingerprint", doorwarden.db.SafeString(length=64), nullable=False),
        sa.Column("log_origin", doorwarden.db.SafeString(length=300), nullable=False),
        sa.Column("recorded_at", doorwarden.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployment_identity")),
    )

    # When each periodic job last started, for the next leader (scheduler.py JobRun).
    op.create_table(
        "scheduler_job_runs",
        sa.Column("job", doorwarden.db.SafeString(length=100), nullable=False),
        sa.Column("started_at", doorwarden.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("job", name=op.f("pk_scheduler_job_runs")),
    )


def downgrade() -> None:
    op.drop_table("scheduler_job_runs")
    op.drop_table("deployment_identity")
