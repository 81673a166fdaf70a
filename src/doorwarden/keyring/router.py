"""The keyring API: a signed-in member acting on their own key, from an interactive
session (policy: account_security), with the CSRF token like every JSON call that rides
on the session cookie. Nothing here takes or returns a private key in clear."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, status

from doorwarden.clock import Clock
from doorwarden.deps import (
    ClockDep,
    ContextDep,
    LiveHubDep,
    SessionDep,
    SettingsDep,
    UserDep,
    authorize,
)
from doorwarden.devices import member_push
from doorwarden.errors import InvalidInput, NotFound
from doorwarden.keyring import passkeys, service
from doorwarden.keyring.models import DeviceRequest
from doorwarden.keyring.schemas import (
    ApprovalIn,
    BackupOut,
    BackupRecord,
    CeremonyIn,
    CeremonyOut,
    CollectedOut,
    DeviceRequestIn,
    DeviceRequestOut,
    KeyringOut,
    PasskeyRegistrationIn,
    RetiredOut,
    RotateIn,
)
from doorwarden.policy import Action, Principal

router = APIRouter(prefix="/api/v1/account/keyring", tags=["keyring"])
Own = Annotated[Principal, authorize(Action.account_security)]


def _request_out(req: DeviceRequest, clock: Clock) -> DeviceRequestOut:
    return DeviceRequestOut(
        id=req.id,
        public_key=req.public_key,
        created_at=req.created_at,
        expires_at=req.expires_at,
        status=service.request_status(req, clock.now()),
    )


@router.get("", response_model=KeyringOut)
async def keyring(_p: Own, user: UserDep, db: SessionDep) -> KeyringOut:
    """Your key's id, its backups and passkeys (no secret in any of them)."""
    return KeyringOut.model_validate(await service.overview(db, user=user))


@router.put("/backups/passphrase", response_model=BackupOut)
async def put_passphrase_backup(
    body: BackupRecord, _p: Own, user: UserDep, db: SessionDep, ctx: ContextDep
) -> BackupOut:
    """Store the passphrase backup the page made (Argon2id in the browser)."""
    if body.method != "passphrase":
        raise InvalidInput("Passkey backups are stored with their passkey's registration.")
    row = await service.store_backup(
        db, user=user, slot=service.PASSPHRASE_SLOT, backup=body, ctx=ctx
    )
    return BackupOut(
        method="passphrase", key_id=row.key_id, credential_id=None, created_at=row.created_at
    )


@router.post("/backups/passphrase/fetch")
async def fetch_passphrase_backup(
    _p: Own, user: UserDep, db: SessionDep, ctx: ContextDep, clock: ClockDep
) -> dict[str, Any]:
    """The passphrase backup, to open in the page. Rate-limited: each copy is a chance to
    guess the passphrase offline."""
    return await service.fetch_passphrase_backup(db, user=user, ctx=ctx, now=clock.now())


@router.post("/passkeys/registration-options", response_model=CeremonyOut)
async def passkey_registration_options(
    _p: Own, user: UserDep, db: SessionDep, settings: SettingsDep, clock: ClockDep
) -> CeremonyOut:
    ceremony, options = await passkeys.registration_options(
        db, user=user, settings=settings, now=clock.now()
    )
    return CeremonyOut(
        ceremony_id=ceremony.id, options=options, prf_salts={"": ceremony.prf_salt or ""}
    )


@router.post("/passkeys", status_code=status.HTTP_201_CREATED)
async def register_passkey(
    body: PasskeyRegistrationIn,
    _p: Own,
    user: UserDep,
    db: SessionDep,
    settings: SettingsDep,
    ctx: ContextDep,
    clock: ClockDep,
) -> dict[str, str]:
    """A verified passkey registration and the backup its PRF output sealed."""
    passkey = await passkeys.register(
        db, user=user, settings=settings, body=body, ctx=ctx, now=clock.now()
    )
    return {"credential_id": passkey.credential_id}


@router.post("/passkeys/authentication-options", response_model=CeremonyOut)
async def passkey_authentication_options(
    _p: Own, user: UserDep, db: SessionDep, settings: SettingsDep, clock: ClockDep
) -> CeremonyOut:
    ceremony, options, salts = await passkeys.authentication_options(
        db, user=user, settings=settings, now=clock.now()
    )
    return CeremonyOut(ceremony_id=ceremony.id, options=options, prf_salts=salts)


@router.post("/passkeys/unlock")
async def passkey_unlock(
    body: CeremonyIn,
    _p: Own,
    user: UserDep,
    db: SessionDep,
    settings: SettingsDep,
    ctx: ContextDep,
    clock: ClockDep,
) -> dict[str, Any]:
    """The passkey's backup record, after its assertion verifies."""
    return await passkeys.authenticate(
        db, user=user, settings=settings, body=body, ctx=ctx, now=clock.now()
    )


@router.post(
    "/device-requests", status_code=status.HTTP_201_CREATED, response_model=DeviceRequestOut
)
async def create_device_request(
    body: DeviceRequestIn, _p: Own, user: UserDep, db: SessionDep, ctx: ContextDep, clock: ClockDep
) -> DeviceRequestOut:
    """A new device asks for your key: it shows a code made from this public key."""
    req = await service.create_device_request(
        db, user=user, public_key=body.public_key, ctx=ctx, now=clock.now()
    )
    return _request_out(req, clock)


@router.get("/device-requests", response_model=list[DeviceRequestOut])
async def list_device_requests(
    _p: Own, user: UserDep, db: SessionDep, clock: ClockDep
) -> list[DeviceRequestOut]:
    reqs = await service.pending_requests(db, user=user, now=clock.now())
    return [_request_out(r, clock) for r in reqs]


@router.get("/device-requests/{request_id}", response_model=DeviceRequestOut)
async def get_device_request(
    request_id: uuid.UUID, _p: Own, user: UserDep, db: SessionDep, clock: ClockDep
) -> DeviceRequestOut:
    req = await service.own_request(db, user=user, request_id=request_id)
    return _request_out(req, clock)


@router.post("/device-requests/{request_id}/approval", response_model=DeviceRequestOut)
async def approve_device_request(
    request_id: uuid.UUID,
    body: ApprovalIn,
    _p: Own,
    user: UserDep,
    db: SessionDep,
    ctx: ContextDep,
    clock: ClockDep,
) -> DeviceRequestOut:
    """Your key, wrapped by this device to the new device's public key."""
    req = await service.approve(
        db, user=user, request_id=request_id, body=body, ctx=ctx, now=clock.now()
    )
    return _request_out(req, clock)


@router.post("/device-requests/{request_id}/collect", response_model=CollectedOut)
async def collect_device_request(
    request_id: uuid.UUID, _p: Own, user: UserDep, db: SessionDep, ctx: ContextDep, clock: ClockDep
) -> CollectedOut:
    """The wrapped key, once, for the device that asked."""
    req = await service.collect(db, user=user, request_id=request_id, ctx=ctx, now=clock.now())
    return CollectedOut(key_id=req.approved_key_id or "", wrapped=dict(req.wrapped or {}))


@router.post("/rotation")
async def rotate_key(
    body: RotateIn,
    _p: Own,
    user: UserDep,
    db: SessionDep,
    ctx: ContextDep,
    clock: ClockDep,
    live_hub: LiveHubDep,
) -> dict[str, str]:
    """A new key (a device was lost); the earlier ones travel wrapped to it."""
    row = await service.rotate(db, user=user, body=body, ctx=ctx, now=clock.now())
    public_key = row.public_key
    await db.commit()  # committed before the cameras fetch the new member set
    await member_push.nudge(db, live_hub, await member_push.households_of(db, user.id))
    return {"public_key": public_key}


@router.get("/retired", response_model=RetiredOut)
async def retired_keys(_p: Own, user: UserDep, db: SessionDep) -> RetiredOut:
    row = await service.retired_keys(db, user=user)
    if row is None:
        raise NotFound("No retired keys.")
    return RetiredOut(sealed_under=row.sealed_under, keys=row.keys)
