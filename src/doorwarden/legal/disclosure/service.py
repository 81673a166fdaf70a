"""Disclosure packages: building the signed ZIP an agency receives (see
docs/legal-process.md, "Disclosure packages", for the format and why).

The ZIP is written to a temporary file under the data directory, clip by clip from the
store (clips are tens of MB: nothing holds them whole), then stored under the agency's
prefix; the temporary file goes whatever happens. Every clip is checked on the way out
— its manifest against its camera's key, its bytes against its manifest — so the server
never signs a package it would itself fail.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.accounts.models import User
from doorwarden.agencies.models import Agency, LegalDocument
from doorwarden.audit.log import LogSigner
from doorwarden.audit.log_models import LogCheckpoint
from doorwarden.audit.models import AuditEvent
from doorwarden.audit.service import Actor, RequestContext, record
from doorwarden.audit.tags import Tag
from doorwarden.clips.models import Clip, ClipStatus
from doorwarden.config import Settings
from doorwarden.crypto.canonical import canonical_json
from doorwarden.crypto.errors import NotARecipientError, SealError
from doorwarden.crypto.keys import RecipientKey, b64d, b64e
from doorwarden.crypto.manifest import SignedManifest
from doorwarden.crypto.seal import clip_key
from doorwarden.db import on_rollback
from doorwarden.devices.keys import household_private_key
from doorwarden.devices.models import Device
from doorwarden.errors import DomainError
from doorwarden.formats.checkpoint import sign_note
from doorwarden.formats.clip_files import READ_BLOCK
from doorwarden.formats.package_files import (
    CONTENT_AVAILABLE,
    CONTENT_NOT_AVAILABLE,
    CUSTODY_JSON,
    DEVICES_JSON,
    FORMAT,
    KEYS_JSON,
    PACKAGE_JSON,
    PACKAGE_SIG,
    README_TXT,
    REQUEST_JSON,
    SUBSCRIBERS_JSON,
    VERSION,
    clip_paths,
    clip_stem,
    document_path,
    sig_text,
)
from doorwarden.households.models import Household, HouseholdMember
from doorwarden.legal.disclosure.files import (
    PackageZip,
    custody_json,
    file_digest,
    iso,
    readme,
    request_json,
    subscribers_json,
)
from doorwarden.legal.disclosure.models import Package, PackageClip, PackageKind
from doorwarden.legal.models import LegalRequest, ScopeItem, Target
from doorwarden.storage.base import ClipStore

log = structlog.get_logger("doorwarden.legal.disclosure.service")
TMP_DIR = "package-tmp"
_IN_CHUNK = 500  # ids per IN (...) list: bounded statement parameters


class PackageBuildError(DomainError):
    """A stored clip or document is not what its record says: nothing is disclosed, and
    the decision that asked for the package is not recorded either (its transaction
    rolls back), so it can be taken again once the operator has looked."""

    status_code = 500
    code = "package_integrity_failed"


def package_key(agency_id: uuid.UUID, package_id: uuid.UUID) -> str:
    return f"legal/agencies/{agency_id}/packages/{package_id}.zip"


@dataclass(frozen=True)
class _Prepared:
    clip: Clip
    signed: SignedManifest
    key: bytes | None  # None: end-to-end, content not available to the provider


def _json(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


async def _prepare(
    db: AsyncSession, clips: Sequence[Clip], devices: dict[uuid.UUID, Device], secret: str
) -> list[_Prepared]:
    """Each clip's signed manifest, checked against its camera's key, and its clip key
    when the provider holds one (standard mode: the household key opens it)."""
    household_keys: dict[uuid.UUID, RecipientKey | None] = {}
    out = []
    for clip in sorted(clips, key=lambda c: (str(c.device_id), c.sequence)):
        if clip.status is not ClipStatus.verified:
            raise ValueError(f"clip {clip.id} is {clip.status}, not verified")
        device = devices[clip.device_id]
        public = b64d(device.public_key, what="device key", length=32)
        try:
            signed = SignedManifest.parse(json.loads(clip.manifest))
            manifest = signed.verify(public)
        except (SealError, ValueError) as exc:
            raise PackageBuildError(f"clip {clip.id}: its manifest does not verify") from exc
        if (manifest.device, manifest.sequence) != (str(clip.device_id), clip.sequence):
            raise PackageBuildError(f"clip {clip.id}: the manifest is another clip's")
        key = None
        if manifest.mode == "standard":
            if clip.household_id not in household_keys:
                household_keys[clip.household_id] = await household_private_key(
                    db, secret, clip.household_id
                )
            recipient = household_keys[clip.household_id]
            try:
                key = clip_key(signed, public, recipient) if recipient is not None else None
            except NotARecipientError:  # wrapped to other keys only: the server cannot open it
                key = None
        out.append(_Prepared(clip, signed, key))
    return out


async def _in_chunks(db: AsyncSession, query: Any, column: Any, ids: Sequence[Any]) -> list[Any]:
    rows: list[Any] = []
    for start in range(0, len(ids), _IN_CHUNK):
        rows += (await db.scalars(query.where(column.in_(ids[start : start + _IN_CHUNK])))).all()
    return rows


async def _custody(
    db: AsyncSession, request: LegalRequest, clips: Sequence[Clip], signer: LogSigner, now: datetime
) -> dict[str, Any]:
    events = (
        await db.scalars(
            select(AuditEvent)
            .where(AuditEvent.target_type == "legal_request")
            .where(AuditEvent.target_id == str(request.id))
            .order_by(AuditEvent.occurred_at, AuditEvent.id)
        )
    ).all()
    received_query = select(AuditEvent).where(
        AuditEvent.tag == str(Tag.clip_receive), AuditEvent.target_type == "clip"
    )
    received = await _in_chunks(
        db, received_query, AuditEvent.target_id, [str(c.id) for c in clips]
    )
    checkpoint = await db.scalar(
        select(LogCheckpoint.note).order_by(LogCheckpoint.size.desc()).limit(1)
    )
    return custody_json(
        request, events, clips, {e.target_id: e for e in received}, log_origin=signer.origin,
        log_key=signer.key.verifier(), checkpoint=checkpoint, now=now,
    )  # fmt: skip


async def _subscribers(db: AsyncSession, household_ids: Sequence[uuid.UUID]) -> list[Any]:
    ids = sorted(set(household_ids))
    households = await _in_chunks(db, select(Household).order_by(Household.id), Household.id, ids)
    members = []
    for start in range(0, len(ids), _IN_CHUNK):
        rows = await db.execute(
            select(HouseholdMember, User)
            .join(User, User.id == HouseholdMember.user_id)
            .where(HouseholdMember.household_id.in_(ids[start : start + _IN_CHUNK]))
            .order_by(HouseholdMember.role, HouseholdMember.added_at, User.id)
        )
        members += [(m, u) for m, u in rows]
    if len(households) != len(ids):
        raise ValueError("a subscriber household does not exist")
    return subscribers_json(households, members)


async def _copy(zipped: PackageZip, name: str, chunks: AsyncIterator[bytes]) -> tuple[int, str]:
    """Stream an object from the store into the ZIP (file writes in a worker thread)."""
    await anyio.to_thread.run_sync(zipped.begin, name)
    async for block in chunks:
        await anyio.to_thread.run_sync(zipped.write, block)
    return await anyio.to_thread.run_sync(zipped.end)


async def _add(zipped: PackageZip, name: str, data: bytes) -> str:
    return await anyio.to_thread.run_sync(zipped.add, name, data)


async def _write_clips(zipped: PackageZip, prepared: Sequence[_Prepared], store: ClipStore) -> None:
    for p in prepared:
        m, device = p.signed.manifest, str(p.clip.device_id)
        manifest_name, clip_name, thumb_name = clip_paths(device, p.clip.sequence)
        await _add(zipped, manifest_name, p.clip.manifest.encode())
        got = await _copy(zipped, clip_name, store.stream(p.clip.object_key))
        if got != (m.ciphertext_size, m.ciphertext_sha256):
            raise PackageBuildError(f"clip {p.clip.id}: the stored clip is not the one signed")
        if m.thumbnail_size:
            if not p.clip.thumbnail_key:
                raise PackageBuildError(f"clip {p.clip.id}: its thumbnail is missing")
            got = await _copy(zipped, thumb_name, store.stream(p.clip.thumbnail_key))
            if got != (m.thumbnail_size, m.thumbnail_sha256):
                raise PackageBuildError(f"clip {p.clip.id}: the stored thumbnail is not the one")


def _clip_entry(p: _Prepared) -> dict[str, Any]:
    m = p.signed.manifest
    manifest_name, clip_name, thumb_name = clip_paths(m.device, m.sequence)
    return {
        "id": str(p.clip.id), "device": m.device, "sequence": m.sequence, "start": m.start_utc,
        "end": m.end_utc, "duration_ms": m.duration_ms, "labels": list(m.labels),
        "content": CONTENT_AVAILABLE if p.key is not None else CONTENT_NOT_AVAILABLE,
        "manifest": manifest_name, "clip": clip_name,
        "thumbnail": thumb_name if m.thumbnail_size else None,
    }  # fmt: skip


async def _documents(db: AsyncSession, request: LegalRequest) -> list[LegalDocument]:
    ids = [
        i
        for i in (request.document_id, request.nondisclosure_document_id, request.proof_document_id)
        if i is not None
    ]
    docs = await _in_chunks(db, select(LegalDocument), LegalDocument.id, ids)
    return sorted(docs, key=lambda d: ids.index(d.id))


async def build_package(
    db: AsyncSession,
    *,
    request: LegalRequest,
    kind: PackageKind,
    clips: Sequence[Clip],
    subscriber_households: Sequence[uuid.UUID],
    store: ClipStore,
    signer: LogSigner,
    settings: Settings,
    actor: Actor,
    ctx: RequestContext,
    now: datetime,
    provisional: bool = False,
) -> Package:
    """Build, sign and store the package; add its Package and PackageClip rows and the
    `legal:package:create` audit event to the session (the caller commits)."""
    if kind is PackageKind.subscriber and clips:
        raise ValueError("a subscriber package holds subscriber information only, no clip")
    if kind is not PackageKind.subscriber and subscriber_households:
        raise ValueError("subscriber information goes only in a subscriber package")
    package_id = uuid.uuid4()
    agency = await db.get(Agency, request.agency_id)
    if agency is None:
        raise ValueError(f"agency {request.agency_id} does not exist")
    device_rows = await _in_chunks(
        db, select(Device), Device.id, sorted({c.device_id for c in clips})
    )
    devices = {d.id: d for d in device_rows}
    secret = settings.secret_key.get_secret_value()
    prepared = await _prepare(db, clips, devices, secret)
    scope = (
        await db.scalars(
            select(ScopeItem)
            .where(ScopeItem.request_id == request.id)
            .order_by(ScopeItem.kind, ScopeItem.value)
        )
    ).all()
    approved_cameras = await db.scalar(
        select(func.count())
        .select_from(Target)
        .where(Target.request_id == request.id, Target.approved.is_(True))
    )
    documents = await _documents(db, request)
    custody = await _custody(db, request, [p.clip for p in prepared], signer, now)
    subscribers = (
        await _subscribers(db, subscriber_households) if kind is PackageKind.subscriber else None
    )
    tmp_dir = settings.data_dir / TMP_DIR
    await anyio.to_thread.run_sync(partial(tmp_dir.mkdir, parents=True, exist_ok=True))
    path = tmp_dir / f"{package_id}.zip.part"
    key = package_key(agency.id, package_id)
    stored = False
    try:
        zipped = await anyio.to_thread.run_sync(PackageZip, path, now)
        try:
            await _add(zipped, README_TXT, readme(str(package_id), signer.origin, kind).encode())
            filed = request_json(request, agency, scope, documents, approved_cameras or 0)
            await _add(zipped, REQUEST_JSON, _json(filed))
            await _add(zipped, CUSTODY_JSON, _json(custody))
            for doc in documents:
                name = document_path(str(doc.kind), doc.sha256)
                if any(f["path"] == name for f in zipped.files):
                    continue  # one document named twice (the same order as warrant and proof)
                got = await _copy(zipped, name, store.stream(doc.object_key))
                if got != (doc.size, doc.sha256):
                    raise PackageBuildError(f"document {doc.id}: the stored file is not the one")
            if prepared:
                listed = [
                    {"device": str(d.id), "public_key": d.public_key}
                    for d in sorted(devices.values(), key=lambda d: str(d.id))
                ]
                await _add(zipped, DEVICES_JSON, _json(listed))
                await _write_clips(zipped, prepared, store)
                keys = {
                    clip_stem(p.signed.manifest.device, p.clip.sequence): b64e(p.key)
                    for p in prepared
                    if p.key is not None
                }
                await _add(zipped, KEYS_JSON, _json(keys))
            if subscribers is not None:
                await _add(zipped, SUBSCRIBERS_JSON, _json(subscribers))
            document = canonical_json(
                {
                    "format": FORMAT, "version": VERSION, "package": str(package_id),
                    "kind": str(kind), "provisional": provisional, "instance": signer.origin,
                    "instance_key": signer.key.verifier(), "request": str(request.id),
                    "agency": {"id": str(agency.id), "name": agency.name},
                    "case_number": request.case_number, "created_at": iso(now),
                    "clips": [_clip_entry(p) for p in prepared], "files": zipped.files,
                }
            )  # fmt: skip
            digest = await _add(zipped, PACKAGE_JSON, document)
            note = sign_note(sig_text(str(package_id), digest), signer.key.name, signer.private)
            await _add(zipped, PACKAGE_SIG, note)
        finally:
            await anyio.to_thread.run_sync(zipped.close)
        size, sha256 = await anyio.to_thread.run_sync(file_digest, path)
        await store.put(key, _read(path))
        stored = True
        on_rollback(db, partial(_remove, store, key))  # the caller's commit may still fail
        package = Package(
            id=package_id, request_id=request.id, agency_id=agency.id, kind=kind,
            provisional=provisional, object_key=key, size=size, sha256=sha256,
            clips=len(prepared), clips_without_content=sum(p.key is None for p in prepared),
            devices=len({p.clip.device_id for p in prepared}),
            households=len(set(subscriber_households))
            if kind is PackageKind.subscriber
            else len({p.clip.household_id for p in prepared}),
            expires_at=now + timedelta(days=settings.package_link_days), created_at=now,
        )  # fmt: skip
        db.add(package)
        await db.flush()  # the clip rows refer to it
        db.add_all(
            PackageClip(
                package_id=package_id,
                clip_id=p.clip.id,
                household_id=p.clip.household_id,
                device_id=p.clip.device_id,
                content_available=p.key is not None,
            )
            for p in prepared
        )
        record(
            db,
            tag=Tag.legal_package_create,
            actor=actor,
            ctx=ctx,
            agency_id=request.agency_id,
            target_type="legal_package",
            target_id=package.id,
            occurred_at=now,
            extra={
                "request": str(request.id), "kind": str(kind), "provisional": provisional,
                "clips": package.clips, "clips_without_content": package.clips_without_content,
                "devices": package.devices, "households": package.households,
                "bytes": size, "sha256": sha256,
            },
        )  # fmt: skip
        await db.flush()
        return package
    except BaseException:
        if stored:  # what the transaction will not record must not stay stored
            with anyio.CancelScope(shield=True):
                await _remove(store, key)
        raise
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(partial(path.unlink, missing_ok=True))


async def _read(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as f:
        while block := await anyio.to_thread.run_sync(f.read, READ_BLOCK):
            yield block


async def _remove(store: ClipStore, key: str) -> None:
    try:
        await store.delete(key)
    except Exception:  # a failed clean-up must not hide why the build failed
        log.exception("package.cleanup_failed", key=key)
