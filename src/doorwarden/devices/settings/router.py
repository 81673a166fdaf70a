"""Camera settings API (docs/camera-settings.md): a camera's settings from the web, and
a fresh snapshot for the zone editor. The owner's alone (policy: camera_settings).

A change commits, then is pushed to the camera's agent (push.py): an agent never hears
of settings that were rolled back, and one that is away hears them when it connects.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from doorwarden.accounts.service import actor_of
from doorwarden.audit.service import record
from doorwarden.audit.tags import Tag
from doorwarden.crypto import strict_json
from doorwarden.deps import (
    ClockDep,
    ContextDep,
    LiveHubDep,
    SessionDep,
    SignerDep,
    UserDep,
    authorize,
    household_resource,
    parse_or_422,
    read_bounded,
)
from doorwarden.devices.models import Encryption, HouseholdPlan
from doorwarden.devices.settings import push, service, snapshot
from doorwarden.devices.settings.models import CAMERA_NAME_MAX, CameraSettingsRow
from doorwarden.devices.settings.schemas import (
    SETTINGS_MAX_BYTES,
    AppliedOut,
    CameraListOut,
    FieldOut,
    SettingsIn,
    SettingsOut,
)
from doorwarden.errors import Conflict
from doorwarden.live.relay import LiveHub
from doorwarden.policy import Action, Principal

router = APIRouter(
    prefix="/api/v1/households/{household_id}/devices/{device_id}", tags=["camera settings"]
)
Owner = Annotated[Principal, authorize(Action.camera_settings, household_resource)]
CameraName = Annotated[
    str, Path(min_length=1, max_length=CAMERA_NAME_MAX, description="As its agent names it.")
]
VERSION_QUERY = "The version read: checked if given, as for a change."
NO_STORE = {"Cache-Control": "no-store"}


def _announced(hub: LiveHub, device_id: uuid.UUID) -> list[str] | None:
    link = hub.agents.get(device_id)
    return list(link.cameras) if link is not None else None


def state_out(row: CameraSettingsRow | None, camera: str, *, connected: bool) -> SettingsOut:
    applied = None
    if row is not None and row.applied_version is not None and row.applied_at is not None:
        applied = AppliedOut(
            version=row.applied_version, ok=bool(row.applied_ok), error=row.applied_error,
            at=row.applied_at, effective=row.effective or {}, sources=row.sources or {},
        )  # fmt: skip
    return SettingsOut(
        camera=camera,
        version=row.version if row is not None else 0,
        settings=dict(row.overrides or {}) if row is not None else {},
        updated_at=row.updated_at if row is not None and row.version > 0 else None,
        fields={k: FieldOut(**v) for k, v in service.field_info().items()},
        applied=applied,
        connected=connected,
    )


def _parse(body: bytes) -> SettingsIn:
    strict_json.loads(body, max_bytes=SETTINGS_MAX_BYTES)
    return SettingsIn.model_validate_json(body)


@router.get("/cameras", response_model=CameraListOut)
async def list_cameras(
    household_id: uuid.UUID, device_id: uuid.UUID, _p: Owner, db: SessionDep, hub: LiveHubDep
) -> CameraListOut:
    await service.device_of(db, household_id=household_id, device_id=device_id)
    announced = _announced(hub, device_id)
    cameras = await service.cameras_of(db, device_id, announced)
    return CameraListOut(cameras=cameras, connected=announced is not None)


@router.get("/cameras/{camera}/settings", response_model=SettingsOut)
async def read_settings(
    household_id: uuid.UUID, device_id: uuid.UUID, camera: CameraName, _p: Owner,
    db: SessionDep, hub: LiveHubDep,
) -> SettingsOut:  # fmt: skip
    await service.device_of(db, household_id=household_id, device_id=device_id)
    announced = _announced(hub, device_id)
    await service.check_camera(db, device_id, camera, announced)
    row = await service.row_of(db, device_id, camera)
    return state_out(row, camera, connected=announced is not None)


@router.put(
    "/cameras/{camera}/settings",
    response_model=SettingsOut,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": SettingsIn.model_json_schema()}},
        }
    },
)
async def update_settings(
    request: Request, household_id: uuid.UUID, device_id: uuid.UUID, camera: CameraName,
    _p: Owner, user: UserDep, db: SessionDep, ctx: ContextDep, clock: ClockDep,
    hub: LiveHubDep, signer: SignerDep,
) -> SettingsOut:  # fmt: skip
    """Replace the camera's overrides. `version` is the one read: 409 version_conflict if
    it changed meanwhile; 422 invalid_input with `details.field` naming a wrong field.
    Read here rather than as a body parameter: its own limit (192 KiB, 413)."""
    body = parse_or_422(_parse, await read_bounded(request, SETTINGS_MAX_BYTES, "Settings"))
    overrides = service.validate(body.settings)
    return await _change(
        db, hub, signer, household_id=household_id, device_id=device_id, camera=camera,
        expected=body.version, overrides=overrides, user=user, ctx=ctx, clock=clock,
    )  # fmt: skip


@router.delete("/cameras/{camera}/settings", response_model=SettingsOut)
async def reset_settings(
    household_id: uuid.UUID, device_id: uuid.UUID, camera: CameraName, _p: Owner,
    user: UserDep, db: SessionDep, ctx: ContextDep, clock: ClockDep, hub: LiveHubDep,
    signer: SignerDep,
    version: Annotated[int | None, Query(ge=0, description=VERSION_QUERY)] = None,
) -> SettingsOut:  # fmt: skip
    """Reset every field to the camera's file: a new version with no overrides."""
    if version is None:
        await service.device_of(db, household_id=household_id, device_id=device_id)
        row = await service.row_of(db, device_id, camera)
        version = row.version if row is not None else 0
    return await _change(
        db, hub, signer, household_id=household_id, device_id=device_id, camera=camera,
        expected=version, overrides={}, user=user, ctx=ctx, clock=clock,
    )  # fmt: skip


async def _change(
    db: SessionDep, hub: LiveHub, signer: Any, *, household_id: uuid.UUID,
    device_id: uuid.UUID, camera: str, expected: int, overrides: dict[str, Any],
    user: UserDep, ctx: ContextDep, clock: ClockDep,
) -> SettingsOut:  # fmt: skip
    device = await service.device_of(db, household_id=household_id, device_id=device_id)
    await service.check_camera(db, device_id, camera, _announced(hub, device_id))
    await service.update(
        db, device=device, camera=camera, expected=expected, overrides=overrides,
        actor=user, ctx=ctx, now=clock.now(),
    )  # fmt: skip
    await db.commit()
    await push.send_settings(db, hub, signer, device_id, [camera], clock.now())
    row = await service.row_of(db, device_id, camera)
    return state_out(row, camera, connected=device_id in hub.agents)


@router.post(
    "/cameras/{camera}/snapshot",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}, "description": "A fresh JPEG."}},
)
async def take_snapshot(
    household_id: uuid.UUID, device_id: uuid.UUID, camera: CameraName, _p: Owner,
    user: UserDep, db: SessionDep, ctx: ContextDep, clock: ClockDep, hub: LiveHubDep,
) -> Response:  # fmt: skip
    """A fresh picture from the camera (privacy zones blacked out by the camera), for the
    zone editor: audited, never stored. 409 camera_offline when its agent is not connected
    to this server, 504 snapshot_timeout after 5 s."""
    await service.device_of(db, household_id=household_id, device_id=device_id)
    plan = await db.get(HouseholdPlan, household_id)
    if plan is not None and plan.encryption is Encryption.e2e:  # the agent refuses too
        raise Conflict(
            "This household is end-to-end encrypted: its cameras send the server no pictures."
        )
    # No transaction stays open while the camera answers (on SQLite it would hold the
    # write lock for up to 5 s): the audit event is written in a new one.
    await db.commit()
    jpeg = await snapshot.take(hub, device_id, camera)
    record(
        db, tag=Tag.camera_snapshot, actor=actor_of(user), ctx=ctx, household_id=household_id,
        target_type="device", target_id=device_id,
        extra={"camera": camera, "bytes": len(jpeg)}, occurred_at=clock.now(),
    )  # fmt: skip
    return Response(jpeg, media_type="image/jpeg", headers=NO_STORE)
