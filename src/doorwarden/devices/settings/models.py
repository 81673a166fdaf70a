"""One row per camera of a device: the overrides its owner set from the web, their
version, and the agent's latest report of what it applied.

A camera is named as the agent names it (its hello), not by an id of ours: a device
(one agent) may serve several cameras, and the YAML on the camera box is the base these
overrides change. The row is made by the first change from the web, or by the agent's
first report (version 0: nothing set here, the report shows what the file says).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from doorwarden.db import Base, SafeString, utcnow

CAMERA_NAME_MAX = 100  # as a hello allows (live/router.py)


class CameraSettingsRow(Base):
    __tablename__ = "camera_settings"

    device_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    camera: Mapped[str] = mapped_column(SafeString(CAMERA_NAME_MAX), primary_key=True)
    # The device's household, so notify reads a camera's labels without a join.
    household_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("households.id", ondelete="CASCADE"), index=True
    )
    # 0 until something is set from the web; each change (a reset too) adds one. The
    # agent refuses a document whose version is not above the one it applied.
    version: Mapped[int] = mapped_column(default=0)
    overrides: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # dotted name: value
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    # The agent's latest `settings_applied` (null until it sent one).
    applied_version: Mapped[int | None]
    applied_ok: Mapped[bool | None]
    applied_error: Mapped[str | None] = mapped_column(SafeString(500))
    applied_at: Mapped[datetime | None]
    effective: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # every field, as applied
    sources: Mapped[dict[str, str] | None] = mapped_column(JSON)  # dotted name: "web"|"file"
