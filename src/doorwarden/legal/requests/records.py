"""A request as it is read back, by its agency (the API and the pages) and by reviewers:
what it named, the packages a decision released, the documents it was filed with."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.agencies.models import LegalDocument
from doorwarden.legal.disclosure.models import Package
from doorwarden.legal.models import LegalRequest
from doorwarden.legal.requests.schemas import PackageOut, RequestOut, ScopeItemOut
from doorwarden.legal.scope import scope_items

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


async def agency_requests(db: AsyncSession, agency_id: uuid.UUID) -> Sequence[LegalRequest]:
    """The agency's requests, newest first (the last 500)."""
    query = (
        select(LegalRequest)
        .where(LegalRequest.agency_id == agency_id)
        .order_by(LegalRequest.created_at.desc())
        .limit(500)
    )
    return (await db.scalars(query)).all()


async def packages_of(db: AsyncSession, request_id: uuid.UUID) -> Sequence[Package]:
    query = select(Package).where(Package.request_id == request_id).order_by(Package.created_at)
    return (await db.scalars(query)).all()


def package_out(agency_id: uuid.UUID, package: Package) -> PackageOut:
    out = PackageOut.model_validate(package)
    out.download_url = f"/api/v1/agencies/{agency_id}/packages/{package.id}"
    return out


async def request_out(db: AsyncSession, request: LegalRequest) -> RequestOut:
    out = RequestOut.model_validate(request)
    out.scope = [ScopeItemOut.model_validate(i) for i in await scope_items(db, request.id)]
    out.packages = [package_out(request.agency_id, p) for p in await packages_of(db, request.id)]
    return out
