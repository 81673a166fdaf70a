from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from doorwarden.clips.models import AlertKind


class UploadState(BaseModel):
    status: str  # "receiving" or "verified"
    received: int
    ciphertext_size: int
    clip_id: uuid.UUID


class ClipOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    device_id: uuid.UUID
    sequence: int
    start_at: datetime
    end_at: datetime
    duration_ms: int
    labels: list[str]
    ciphertext_size: int
    verified_at: datetime | None


class AlertOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    device_id: uuid.UUID
    sequence: int
    kind: AlertKind
    detail: str
    created_at: datetime
