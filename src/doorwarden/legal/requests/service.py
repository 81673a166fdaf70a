"""Filing legal requests: every kind checked in full before anything is stored.

What a submission alone can decide is refused at once, each with its own code: a window
that ends before it starts or reaches into the future (footage that does not exist yet
would be prospective surveillance, which no request here grants), an expired or
future-dated warrant, an emergency or community request over its hard limits, a
community area too large or outside the agency's jurisdiction, a duplicate of a request
still open, a document filed before. Whether a warrant names too many cameras, too long a
window, an area sweep or homes outside the jurisdiction is the review's to decide
(checks.py): such a request is on record and must be narrowed or rejected with a reason.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.accounts.models import User
from doorwarden.accounts.service import actor_of
from doorwarden.agencies import documents
from doorwarden.agencies.documents import Upload
from doorwarden.agencies.models import Agency, DocumentKind, LegalDocument
from doorwarden.audit.service import RequestContext, record
from doorwarden.audit.tags import Tag
from doorwarden.config import Settings
from doorwarden.errors import Conflict, InvalidInput, NotFound
from doorwarden.legal import holds
from doorwarden.legal.disclosure.outcomes import Effects
from doorwarden.legal.models import LegalRequest, NoticeKind, RequestKind, Target
from doorwarden.legal.notices import notify
from doorwarden.legal.requests.schemas import (
    EmergencyIn,
    PreservationIn,
    ScopeItemIn,
    SubpoenaIn,
    WarrantIn,
    Window,
)
from doorwarden.legal.scope import resolve_scope
from doorwarden.legal.states import INITIAL, UNDECIDED
from doorwarden.storage.base import ClipStore

CLOCK_SKEW = timedelta(minutes=5)  # an agency's clock a little ahead is not "the future"
Stored = tuple[str, DocumentKind, Upload, int]  # (attribute, kind, the file, its pages)


class WindowInvalid(InvalidInput):
    code = "window_invalid"


class WindowInFuture(InvalidInput):
    code = "window_in_future"


class WindowTooLong(InvalidInput):
    code = "window_too_long"


class ScopeTooBroad(InvalidInput):
    code = "scope_too_broad"


class WarrantExpired(InvalidInput):
    code = "warrant_expired"


class NotYetSigned(InvalidInput):
    code = "not_yet_signed"


class AttestationRequired(InvalidInput):
    code = "attestation_required"


class NondisclosureInvalid(InvalidInput):
    code = "nondisclosure_invalid"


class DuplicateRequest(Conflict):
    code = "duplicate_request"


@dataclass(frozen=True)
class Filing:
    """Who files, where to, and when: the same for every kind."""

    agency: Agency
    officer: User
    store: ClipStore
    settings: Settings
    ctx: RequestContext
    now: datetime


async def open_filing(
    db: AsyncSession, *, agency_id: uuid.UUID, officer: User, effects: Effects
) -> Filing:
    # Locked (FOR UPDATE, where the database has it) for the rest of the filing: one
    # agency's filings are checked for duplicates and replayed documents one at a time.
    agency = await db.get(Agency, agency_id, with_for_update=True)
    if agency is None:
        raise NotFound("No such agency.")
    return Filing(
        agency=agency,
        officer=officer,
        store=effects.store,
        settings=effects.settings,
        ctx=effects.ctx,
        now=effects.now,
    )


async def agency_request(
    db: AsyncSession, agency_id: uuid.UUID, request_id: uuid.UUID
) -> LegalRequest:
    """The agency's own request; another agency's is not found (not forbidden: its
    existence is not for this agency to learn)."""
    found = await db.get(LegalRequest, request_id)
    if found is None or found.agency_id != agency_id:
        raise NotFound("No such request.")
    return found


def check_window(window: Window, now: datetime, *, max_hours: int | None = None) -> None:
    if window.window_end <= window.window_start:
        raise WindowInvalid("The window must end after it starts.")
    if window.window_end > now + CLOCK_SKEW:
        raise WindowInFuture(
            "The window reaches into the future: only footage already recorded can be "
            "requested, never what a camera will see.",
            details={"now": now.isoformat()},
        )
    hours = (window.window_end - window.window_start).total_seconds() / 3600
    if max_hours is not None and hours > max_hours:
        raise WindowTooLong(
            f"The window is {hours:g} hours long; at most {max_hours} hours may be asked for.",
            details={"hours": hours, "max_hours": max_hours},
        )


async def refuse_duplicate(
    db: AsyncSession, agency_id: uuid.UUID, kind: RequestKind, case_number: str
) -> None:
    """One open request per agency, kind and case: a second filing of the same thing
    (a resubmitted form, a replayed API call) is refused, not reviewed twice."""
    open_states = [*UNDECIDED, INITIAL[kind]]
    query = select(LegalRequest.id).where(
        LegalRequest.agency_id == agency_id,
        LegalRequest.kind == kind,
        LegalRequest.case_number == case_number,
        LegalRequest.status.in_(open_states),
    )
    existing = await db.scalar(query.limit(1))
    if existing is not None:
        raise DuplicateRequest(
            f"This agency already has an open {kind} request for case {case_number}.",
            details={"request_id": str(existing)},
        )


def check_nondisclosure(
    until: datetime | None, order: Upload | None, now: datetime, settings: Settings
) -> int | None:
    """Pages of the order, if there is one; both its end date and the order, or neither."""
    if until is None and order is None:
        return None
    if until is None or order is None:
        raise NondisclosureInvalid(
            "A non-disclosure order needs both its end date (nondisclosure_until) and the "
            "court's order as a PDF."
        )
    if until <= now:
        raise NondisclosureInvalid("The non-disclosure order has already ended.")
    return documents.check_pdf(
        order.data,
        content_type=order.content_type,
        max_bytes=settings.legal_document_max_bytes,
        what="non-disclosure order",
    )


def new_request(filing: Filing, kind: RequestKind, body: Window, case_number: str) -> LegalRequest:
    return LegalRequest(
        id=uuid.uuid4(),
        agency_id=filing.agency.id,
        submitted_by=filing.officer.id,
        kind=kind,
        status=INITIAL[kind],
        case_number=case_number,
        window_start=body.window_start,
        window_end=body.window_end,
        created_at=filing.now,
        checklist={},
    )


async def _store(
    db: AsyncSession, filing: Filing, kind: DocumentKind, upload: Upload, pages: int
) -> LegalDocument:
    return await documents.store_document(
        db,
        filing.store,
        agency_id=filing.agency.id,
        kind=kind,
        data=upload.data,
        filename=upload.filename,
        pages=pages,
        actor=actor_of(filing.officer),
        ctx=filing.ctx,
        now=filing.now,
    )


async def _finish(
    db: AsyncSession,
    filing: Filing,
    request: LegalRequest,
    scope: list[ScopeItemIn],
    uploads: list[Stored],
) -> LegalRequest:
    """Rows, then the documents (last: nothing left stored if a check failed before),
    the audit event, and a notice to every household the scope names."""
    db.add(request)
    await db.flush()
    targets: list[Target] = await resolve_scope(db, request, scope)
    # A preservation holds what it names from now, unseen by the household (holds.py).
    await holds.hold_at_filing(
        db, request=request, targets=targets, settings=filing.settings, now=filing.now
    )
    for attribute, kind, upload, pages in uploads:
        document = await _store(db, filing, kind, upload, pages)  # removed on rollback
        setattr(request, attribute, document.id)
    await db.flush()
    record(
        db,
        tag=Tag.legal_request_submit,
        actor=actor_of(filing.officer),
        ctx=filing.ctx,
        agency_id=request.agency_id,
        target_type="legal_request",
        target_id=request.id,
        extra={
            "kind": str(request.kind),
            "case_number": request.case_number,
            "scope_items": len(scope),
            "nondisclosure_until": (
                request.nondisclosure_until.isoformat() if request.nondisclosure_until else None
            ),
        },
        occurred_at=filing.now,
    )
    households = {t.household_id for t in targets}
    if households:
        await notify(
            db,
            request=request,
            household_ids=households,
            kind=NoticeKind.request,
            message=f"{filing.agency.name} filed a {request.kind} request (case "
            f"{request.case_number}) that names your home, for "
            f"{request.window_start:%Y-%m-%d %H:%M} to {request.window_end:%Y-%m-%d %H:%M} UTC. "
            "Nothing is disclosed unless a reviewer approves it; you will be told what.",
            ctx=filing.ctx,
            now=filing.now,
        )
    return request


def _order(order: Upload | None, pages: int | None) -> list[Stored]:
    """The non-disclosure order to store with the request, if it came with one."""
    if order is None or pages is None:
        return []
    return [("nondisclosure_document_id", DocumentKind.nondisclosure_order, order, pages)]


def _court_document(body: WarrantIn | SubpoenaIn, upload: Upload, filing: Filing) -> int:
    if body.signed_on > filing.now.date():
        raise NotYetSigned("The document is dated after today.")
    if body.expires_at is not None and body.expires_at <= filing.now:
        raise WarrantExpired(
            f"The {('warrant' if isinstance(body, WarrantIn) else 'subpoena')} has expired."
        )
    what = "warrant" if isinstance(body, WarrantIn) else "subpoena"
    return documents.check_pdf(
        upload.data,
        content_type=upload.content_type,
        max_bytes=filing.settings.legal_document_max_bytes,
        what=what,
    )


async def submit_warrant(
    db: AsyncSession,
    filing: Filing,
    *,
    body: WarrantIn,
    document: Upload,
    nondisclosure: Upload | None = None,
) -> LegalRequest:
    return await _court_order(db, filing, RequestKind.warrant, body, document, nondisclosure)


async def submit_subpoena(
    db: AsyncSession,
    filing: Filing,
    *,
    body: SubpoenaIn,
    document: Upload,
    nondisclosure: Upload | None = None,
) -> LegalRequest:
    return await _court_order(db, filing, RequestKind.subpoena, body, document, nondisclosure)


async def _court_order(
    db: AsyncSession,
    filing: Filing,
    kind: RequestKind,
    body: WarrantIn | SubpoenaIn,
    document: Upload,
    nondisclosure: Upload | None,
) -> LegalRequest:
    """A warrant or a subpoena: the signed document, perhaps with a non-disclosure order.
    A subpoena's window has no limit but its order (docs/legal-process.md: it asks who,
    not when)."""
    if isinstance(body, WarrantIn):
        check_window(body, filing.now)
    elif body.window_end <= body.window_start:
        raise WindowInvalid("The window must end after it starts.")
    pages = _court_document(body, document, filing)
    order_pages = check_nondisclosure(
        body.nondisclosure_until, nondisclosure, filing.now, filing.settings
    )
    await refuse_duplicate(db, filing.agency.id, kind, body.case_number)
    request = new_request(filing, kind, body, body.case_number)
    request.issuing_court, request.signed_on = body.issuing_court, body.signed_on
    request.judge = body.judge if isinstance(body, WarrantIn) else None
    request.expires_at = body.expires_at
    request.justification = body.justification or None
    request.nondisclosure_until = body.nondisclosure_until
    uploads = [("document_id", DocumentKind(kind.value), document, pages)]
    uploads += _order(nondisclosure, order_pages)
    return await _finish(db, filing, request, body.scope, uploads)


async def submit_preservation(
    db: AsyncSession,
    filing: Filing,
    *,
    body: PreservationIn,
    nondisclosure: Upload | None = None,
) -> LegalRequest:
    check_window(body, filing.now)
    order_pages = check_nondisclosure(
        body.nondisclosure_until, nondisclosure, filing.now, filing.settings
    )
    await refuse_duplicate(db, filing.agency.id, RequestKind.preservation, body.case_number)
    request = new_request(filing, RequestKind.preservation, body, body.case_number)
    request.justification = body.justification
    request.nondisclosure_until = body.nondisclosure_until
    return await _finish(db, filing, request, body.scope, _order(nondisclosure, order_pages))


async def submit_emergency(db: AsyncSession, filing: Filing, *, body: EmergencyIn) -> LegalRequest:
    """No court order and no non-disclosure: the owner is always told afterwards."""
    if not body.attest_imminent_danger:
        raise AttestationRequired(
            "An emergency request needs the officer's attestation of an imminent danger of "
            "death or serious physical injury (attest_imminent_danger: true)."
        )
    check_window(body, filing.now, max_hours=filing.settings.emergency_max_hours)
    limit = filing.settings.emergency_max_devices
    if len(body.scope) > limit:
        raise ScopeTooBroad(
            f"An emergency request may name at most {limit} homes or cameras.",
            details={"items": len(body.scope), "max_items": limit},
        )
    if any(item.kind.value == "area" for item in body.scope):
        raise ScopeTooBroad("An emergency request names homes or cameras, never an area.")
    await refuse_duplicate(db, filing.agency.id, RequestKind.emergency, body.case_number)
    request = new_request(filing, RequestKind.emergency, body, body.case_number)
    request.emergency_description = body.description
    return await _finish(db, filing, request, body.scope, [])


async def document_of(
    db: AsyncSession, request: LegalRequest, document_id: uuid.UUID
) -> LegalDocument:
    """One of the request's documents (warrant, order, proof), or NotFound."""
    ids = {request.document_id, request.nondisclosure_document_id, request.proof_document_id}
    if document_id not in ids:
        raise NotFound("No such document on this request.")
    document = await db.get(LegalDocument, document_id)
    if document is None:
        raise NotFound("No such document on this request.")
    return document
