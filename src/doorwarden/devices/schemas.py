from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

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


class SignedMemberSetOut(BaseModel):
    """crypto/member_set.py: the recipients above, signed with the settings key."""

    document: str = Field(
        description="Canonical JSON: device_id, household_id, mode, recipients, issued_at."
    )
    signature: str = Field(description="Ed25519 by the settings key (base64url).")


class DeviceStateOut(BaseModel):
    """What a camera needs to know about itself (the token is never sent back)."""

    device_id: uuid.UUID
    household_id: uuid.UUID
    name: str
    mode: Literal["standard", "e2e"] = "standard"
    recipients: list[RecipientOut]
    plan: PlanOut
    last_sequence: int | None
    settings_key: str = Field(
        description="The server's Ed25519 public key (base64url, raw 32 bytes): the camera "
        "applies only settings signed with it (docs/camera-settings.md)."
    )
    member_set: SignedMemberSetOut | None = Field(
        default=None,
        description="The mode and recipients, signed with the settings key: an agent in an "
        "end-to-end household seals only to a set it verified (docs/e2e.md).",
    )


class PairOut(DeviceStateOut):
    token: str = Field(description="The camera's device token (dwd_...); shown once.")


# -- the camera's health report (CONTEXT23 decision 4; devices/health.py) ----------------
# Base classes are what the server stores and shows; the *In subclasses are what a camera
# may send: strict (no "5" for 5, no 1 for true), unknown keys refused, every list bounded.

HEALTH_MAX_BYTES = 64 * 1024
Count = Annotated[int, Field(ge=0, le=2**53)]
Sequence = Annotated[int, Field(ge=0, le=2**53, description="A clip's sequence number.")]
# Times must say their zone (a camera's local time without one is ambiguous); kept in UTC.
Instant = Annotated[AwareDatetime, AfterValidator(lambda t: t.astimezone(UTC))]
ReasonCode = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\x00]*$")]
ReasonText = Annotated[str, StringConstraints(max_length=300, pattern=r"^[^\x00]*$")]
_STRICT = ConfigDict(extra="forbid", strict=True)


class Spool(BaseModel):
    free_bytes: Count = Field(description="Free space on the spool's disk.")
    total_bytes: Count = Field(description="Size of the spool's disk.")
    pending_clips: Count = Field(description="Sealed clips not yet delivered.")
    pending_bytes: Count = Field(description="Their size on disk.")
    disk_full: bool = Field(description="The last write to the spool found the disk full.")

    @model_validator(mode="after")
    def _free_within_total(self) -> Self:
        if self.free_bytes > self.total_bytes:
            raise ValueError("free_bytes is larger than total_bytes")
        return self


class HeldClip(BaseModel):
    """Not offered again without a person (`doorwarden agent retry` on the camera box)."""

    sequence: Sequence
    code: ReasonCode
    message: ReasonText
    since: Instant


class DeferredClip(BaseModel):
    """Refused for a reason that may pass: offered again at next_attempt."""

    sequence: Sequence
    code: ReasonCode
    message: ReasonText
    next_attempt: Instant


class Eviction(BaseModel):
    """Undelivered clips the camera deleted to make room. first/last are null for clips
    evicted before they were sealed (they never had a sequence number)."""

    first: Sequence | None
    last: Sequence | None
    count: int = Field(ge=1, le=2**53)
    reason: Literal["spool_limit", "disk_full"]
    at: Instant

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.first is not None and self.last is not None and self.first > self.last:
            raise ValueError("first is after last")
        return self


class SpoolIn(Spool):
    model_config = _STRICT


class HeldClipIn(HeldClip):
    model_config = _STRICT


class DeferredClipIn(DeferredClip):
    model_config = _STRICT


class EvictionIn(Eviction):
    model_config = _STRICT


class HealthIn(BaseModel):
    """Body of PUT /api/v1/device/health (at most HEALTH_MAX_BYTES)."""

    model_config = _STRICT

    spool: SpoolIn
    held: list[HeldClipIn] = Field(default_factory=list, max_length=100)
    deferred: list[DeferredClipIn] = Field(default_factory=list, max_length=100)
    evicted: list[EvictionIn] = Field(
        default_factory=list, max_length=50, description="Newest last."
    )


class HealthOut(BaseModel):
    """A camera's latest health report, as its household's owners see it."""

    reported_at: datetime = Field(description="When the server received it (server clock).")
    disk_full_since: datetime | None = Field(
        description="Since when its reports say the disk is full (server clock)."
    )
    spool: Spool
    held: list[HeldClip]
    deferred: list[DeferredClip]
    evicted: list[Eviction]


class DeviceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    created_at: datetime
    last_seen_at: datetime | None
    last_sequence: int | None
    health: HealthOut | None = Field(
        None, description="Its latest health report: to the household's owners only."
    )


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
