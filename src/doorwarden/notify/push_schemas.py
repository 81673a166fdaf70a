"""Web Push API shapes: a browser's PushSubscription.toJSON() plus a label, and what is
shown back (never the endpoint: it is a capability URL)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# Endpoints seen in practice are 150-600 characters (FCM, Mozilla, Apple, WNS).
MAX_ENDPOINT_LENGTH = 2048
MAX_LABEL_LENGTH = 64


class PushKeysIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    p256dh: str = Field(
        min_length=1,
        max_length=128,
        description="The browser's P-256 public key, an uncompressed point in base64url.",
    )
    auth: str = Field(
        min_length=1,
        max_length=64,
        description="The browser's 16-byte authentication secret in base64url.",
    )


class PushSubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    endpoint: str = Field(min_length=1, max_length=MAX_ENDPOINT_LENGTH)
    # PushSubscription.toJSON() carries it (null in practice); accepted and not kept: a
    # subscription that ends is removed when its push service answers 404/410.
    expirationTime: int | float | None = Field(  # noqa: N815 - the browser's own name
        None, description="Ignored (part of PushSubscription.toJSON())."
    )
    keys: PushKeysIn
    label: (
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_LABEL_LENGTH)] | None
    ) = Field(None, description="What the member calls this device, e.g. 'Phone'.")


class PushSubscriptionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    label: str | None
    endpoint_host: str
    created_at: datetime
    last_success_at: datetime | None


class VapidPublicKeyOut(BaseModel):
    key: str = Field(
        description="The server's VAPID public key (base64url uncompressed P-256 point): "
        "PushManager.subscribe's applicationServerKey."
    )
