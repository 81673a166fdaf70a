"""The scheduler's one table (scheduler.py reads and writes it on its leadership
connection, in plain SQL: it holds no session there)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Mapped, mapped_column

from doorwarden.db import Base, SafeString, UTCDateTime


class JobRun(Base):
    """When each job's last periodic turn started, by the database's clock: a leader newly
    elected (the old one died just after a run) waits out the interval rather than run the
    job twice within it. PostgreSQL only; one SQLite process keeps time in its loop."""

    __tablename__ = "scheduler_job_runs"

    job: Mapped[str] = mapped_column(SafeString(100), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(timezone=True))
