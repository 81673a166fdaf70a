from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from doorwarden.crypto.keys import b64d, key_id
from doorwarden.devices.models import Encryption, PlanKind

DeviceName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class PairingCodeOut(BaseModel):
    code: str = Field(description="Type this into `doorwarden agent pair`; shown once.")
    expires_at: datetime


class PairIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
    name: DeviceName
    public_key: Annotated[str, StringConstraints(min_length=43, max_length=44)] = Field(
        description="The camera's Ed25519 public key: base64url of the 32 raw bytes."
    )


class RecipientOut(BaseModel):
    key_id: str
    public_key: str


class PlanOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    kind: PlanKind
    retention_days: int
    encryption: Encryption = Encryption.standard


class DeviceStateOut(BaseModel):
    """What a camera needs to know about itself (the token is never sent back)."""

    device_id: uuid.UUID
    household_id: uuid.UUID
    name: str
    mode: Literal["standard", "e2e"] = "standard"
    recipients: list[RecipientOut]
    plan: PlanOut
    last_sequence: int | None


class PairOut(DeviceStateOut):
    token: str = Field(description="The camera's device token (dwd_...); shown once.")


class DeviceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    created_at: datetime
    last_seen_at: datetime | None
    last_sequence: int | None


class PlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: PlanKind
    retention_days: int = Field(30, ge=1, le=365, description="Ignored for live_only.")


class EncryptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Encryption


class MemberKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    public_key: Annotated[str, StringConstraints(min_length=43, max_length=44)] = Field(
        description="Your X25519 public key: base64url of the 32 raw bytes."
    )


class MemberKeyOut(BaseModel):
    key_id: str
    public_key: str
    created_at: datetime

    @classmethod
    def of(cls, public_key: str, created_at: datetime) -> MemberKeyOut:
        raw = b64d(public_key, what="key", length=32)
        return cls(key_id=key_id(raw), public_key=public_key, created_at=created_at)
