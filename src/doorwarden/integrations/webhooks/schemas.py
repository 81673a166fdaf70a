"""The webhooks API's bodies and answers (docs/webhooks.md). The secret appears in one
answer only: the one that made it (registration, or a rotation)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from doorwarden.integrations.webhooks.ssrf import MAX_URL

MAX_DESCRIPTION = 200
# What an owner may subscribe to (models.SUBSCRIBABLE; a ping is only ever a test).
Kind = Literal["ring", "motion", "person", "mode.changed", "camera.privacy_reduced"]
Url = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_URL)]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_DESCRIPTION)]
Kinds = Annotated[list[Kind], Field(min_length=1, max_length=8)]


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Url
    description: Description = ""
    event_kinds: Kinds


class WebhookPatch(BaseModel):
    """Only what changes. `rotate_secret`: a new secret, shown in this answer only; the
    old one still signs beside it for a day, so a receiver can switch without a gap."""

    model_config = ConfigDict(extra="forbid")

    url: Url | None = None
    description: Description | None = None
    event_kinds: Kinds | None = None
    enabled: bool | None = None
    rotate_secret: bool = False


class WebhookOut(BaseModel):
    id: uuid.UUID
    url: str
    description: str
    event_kinds: list[str]
    enabled: bool
    disabled_reason: str | None
    failing_since: datetime | None
    last_success_at: datetime | None
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(description="whsec_...: shown once; store it in the receiver now")


class DeliveryOut(BaseModel):
    id: uuid.UUID
    webhook_id: str
    event_kind: str
    status: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    payload: dict[str, Any]


class TestOut(BaseModel):
    delivery_id: uuid.UUID
    webhook_id: str
    status: Literal["pending"] = "pending"
