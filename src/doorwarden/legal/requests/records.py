"""A request as it is read back, by its agency (the API and the pages) and by reviewers:
what it named, the packages a decision released, the documents it was filed with.

How much an officer reads is the policy's to say (`Reading`): an officer who may act for
the agency (in good standing) reads every request of it, with its packages, documents and
shared clips; one whose agency lost its standing keeps only the status of the requests
they filed themselves: no package, document or shared clip, and nothing a colleague filed.
A package is revoked when the emergency it was released under goes unratified.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.agencies.models import LegalDocument
from doorwarden.errors import DomainError, NotFound
from doorwarden.legal.disclosure.models import Package
from doorwarden.legal.models import LegalRequest, RequestStatus
from doorwarden.legal.requests.schemas import PackageOut, RequestOut, ScopeItemOut
from doorwarden.legal.requests.service import agency_request
from doorwarden.legal.scope import scope_items
from doorwarden.policy import Action, AgencyResource, Principal, can


class PackageRevoked(DomainError):
    status_code = 410
    code = "package_revoked"


@dataclass(frozen=True)
class Reading:
    """What one officer may read of their agency's requests."""

    in_standing: bool  # every request, with packages, documents and shared clips
    user_id: uuid.UUID | None  # otherwise: only the status of this officer's own filings


def reading(principal: Principal, agency_id: uuid.UUID) -> Reading:
    """The policy decides: whoever may act on the agency's requests (rule 6: an officer of
    it in good standing) may read all of them in full."""
    full = can(principal, Action.legal_request_update, AgencyResource(agency_id))
    return Reading(full, principal.user_id)


async def readable_request(
    db: AsyncSession, reading: Reading, agency_id: uuid.UUID, request_id: uuid.UUID
) -> LegalRequest:
    """The agency's request, if this reader may see it; otherwise not found (a colleague's
    filing is not for an officer out of standing to learn of)."""
    found = await agency_request(db, agency_id, request_id)
    if not reading.in_standing and found.submitted_by != reading.user_id:
        raise NotFound("No such request.")
    return found


# A request's documents: the attribute that holds each, and what the pages call it.
DOCUMENT_NAMES = {
    "document_id": "The court document",
    "nondisclosure_document_id": "Non-disclosure order",
    "proof_document_id": "Incident report (proof)",
}


def document_ids(request: LegalRequest) -> list[tuple[str, uuid.UUID]]:
    """(name, id) of each document the request has."""
    return [
        (name, getattr(request, attribute))
        for attribute, name in DOCUMENT_NAMES.items()
        if getattr(request, attribute) is not None
    ]


async def documents(db: AsyncSession, request: LegalRequest) -> list[tuple[str, LegalDocument]]:
    out = []
    for name, document_id in document_ids(request):
        document = await db.get(LegalDocument, document_id)
        if document is not None:
            out.append((name, document))
    return out


async def agency_requests(
    db: AsyncSession, agency_id: uuid.UUID, reading: Reading | None = None
) -> Sequence[LegalRequest]:
    """The agency's requests, newest first (the last 500); for a reader out of standing,
    only those they filed."""
    query = select(LegalRequest).where(LegalRequest.agency_id == agency_id)
    if reading is not None and not reading.in_standing:
        query = query.where(LegalRequest.submitted_by == reading.user_id)
    query = query.order_by(LegalRequest.created_at.desc()).limit(500)
    return (await db.scalars(query)).all()


async def packages_of(db: AsyncSession, request_id: uuid.UUID) -> Sequence[Package]:
    query = select(Package).where(Package.request_id == request_id).order_by(Package.created_at)
    return (await db.scalars(query)).all()


def is_revoked(package: Package, request: LegalRequest) -> bool:
    """A provisional package stands only while its emergency is not unratified."""
    return package.provisional and request.status is RequestStatus.unratified


async def check_not_revoked(db: AsyncSession, package: Package) -> None:
    """Refuse a revoked package's download (410 package_revoked), before a byte leaves."""
    if not package.provisional:
        return
    request = await db.get(LegalRequest, package.request_id)
    if request is not None and is_revoked(package, request):
        raise PackageRevoked(
            "This package was released provisionally under an emergency request that is "
            "now unratified (its proof was not filed in time, or fell away): it is revoked "
            "and can no longer be downloaded. It stays on record.",
            details={"request_id": str(request.id), "case_number": request.case_number},
        )


def package_out(agency_id: uuid.UUID, package: Package, *, revoked: bool = False) -> PackageOut:
    out = PackageOut.model_validate(package)
    if not revoked:  # a revoked package is listed for the record, with no link
        out.download_url = f"/api/v1/agencies/{agency_id}/packages/{package.id}"
    return out


async def request_out(
    db: AsyncSession, request: LegalRequest, reading: Reading | None = None
) -> RequestOut:
    out = RequestOut.model_validate(request)
    out.scope = [ScopeItemOut.model_validate(i) for i in await scope_items(db, request.id)]
    if reading is None or reading.in_standing:
        out.packages = [
            package_out(request.agency_id, p, revoked=is_revoked(p, request))
            for p in await packages_of(db, request.id)
        ]
    return out
