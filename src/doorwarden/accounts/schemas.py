"""API shapes for accounts. Unknown fields are rejected; lengths are bounded."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from doorwarden.accounts.models import User
from doorwarden.accounts.secrets import MAX_PASSWORD_LENGTH
from doorwarden.roles import Role

Password = Annotated[str, Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SignupIn(Input):
    email: EmailStr = Field(max_length=254)
    display_name: Name
    password: Password
    invite_code: Code | None = None


class LoginIn(Input):
    email: Annotated[str, Field(min_length=1, max_length=254)]
    password: Password


class SecondFactorIn(Input):
    code: Code = Field(description="A 6-digit code from the authenticator app, or a recovery code.")


class PasswordChangeIn(Input):
    current_password: Password
    new_password: Password


class TotpConfirmIn(Input):
    code: Code


class TotpDisableIn(Input):
    password: Password


class TokenCreateIn(Input):
    name: Name
    expires_at: AwareDatetime | None = None


class AccountOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    display_name: str
    role: Role
    totp_enabled: bool
    created_at: datetime


class LoginOut(BaseModel):
    account: AccountOut | None
    second_factor_required: bool
    csrf_token: str | None = Field(
        description="Send as X-CSRF-Token on unsafe requests made with the session cookie."
    )


class SessionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    created_at: datetime
    last_seen_at: datetime
    client_address: str | None
    user_agent: str | None
    current: bool = False


class TotpEnrolmentOut(BaseModel):
    secret: str
    otpauth_uri: str


class RecoveryCodesOut(BaseModel):
    recovery_codes: list[str]


class TokenOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None


class TokenCreatedOut(TokenOut):
    token: str = Field(description="Shown once; store it now.")


class NoticeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: str
    message: str
    created_at: datetime
    read_at: datetime | None


class PasswordChangedOut(BaseModel):
    sessions_ended: int


class InviteIn(Input):
    role: Role = Role.resident
    agency_id: uuid.UUID | None = None


class InviteOut(BaseModel):
    id: uuid.UUID
    role: Role
    agency_id: uuid.UUID | None
    expires_at: datetime
    code: str = Field(description="Shown once; give it to the person invited.")
    confirmed: bool = Field(
        True,
        description="False: a proposal that works only once a second operator confirms it "
        "(legal reviewers and an agency's first officer-administrator).",
    )
    officer_admin: bool = False


class PendingInviteOut(BaseModel):
    """A proposed invite, for the second operator: who proposed what (never the code)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    role: Role
    agency_id: uuid.UUID | None
    officer_admin: bool
    created_by: uuid.UUID | None
    created_at: datetime
    expires_at: datetime


class ConfirmedInviteOut(BaseModel):
    id: uuid.UUID
    role: Role
    agency_id: uuid.UUID | None
    confirmed_by: uuid.UUID | None
    confirmed_at: datetime | None


class UserAdminOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    display_name: str
    role: Role
    is_active: bool
    created_at: datetime


class UserUpdateIn(Input):
    is_active: bool


def account_out(user: User) -> AccountOut:
    return AccountOut(
        id=user.id,
        email=user.email,
        display_name=user.display_name,
        role=user.role,
        totp_enabled=user.totp_enabled_at is not None,
        created_at=user.created_at,
    )
