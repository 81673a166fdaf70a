"""The keyring API's bodies: strict (unknown keys refused, no type coercion) and bounded.
Every base64url field has the exact length of what it encodes, so nothing oversized or
truncated is stored."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from doorwarden.crypto import member_backup

B64URL = r"^[A-Za-z0-9_-]+$"
KeyId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
# base64url without padding: 32 bytes -> 43 characters, 16 -> 22, 12 -> 16, 48 -> 64.
B64_32 = Annotated[str, StringConstraints(min_length=43, max_length=43, pattern=B64URL)]
B64_16 = Annotated[str, StringConstraints(min_length=22, max_length=22, pattern=B64URL)]
B64_12 = Annotated[str, StringConstraints(min_length=16, max_length=16, pattern=B64URL)]
B64_48 = Annotated[str, StringConstraints(min_length=64, max_length=64, pattern=B64URL)]
CredentialId = Annotated[str, StringConstraints(min_length=16, max_length=300, pattern=B64URL)]
MAX_CREDENTIAL_JSON = 16 * 1024  # a WebAuthn response with attestation fits in a few KiB
MAX_RETIRED = 64


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Argon2Kdf(Strict):
    name: Literal["argon2id"]
    m_kib: int = Field(ge=member_backup.M_KIB_RANGE[0], le=member_backup.M_KIB_RANGE[1])
    t: int = Field(ge=member_backup.T_RANGE[0], le=member_backup.T_RANGE[1])
    p: int = Field(ge=member_backup.P_RANGE[0], le=member_backup.P_RANGE[1])
    salt: B64_16


class PrfKdf(Strict):
    name: Literal["webauthn-prf"]
    credential_id: CredentialId
    salt: B64_32


class BackupRecord(Strict):
    """crypto/member_backup.py's record: ciphertext the server cannot open."""

    key_id: KeyId
    method: Literal["passphrase", "passkey"]
    kdf: Annotated[Argon2Kdf | PrfKdf, Field(discriminator="name")]
    nonce: B64_12
    ciphertext: B64_48

    @model_validator(mode="after")
    def _method_matches_kdf(self) -> Self:
        expected = "argon2id" if self.method == "passphrase" else "webauthn-prf"
        if self.kdf.name != expected:
            raise ValueError(f"a {self.method} backup's kdf is {expected}")
        return self


class WrappedIn(Strict):
    """crypto/wrap.py's JSON: a 32-byte secret wrapped to one X25519 public key."""

    recipient: KeyId
    ephemeral: B64_32
    wrapped: B64_48


class DeviceRequestIn(Strict):
    public_key: B64_32 = Field(description="The new device's ephemeral X25519 public key.")


class DeviceRequestOut(BaseModel):
    id: uuid.UUID
    public_key: str
    created_at: datetime
    expires_at: datetime
    status: Literal["pending", "approved", "collected", "expired", "cancelled"]


class ApprovalIn(Strict):
    key_id: KeyId = Field(description="The id of the member key being handed over.")
    wrapped: WrappedIn


class CollectedOut(BaseModel):
    key_id: str
    wrapped: dict[str, str]


class RetiredKeyIn(Strict):
    key_id: KeyId
    public_key: B64_32
    wrapped: WrappedIn


class RotateIn(Strict):
    previous_key_id: KeyId
    public_key: B64_32
    retired: list[RetiredKeyIn] = Field(max_length=MAX_RETIRED)


class RetiredOut(BaseModel):
    sealed_under: str
    keys: list[dict[str, Any]]


class CeremonyIn(Strict):
    ceremony_id: Annotated[uuid.UUID, Field(strict=False)]  # JSON has no UUID type
    credential: dict[str, Any]

    @field_validator("credential")
    @classmethod
    def _bounded(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(json.dumps(value)) > MAX_CREDENTIAL_JSON:
            raise ValueError(f"the credential is at most {MAX_CREDENTIAL_JSON} bytes")
        return value


class PasskeyRegistrationIn(CeremonyIn):
    backup: BackupRecord


class CeremonyOut(BaseModel):
    ceremony_id: Annotated[uuid.UUID, Field(strict=False)]  # JSON has no UUID type
    options: dict[str, Any]
    # Registration: the salt the new passkey's PRF is evaluated at. Authentication: the
    # salt of each of the member's passkeys, by credential id (evalByCredential).
    prf_salts: dict[str, str]


class BackupOut(BaseModel):
    method: str
    key_id: str
    credential_id: str | None
    created_at: datetime


class KeyringOut(BaseModel):
    key_id: str | None
    public_key: str | None
    backups: list[BackupOut]
    passkeys: list[str]
    retired: int
