from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


class AuditEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    occurred_at: datetime
    tag: str
    actor_user_id: uuid.UUID | None
    actor_role: str | None
    household_id: uuid.UUID | None
    agency_id: uuid.UUID | None
    target_type: str | None
    target_id: str | None
    client_address: str | None
    user_agent: str | None
    request_id: str | None
    extra: dict[str, Any]
