"""The five kinds of request, in one table: what each files (its schema, the court
document that comes with it, whether a non-disclosure order may), how its form page reads
into that schema and which service files it, how the page and the API route are named.
The API's filing routes (router.py) and the officer's forms (views.py) are made from it,
so a kind is added here once and a page and a script are checked alike."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import UploadFile
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.agencies.documents import Upload
from doorwarden.agencies.http import read_upload, require_upload
from doorwarden.errors import InvalidInput
from doorwarden.legal.community import service as community
from doorwarden.legal.models import LegalRequest, RequestKind
from doorwarden.legal.requests import forms
from doorwarden.legal.requests import service as requests
from doorwarden.legal.requests.schemas import (
    NONDISCLOSURE_MAX,
    CommunityIn,
    EmergencyIn,
    PreservationIn,
    SubpoenaIn,
    WarrantIn,
)

# submit(db, filing, *, body=..., [document=...], [nondisclosure=...]): the service call;
# it takes the files the kind has (Kind.document, Kind.nondisclosure) and no others.
Submit = Callable[..., Awaitable[LegalRequest]]


@dataclass(frozen=True)
class Kind:
    kind: RequestKind
    title: str  # the form page's
    intro: str
    document: str | None  # the court document the kind comes with, as the form names it
    nondisclosure: bool  # may come with a court's non-disclosure order
    scope: bool  # names homes or cameras (a community request names an area)
    path: str  # POST /api/v1/agencies/{agency_id}/requests/{path}
    operation: str  # the API route's name: its OpenAPI operation id and summary
    document_help: str | None  # the API's description of the document part
    schema: type[BaseModel]
    read_form: Callable[[forms.RequestFields], BaseModel]
    submit: Submit

    @property
    def multipart(self) -> bool:
        """Sent as multipart/form-data (a `details` JSON part and files), not as JSON."""
        return self.document is not None or self.nondisclosure


KINDS: dict[RequestKind, Kind] = {
    RequestKind.warrant: Kind(
        RequestKind.warrant,
        "File a warrant",
        "A judicial warrant for recorded clips of named homes or cameras. A legal reviewer "
        "checks it before anything is disclosed.",
        "The signed warrant",
        nondisclosure=True,
        scope=True,
        path="warrants",
        operation="file_warrant",
        document_help="The signed warrant, a PDF.",
        schema=WarrantIn,
        read_form=forms.warrant,
        submit=requests.submit_warrant,
    ),
    RequestKind.subpoena: Kind(
        RequestKind.subpoena,
        "File a subpoena",
        "A subpoena yields subscriber information (names, address, account dates) only, "
        "never video.",
        "The subpoena",
        nondisclosure=True,
        scope=True,
        path="subpoenas",
        operation="file_subpoena",
        document_help="The subpoena, a PDF.",
        schema=SubpoenaIn,
        read_form=forms.subpoena,
        submit=requests.submit_subpoena,
    ),
    RequestKind.preservation: Kind(
        RequestKind.preservation,
        "Ask for clips to be preserved",
        "Clips of the named homes and window are kept from deletion while you obtain legal "
        "process. Nothing is disclosed.",
        None,
        nondisclosure=True,
        scope=True,
        path="preservations",
        operation="file_preservation",
        document_help=None,
        schema=PreservationIn,
        read_form=forms.preservation,
        submit=requests.submit_preservation,
    ),
    RequestKind.emergency: Kind(
        RequestKind.emergency,
        "Emergency request",
        "Only for an imminent danger of death or serious physical injury. A disclosure is "
        "provisional: you must prove the emergency afterwards (a warrant or the incident "
        "report) before the deadline, or it is recorded publicly as unratified.",
        None,
        nondisclosure=False,
        scope=True,
        path="emergencies",
        operation="file_emergency",
        document_help=None,
        schema=EmergencyIn,
        read_form=forms.emergency,
        submit=requests.submit_emergency,
    ),
    RequestKind.community: Kind(
        RequestKind.community,
        "Ask residents of an area",
        "Residents with cameras in a small area of your jurisdiction are asked to share "
        "clips of a window. Sharing is each resident's choice, clip by clip; you see only "
        "what is shared, never who was asked.",
        None,
        nondisclosure=False,
        scope=False,
        path="community",
        operation="file_community_request",
        document_help=None,
        schema=CommunityIn,
        read_form=forms.community,
        submit=community.submit_community,
    ),
}


class NondisclosureTooLong(InvalidInput):
    code = "nondisclosure_too_long"


def check_nondisclosure_length(until: datetime | None, now: datetime) -> None:
    """Refuse a non-disclosure order that would keep the household uninformed for longer
    than NONDISCLOSURE_MAX, before anything is stored (issue 16, item 1)."""
    if until is not None and until - now > NONDISCLOSURE_MAX:
        raise NondisclosureTooLong(
            f"A non-disclosure order may delay the household's notice by at most "
            f"{NONDISCLOSURE_MAX.days} days from filing on this instance.",
            details={
                "nondisclosure_until": until.isoformat(),
                "latest_allowed": (now + NONDISCLOSURE_MAX).isoformat(),
            },
        )


async def read_files(
    kind: Kind,
    document: UploadFile | None,
    nondisclosure_order: UploadFile | None,
    *,
    max_bytes: int,
    missing: str,
) -> tuple[Upload | None, Upload | None]:
    """The files a filing of `kind` came with: its court document (required: `missing`
    says so, "{what}" standing for it) and the non-disclosure order, if it may have one."""
    what = kind.kind.value
    main = (
        await require_upload(document, max_bytes, what, missing=missing.format(what=what))
        if kind.document is not None
        else None
    )
    order = (
        await read_upload(nondisclosure_order, max_bytes, "non-disclosure order")
        if kind.nondisclosure
        else None
    )
    return main, order


async def file(
    db: AsyncSession,
    filing: requests.Filing,
    kind: Kind,
    *,
    body: BaseModel,
    document: Upload | None,
    nondisclosure: Upload | None,
) -> LegalRequest:
    """File a request of `kind` (its body already read into kind.schema)."""
    check_nondisclosure_length(getattr(body, "nondisclosure_until", None), filing.now)
    files: dict[str, Any] = {}
    if kind.document is not None:
        files["document"] = document
    if kind.nondisclosure:
        files["nondisclosure"] = nondisclosure
    return await kind.submit(db, filing, body=body, **files)
