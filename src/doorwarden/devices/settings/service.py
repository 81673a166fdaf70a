"""Camera settings: read, change and reset them, record what the agent applied, and the
notification labels notify filters by. Services never commit; the routes (and the live
router's session for an agent's report) do, then push (push.py).

Concurrency: a change names the version it replaces. The row is read FOR UPDATE, so of
two changes naming the same version, the second waits for the first and then finds a
newer version (409 version_conflict); a camera's first change inserts, and the loser of
two concurrent inserts hits the primary key (409 too).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.accounts.models import User
from doorwarden.accounts.service import actor_of
from doorwarden.audit.service import RequestContext, record
from doorwarden.audit.tags import Tag
from doorwarden.crypto.settings_sig import MAX_DOCUMENT_BYTES, SettingsDocument
from doorwarden.devices.models import Device
from doorwarden.devices.settings import zones
from doorwarden.devices.settings.models import CAMERA_NAME_MAX, CameraSettingsRow
from doorwarden.errors import Conflict, DomainError, NotFound
from doorwarden.formats.camera_settings import (
    FIELDS,
    CameraSettings,
    SettingsError,
    parse_settings,
)

log = structlog.get_logger("doorwarden.devices.settings")

POLYGON_FIELDS = ("motion.zones", "motion.ignore", "privacy_zones")
PRIVACY = "privacy_zones"
DIGITS = 6  # normalised coordinates: a millionth of the image is far below a pixel
ERROR_MAX = 500


class InvalidSettings(DomainError):
    status_code = 422
    code = "invalid_input"


class VersionConflict(Conflict):
    code = "version_conflict"


class UnknownCamera(NotFound):
    code = "unknown_camera"


def field_info() -> dict[str, dict[str, str]]:
    """Every field's title and description, by dotted name (for the page and the API)."""
    out = {}
    for field in CameraSettings.model_fields.values():
        if field.alias is not None:
            out[field.alias] = {"title": field.title or "", "description": field.description or ""}
    return out


def _rounded(value: Any) -> Any:
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    if isinstance(value, float):
        return round(value, DIGITS)
    return value


def validate(raw: object) -> dict[str, Any]:
    """The overrides as stored and sent: validated (InvalidSettings naming the field),
    polygon coordinates rounded so that the signed document stays within its bound."""
    try:
        overrides = parse_settings(raw).overrides()
        for name in POLYGON_FIELDS:
            if name in overrides:
                overrides[name] = _rounded(overrides[name])
        overrides = parse_settings(overrides).overrides()  # rounding kept them valid
    except SettingsError as exc:
        raise InvalidSettings(
            f"{exc.field or 'settings'}: {exc.message}",
            details={"field": exc.field},
        ) from None
    return overrides


# -- reading -------------------------------------------------------------------------------


async def device_of(db: AsyncSession, *, household_id: uuid.UUID, device_id: uuid.UUID) -> Device:
    """The household's camera in service, or 404 (another household's camera is as
    unknown as one that does not exist)."""
    device = await db.scalar(
        select(Device).where(
            Device.id == device_id,
            Device.household_id == household_id,
            Device.revoked_at.is_(None),
        )
    )
    if device is None:
        raise NotFound("No such camera in this household.")
    return device


async def rows_of(db: AsyncSession, device_id: uuid.UUID) -> Sequence[CameraSettingsRow]:
    query = (
        select(CameraSettingsRow)
        .where(CameraSettingsRow.device_id == device_id)
        .order_by(CameraSettingsRow.camera)
        .execution_options(populate_existing=True)
    )
    return (await db.scalars(query)).all()


async def row_of(
    db: AsyncSession, device_id: uuid.UUID, camera: str, *, for_update: bool = False
) -> CameraSettingsRow | None:
    query = select(CameraSettingsRow).where(
        CameraSettingsRow.device_id == device_id, CameraSettingsRow.camera == camera
    )
    if for_update:
        query = query.with_for_update()
    return await db.scalar(query.execution_options(populate_existing=True))


async def cameras_of(
    db: AsyncSession, device_id: uuid.UUID, announced: Sequence[str] | None
) -> list[str]:
    """The device's cameras: as its agent announced them when connected here, else those
    with a settings row."""
    if announced is not None:
        return list(announced)
    return [row.camera for row in await rows_of(db, device_id)]


async def check_camera(
    db: AsyncSession, device_id: uuid.UUID, camera: str, announced: Sequence[str] | None
) -> None:
    """A camera one may set: one the connected agent announced, or one with a row. With
    the agent away (or connected to another server instance) any well-formed name is
    taken: the change waits for the agent, which refuses a camera it has not."""
    if not 0 < len(camera) <= CAMERA_NAME_MAX or "\x00" in camera:
        raise UnknownCamera("No such camera on this device.")
    if announced is None or camera in announced:
        return
    if await row_of(db, device_id, camera) is None:
        raise UnknownCamera("The camera's agent did not announce a camera of this name.")


# -- changing ------------------------------------------------------------------------------


async def update(
    db: AsyncSession,
    *,
    device: Device,
    camera: str,
    expected: int,
    overrides: dict[str, Any],
    actor: User,
    ctx: RequestContext,
    now: datetime,
) -> CameraSettingsRow:
    """Replace the camera's overrides (already `validate`d); a reset is `{}`."""
    row = await row_of(db, device.id, camera, for_update=True)
    current = row.version if row is not None else 0
    if expected != current:
        raise VersionConflict(
            "These settings were changed meanwhile: reload them and try again.",
            details={"version": current},
        )
    before: dict[str, Any] = dict(row.overrides or {}) if row is not None else {}
    if row is None:
        row = CameraSettingsRow(
            device_id=device.id, camera=camera, household_id=device.household_id, version=1,
            overrides=overrides, updated_at=now, updated_by=actor.id,
        )  # fmt: skip
        try:
            async with db.begin_nested():  # a concurrent first change of this camera
                db.add(row)
        except IntegrityError:
            raise VersionConflict(
                "These settings were changed meanwhile: reload them and try again.",
                details={"version": None},
            ) from None
    else:
        row.version += 1
        row.overrides, row.updated_at, row.updated_by = overrides, now, actor.id
        await db.flush()
    _check_document_size(row, now)
    _audit(db, row, before, overrides, actor=actor, ctx=ctx, now=now)
    return row


def _check_document_size(row: CameraSettingsRow, now: datetime) -> None:
    document = SettingsDocument(
        str(row.device_id), row.camera, row.version, now.isoformat(), row.overrides
    )
    if len(document.to_json().encode()) > MAX_DOCUMENT_BYTES:
        raise InvalidSettings("These settings are too large to send to the camera.")


def _changed(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return [name for name in FIELDS if before.get(name) != after.get(name)]


def privacy_before(row_before: dict[str, Any], effective: dict[str, Any] | None) -> list[Any]:
    """The privacy zones in force before a change: the web's, else what the agent last
    reported (the file's), else none known."""
    if PRIVACY in row_before:
        return list(row_before[PRIVACY])
    zones_now = (effective or {}).get(PRIVACY)
    return list(zones_now) if isinstance(zones_now, list) else []


def _audit(
    db: AsyncSession,
    row: CameraSettingsRow,
    before: dict[str, Any],
    after: dict[str, Any],
    *,
    actor: User,
    ctx: RequestContext,
    now: datetime,
) -> None:
    changed = _changed(before, after)

    def audit(tag: Tag, extra: dict[str, Any]) -> None:
        record(
            db, tag=tag, actor=actor_of(actor), ctx=ctx, household_id=row.household_id,
            target_type="device", target_id=row.device_id, extra=extra, occurred_at=now,
        )  # fmt: skip

    audit(
        Tag.camera_settings_update,
        {"camera": row.camera, "version": row.version, "fields": changed},
    )
    if PRIVACY not in changed:
        return
    old = privacy_before(before, row.effective)
    # Reset to the file: the file's zones are not known here (the agent reports them
    # after applying), so an earlier web zone counts as removed: told once too often
    # rather than never.
    new = list(after.get(PRIVACY, []))
    if _reduced(old, new):
        audit(
            Tag.camera_privacy_reduce,
            {"camera": row.camera, "version": row.version, "zones_before": len(old),
             "zones_after": len(new)},
        )  # fmt: skip


def _reduced(old: list[Any], new: list[Any]) -> bool:
    try:
        return zones.reduced(old, new)
    except (TypeError, ValueError):  # an unreadable earlier report: assume the worst
        return bool(old)


# -- the agent's report ----------------------------------------------------------------------


class Applied(BaseModel):
    """`settings_applied` from the agent (docs/live-view.md)."""

    model_config = ConfigDict(extra="ignore", strict=True)

    camera: str = Field(min_length=1, max_length=CAMERA_NAME_MAX)
    version: int = Field(ge=0, le=2**31 - 1)
    ok: bool
    error: str | None = None
    effective: dict[str, Any] = Field(default_factory=dict, max_length=len(FIELDS) * 2)
    sources: dict[str, str] = Field(default_factory=dict, max_length=len(FIELDS) * 2)


class BadReport(ValueError):
    """A settings_applied the server cannot use (logged; the link stays up)."""


async def record_applied(
    db: AsyncSession,
    *,
    device_id: uuid.UUID,
    cameras: Collection[str],
    message: dict[str, Any],
    now: datetime,
) -> CameraSettingsRow | None:
    """Store the agent's report on its camera's row (made if none: the report alone says
    what the file sets). A refusal of a version at or below one it reported applied
    changes nothing on the camera (it keeps what it had): the earlier success stays
    shown, the refusal is logged."""
    try:
        report = Applied.model_validate(message)
    except ValidationError as exc:
        raise BadReport(f"settings_applied: {exc.errors()[0]['msg']}") from None
    if report.camera not in cameras:
        raise BadReport(f"settings_applied: unknown camera {report.camera!r}")
    device = await db.get(Device, device_id)
    if device is None or device.revoked_at is not None:
        return None
    row = await row_of(db, device_id, report.camera, for_update=True)
    if row is None:
        row = CameraSettingsRow(
            device_id=device_id, camera=report.camera, household_id=device.household_id,
            version=0, overrides={}, updated_at=now,
        )  # fmt: skip
        try:
            async with db.begin_nested():
                db.add(row)
        except IntegrityError:  # made meanwhile by a change from the web
            row = await row_of(db, device_id, report.camera, for_update=True)
            if row is None:
                return None
    if (
        not report.ok and row.applied_ok
        and row.applied_version is not None and report.version <= row.applied_version
    ):  # fmt: skip
        log.warning(
            "settings.agent_refused_old", device=str(device_id), camera=report.camera,
            version=report.version, applied=row.applied_version, error=report.error,
        )  # fmt: skip
        return row
    row.applied_version, row.applied_ok, row.applied_at = report.version, report.ok, now
    row.applied_error = (report.error or "")[:ERROR_MAX] or None if not report.ok else None
    row.effective = {k: v for k, v in report.effective.items() if k in FIELDS}
    row.sources = {k: v for k, v in report.sources.items() if k in FIELDS and v in ("web", "file")}
    await db.flush()
    return row


# -- notify ----------------------------------------------------------------------------------


def labels_of(row: CameraSettingsRow | None) -> frozenset[str] | None:
    """The labels a camera notifies for (`notify.labels`), or None: every kind."""
    if row is None:
        return None
    labels = (row.overrides or {}).get("notify.labels")
    return frozenset(str(label) for label in labels) if isinstance(labels, list) else None


async def notify_labels(
    db: AsyncSession, device_id: uuid.UUID, camera: str
) -> frozenset[str] | None:
    """The labels an event of this camera must carry one of to notify (None: any). An
    event that names no camera (a clip without a camera label) takes the device's only
    camera's settings, when it has exactly one."""
    rows = await rows_of(db, device_id)
    match = next((r for r in rows if r.camera == camera), None)
    if match is None and camera == "" and len(rows) == 1:
        match = rows[0]
    return labels_of(match)
