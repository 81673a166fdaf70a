"""Legal documents: warrants, subpoenas, non-disclosure orders, incident reports and use
policies, each a PDF of bounded size. The bytes go to the clip store (never world-
readable, like clips); the row keeps the SHA-256 that decisions, packages and the public
log refer to. A document is checked to really be a PDF (parsed, pages counted) before
anything is stored, and a stored object whose transaction fails is removed again.
"""

from __future__ import annotations

import hashlib
import io
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import partial

import structlog
from pypdf import PdfReader
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.agencies.models import DocumentKind, LegalDocument
from doorwarden.audit.service import Actor, RequestContext, record
from doorwarden.audit.tags import Tag
from doorwarden.db import on_rollback
from doorwarden.errors import Conflict, DomainError, UnsupportedMediaType
from doorwarden.storage.base import ClipStore


@dataclass(frozen=True)
class Upload:
    """A file as it arrived: bytes, the name and type the client gave."""

    data: bytes
    filename: str | None = None
    content_type: str | None = None


log = structlog.get_logger("doorwarden.agencies.documents")
PDF_TYPES = frozenset({"application/pdf", "application/x-pdf"})
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]+")


class DocumentTooLarge(DomainError):
    status_code = 413
    code = "document_too_large"


class NotAPdf(UnsupportedMediaType):
    code = "not_a_pdf"


class DocumentReplayed(Conflict):
    code = "document_replayed"


def clean_filename(name: str | None) -> str:
    cleaned = _UNSAFE_NAME.sub("_", (name or "document.pdf").strip())[:200].strip(" .")
    return cleaned or "document.pdf"


def check_pdf(data: bytes, *, content_type: str | None, max_bytes: int, what: str) -> int:
    """The page count of a PDF we accept; a specific error for anything else."""
    if len(data) > max_bytes:
        raise DocumentTooLarge(
            f"The {what} is larger than {max_bytes} bytes.",
            details={"max_bytes": max_bytes, "bytes": len(data)},
        )
    media = (content_type or "").split(";")[0].strip().lower()
    if media and media not in PDF_TYPES and media != "application/octet-stream":
        raise UnsupportedMediaType(
            f"The {what} must be a PDF (application/pdf), not {media}.",
            details={"content_type": media},
        )
    if not data.startswith(b"%PDF-") or b"%%EOF" not in data[-2048:]:
        raise NotAPdf(f"The {what} is not a PDF file.")
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise NotAPdf(f"The {what} is encrypted: send a copy a reviewer can read.")
        pages = len(reader.pages)
    except NotAPdf:
        raise
    except Exception as exc:  # noqa: BLE001 - a parser of untrusted bytes may raise anything
        raise NotAPdf(f"The {what} could not be read as a PDF ({type(exc).__name__}).") from None
    if pages < 1:
        raise NotAPdf(f"The {what} has no pages.")
    return pages


def document_key(agency_id: uuid.UUID, document_id: uuid.UUID) -> str:
    return f"legal/agencies/{agency_id}/documents/{document_id}.pdf"


async def refuse_replay(
    db: AsyncSession, *, agency_id: uuid.UUID, sha256: str, kind: DocumentKind
) -> None:
    """A document already filed by this agency under a request cannot be filed again:
    one warrant yields one review and one package, however often it is sent."""
    query = select(LegalDocument.id).where(
        LegalDocument.agency_id == agency_id,
        LegalDocument.sha256 == sha256,
        LegalDocument.kind == kind,
    )
    if (await db.scalar(query.limit(1))) is not None:
        raise DocumentReplayed(
            "This document was filed before: a legal document is used for one request only.",
            details={"sha256": sha256},
        )


async def store_document(
    db: AsyncSession,
    store: ClipStore,
    *,
    agency_id: uuid.UUID,
    kind: DocumentKind,
    data: bytes,
    filename: str | None,
    pages: int,
    actor: Actor,
    ctx: RequestContext,
    now: datetime,
) -> LegalDocument:
    """Store a checked PDF (see `check_pdf`) and add its row to the caller's transaction;
    if that transaction rolls back, the stored object goes too (db.on_rollback). Callers
    store documents last, after every other check."""
    sha256 = hashlib.sha256(data).hexdigest()
    if kind is not DocumentKind.use_policy:
        await refuse_replay(db, agency_id=agency_id, sha256=sha256, kind=kind)
    document = LegalDocument(
        id=uuid.uuid4(),
        agency_id=agency_id,
        kind=kind,
        sha256=sha256,
        size=len(data),
        pages=pages,
        filename=clean_filename(filename),
        object_key="",
        uploaded_by=actor.user_id,
        uploaded_at=now,
    )
    document.object_key = document_key(agency_id, document.id)
    await store.put(document.object_key, data)
    on_rollback(db, partial(remove_objects, store, [document.object_key]))
    db.add(document)
    await db.flush()  # rows that refer to it may be inserted in the same flush
    record(
        db,
        tag=Tag.legal_document_upload,
        actor=actor,
        ctx=ctx,
        agency_id=agency_id,
        target_type="legal_document",
        target_id=document.id,
        extra={"kind": str(kind), "sha256": sha256, "bytes": len(data), "pages": pages},
    )
    return document


async def remove_objects(store: ClipStore, keys: list[str]) -> None:
    """Undo stored documents of a submission that was refused after storing them."""
    for key in keys:
        try:
            await store.delete(key)
        except Exception:  # a failed clean-up must not hide the refusal itself
            log.exception("documents.cleanup_failed", key=key)
