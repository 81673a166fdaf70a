"""Receiving a sealed clip from its camera: manifest first, then the bytes in order,
then verification; only a clip whose every byte matched its signed manifest becomes
visible (docs/clip-pipeline.md).

Refusals that the owner must hear about (a bad signature, a fork, a broken link, data
that does not match) add an integrity alert to the session and raise `AlertRaised`: the
router commits the alert before it answers with the refusal, so the refusal cannot roll
the alert back. These services never commit (DESIGN.md convention 1).

The server's own storage failing (a full disk, an I/O error, the object store down, a
staged copy that no longer holds what was received) is never the camera's fault: it is
answered 507 `storage_full` or 503 `storage_unavailable` with Retry-After, with no
alert, and the clip stays `receiving` so the camera's retry completes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.audit.service import RequestContext
from doorwarden.clips.alerts import raise_alert
from doorwarden.clips.completion import AnyStaging
from doorwarden.clips.models import AlertKind, Clip, ClipStatus
from doorwarden.crypto import errors as seal_errors
from doorwarden.crypto.keys import b64d, key_id
from doorwarden.crypto.manifest import GENESIS, Manifest, SignedManifest
from doorwarden.devices.delivered_sets import held_between
from doorwarden.devices.keys import PERIOD_GRACE, member_key_ids_since
from doorwarden.devices.models import Device, PlanKind
from doorwarden.devices.service import plan_of
from doorwarden.errors import (
    DomainError,
    Forbidden,
)
from doorwarden.storage.keys import object_key

# A camera's clock may be wrong, but not by centuries: such times would break every
# calendar view (and time-zone conversion) downstream.
MIN_YEAR, MAX_YEAR = 2000, 2200
# A doorbell press records a clip labelled "ring": stored even on a live-only plan, within
# a bound per camera and RING_WINDOW (_ring_on_live_only).
RING_LABEL = "ring"
RING_WINDOW = timedelta(hours=1)

log = structlog.get_logger("doorwarden.clips.ingest")


class ManifestRefused(DomainError):
    status_code = 422
    code = "manifest_refused"


class ChainRefused(DomainError):
    status_code = 409
    code = "chain_refused"


class DataRefused(DomainError):
    status_code = 422
    code = "data_refused"


class AlertRaised(Exception):
    """A refusal with an integrity alert in the session, to commit before `error` is
    answered. Not a DomainError: a caller that forgot to commit the alert fails loudly."""

    def __init__(self, error: DomainError) -> None:
        super().__init__(error.message)
        self.error = error


def _refusal(cls: type[DomainError], code: str, message: str, **details: object) -> DomainError:
    error = cls(message, details=details or None)
    error.code = code
    return error


@dataclass(frozen=True)
class Offer:
    clip: Clip
    created: bool
    received: int


def _utc(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise _refusal(
            ManifestRefused, "malformed_manifest", f"not an ISO 8601 time: {text!r}"
        ) from None
    if value.tzinfo is None:
        raise _refusal(ManifestRefused, "malformed_manifest", f"time without a zone: {text!r}")
    if not MIN_YEAR <= value.astimezone(UTC).year <= MAX_YEAR:
        raise _refusal(ManifestRefused, "malformed_manifest", f"time out of range: {text!r}")
    return value


def _alert_and_refuse(
    db: AsyncSession,
    device: Device,
    sequence: int,
    kind: AlertKind,
    error: DomainError,
    ctx: RequestContext,
) -> AlertRaised:
    raise_alert(db, device=device, sequence=sequence, kind=kind, detail=error.message, ctx=ctx)
    return AlertRaised(error)


async def clip_at(db: AsyncSession, device: Device, sequence: int) -> Clip | None:
    return await db.scalar(
        select(Clip).where(Clip.device_id == device.id, Clip.sequence == sequence)
    )


async def offer_manifest(
    db: AsyncSession,
    *,
    device: Device,
    sequence: int,
    body: bytes,
    household_key: bytes,
    member_keys: list[bytes],
    staging: AnyStaging,
    ctx: RequestContext,
    now: datetime,
    ring_clips_per_hour: int = 0,
) -> Offer:
    try:
        signed = SignedManifest.loads(body)  # bounded in size and nesting before parsing
    except seal_errors.MalformedError as exc:
        raise _refusal(
            ManifestRefused, "malformed_manifest", f"Not a signed manifest: {exc}"
        ) from None
    try:
        manifest = signed.verify(b64d(device.public_key, what="device key", length=32))
    except seal_errors.SignatureError:
        error = _refusal(
            ManifestRefused, "bad_signature", "The manifest is not signed by this camera's key."
        )
        raise _alert_and_refuse(db, device, sequence, AlertKind.bad_signature, error, ctx) from None
    if manifest.device != str(device.id):
        error = _refusal(ManifestRefused, "wrong_device", "The manifest names another camera.")
        raise _alert_and_refuse(db, device, sequence, AlertKind.bad_signature, error, ctx)
    if manifest.sequence != sequence:
        raise _refusal(ManifestRefused, "sequence_mismatch", "The URL and the manifest disagree.")
    wrapped_to = {r.recipient for r in manifest.recipients}
    if manifest.mode == "standard" and key_id(household_key) not in wrapped_to:
        raise _refusal(
            ManifestRefused,
            "missing_recipient",
            "The clip key is not wrapped to this household's key; fetch GET /api/v1/device.",
        )
    if manifest.mode == "e2e":
        await _check_members(db, device, manifest, wrapped_to, member_keys)
    if (await plan_of(db, device.household_id)).kind is PlanKind.live_only:
        await _ring_on_live_only(db, device, manifest, now=now, per_hour=ring_clips_per_hour)

    digest = manifest.digest
    existing = await clip_at(db, device, sequence)
    if existing is not None:
        if existing.digest != digest:
            error = _refusal(
                ChainRefused,
                "chain_fork",
                f"The server already holds a different clip {sequence} from this camera.",
            )
            raise _alert_and_refuse(db, device, sequence, AlertKind.fork, error, ctx)
        if existing.status is ClipStatus.deleted:
            raise _refusal(
                ChainRefused,
                "replayed",
                f"Clip {sequence} was received and has been deleted since; "
                "it is not accepted again.",
            )
        received = existing.ciphertext_size if existing.status is ClipStatus.verified else (
            await staging.offset(device.id, sequence)
        )  # fmt: skip
        return Offer(existing, False, received)

    start, end = _utc(manifest.start_utc), _utc(manifest.end_utc)
    if end < start:
        raise _refusal(ManifestRefused, "malformed_manifest", "The clip ends before it starts.")
    await _check_link(db, device, manifest, ctx)
    clip = Clip(
        created_at=now,  # the server's clock (the hourly bound on ring clips counts by it)
        household_id=device.household_id,
        device_id=device.id,
        sequence=sequence,
        manifest=signed.to_bytes().decode(),
        digest=digest,
        previous=manifest.previous,
        start_at=start,
        end_at=end,
        duration_ms=manifest.duration_ms,
        labels=list(manifest.labels),
        label_set=_label_set(manifest.labels),
        ciphertext_size=manifest.ciphertext_size,
        thumbnail_size=manifest.thumbnail_size,
        object_key=_key(device, start, sequence, "clip"),
        thumbnail_key=_key(device, start, sequence, "thumb") if manifest.thumbnail_size else None,
    )
    db.add(clip)
    await db.flush()
    await staging.remove(device.id, sequence)  # debris of an earlier, refused attempt
    return Offer(clip, True, 0)


async def _check_members(
    db: AsyncSession,
    device: Device,
    manifest: Manifest,
    wrapped_to: set[str],
    member_keys: list[bytes],
) -> None:
    """An end-to-end clip is wrapped only to keys that were a member's of this household
    while it could have been sealed (devices.keys.member_key_ids_since): a clip recorded
    before a member left and uploaded after is accepted; one wrapped to anybody else --
    a stranger, or a member removed before the clip began -- is refused, since every
    recipient can open it (docs/e2e.md, "Rotation")."""
    members = await member_key_ids_since(
        db,
        device.household_id,
        wrapped_to,
        start=_utc(manifest.start_utc),
        current={key_id(k) for k in member_keys},
    )
    if not members:
        raise _refusal(
            ManifestRefused,
            "missing_recipient",
            "The clip key is wrapped to none of this household's members; fetch "
            "GET /api/v1/device.",
        )
    strangers = sorted(wrapped_to - members)
    if strangers:
        # A camera offline across a removal sealed to the set it last heard of: accepted
        # while it had been given no newer set by the time the clip ended (a member who
        # left cannot fetch it; refusing it would lose the clip for good).
        end = _utc(manifest.end_utc)
        held = await held_between(db, device.id, end - PERIOD_GRACE, end + PERIOD_GRACE)
        if set(strangers) <= held:
            log.warning("clips.sealed_to_an_older_set", device=str(device.id), keys=strangers)
            return
        log.warning("clips.not_a_member", device=str(device.id), keys=strangers)
        raise _refusal(
            ManifestRefused,
            "not_a_member",
            "The clip key is also wrapped to keys that were no member's of this household "
            "when the clip was recorded; fetch the current member set (GET /api/v1/device) "
            "and seal again.",
            key_ids=strangers,
        )


async def _ring_on_live_only(
    db: AsyncSession, device: Device, manifest: Manifest, *, now: datetime, per_hour: int
) -> None:
    """A live-only plan stores no recordings, but for a doorbell press: a clip whose
    signed labels include "ring" is accepted, at most `per_hour` per camera in an hour
    (settings.live_only_ring_clips_per_hour); any other clip is refused 403 live_only.

    The label is in the manifest the camera signed, so the camera vouches for it, but a
    camera (a tampered agent) could label every clip "ring", and clips are not rate
    limited as ring events are: the hourly bound keeps such a camera from turning a
    live-only plan into a recording one. Clips offered again (a resumed upload) are not
    counted twice; two offers racing may both pass the count (a bound, not a quota)."""
    if f",{RING_LABEL}," in _label_set(manifest.labels):  # as counted: not truncated off
        window = select(func.count()).where(
            Clip.device_id == device.id,
            Clip.sequence != manifest.sequence,
            Clip.created_at > now - RING_WINDOW,
            Clip.label_set.contains(f",{RING_LABEL},"),
        )
        if (await db.scalar(window) or 0) < per_hour:
            return
        log.warning("clips.live_only_rings_bounded", device=str(device.id), per_hour=per_hour)
    error = Forbidden("This household's plan stores no recordings (live view only).")
    error.code = "live_only"
    raise error


def _label_set(labels: tuple[str, ...]) -> str:
    """Clip.label_set: ",a,b," (bounded), for filtering by label."""
    return "," + "".join(f"{label[:40]}," for label in labels)[:299]


def _key(device: Device, start: datetime, sequence: int, kind: str) -> str:
    return object_key(device.household_id, device.id, start.date(), f"{sequence:012d}.{kind}.dws")


async def _check_link(
    db: AsyncSession, device: Device, manifest: Manifest, ctx: RequestContext
) -> None:
    """The new clip must follow the clip before it and precede the clip after it, where
    the server holds them (tombstones of deleted clips included). A clip whose
    predecessor never arrived is accepted with a gap alert: the link is unverifiable."""
    sequence, digest = manifest.sequence, manifest.digest
    after = await clip_at(db, device, sequence + 1)
    if after is not None and after.previous != digest:
        error = _refusal(
            ChainRefused,
            "chain_broken",
            f"Clip {sequence + 1} held by the server does not follow this clip {sequence}.",
        )
        raise _alert_and_refuse(db, device, sequence, AlertKind.broken_link, error, ctx)
    if sequence == 0:
        if manifest.previous != GENESIS:
            error = _refusal(ChainRefused, "chain_broken", "The first clip must start the chain.")
            raise _alert_and_refuse(db, device, sequence, AlertKind.broken_link, error, ctx)
        return
    before = await clip_at(db, device, sequence - 1)
    if before is not None:
        if manifest.previous != before.digest:
            error = _refusal(
                ChainRefused,
                "chain_broken",
                f"Clip {sequence} does not follow clip {sequence - 1} held by the server.",
            )
            raise _alert_and_refuse(db, device, sequence, AlertKind.broken_link, error, ctx)
        return
    below = await db.scalar(
        select(func.max(Clip.sequence)).where(Clip.device_id == device.id, Clip.sequence < sequence)
    )
    first_missing = 0 if below is None else below + 1
    raise_alert(
        db,
        device=device,
        sequence=sequence,
        kind=AlertKind.gap,
        detail=f"Clips {first_missing}..{sequence - 1} from this camera have not arrived "
        "(deleted on the camera, evicted from a full spool, or withheld).",
        ctx=ctx,
        extra={"missing_from": first_missing, "missing_to": sequence - 1},
    )
