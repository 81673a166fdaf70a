"""The instance-wide audit trail page for auditors and operators: metadata, never footage,
and nothing of a legal request's scope (audit/readers.py)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from doorwarden.audit import service
from doorwarden.audit.tags import Tag
from doorwarden.deps import SessionDep, authorize
from doorwarden.policy import Action, Principal
from doorwarden.web.render import render

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 100
# The same rule as the API's tag_prefix parameter.
TAG_PREFIX = re.compile(r"^[a-z0-9:-]{1,64}$")


def _tag_namespaces() -> list[str]:
    """Suggestions for the filter: every "domain:" and "domain:object" prefix in use."""
    prefixes: set[str] = set()
    for tag in Tag:
        parts = str(tag).split(":")
        prefixes.update(":".join(parts[:n]) for n in range(1, len(parts)))
    return sorted(prefixes)


def _cursor(before: str) -> datetime | None:
    """The "older" link's position; a mangled one just starts from the newest."""
    try:
        cursor = datetime.fromisoformat(before) if before else None
    except ValueError:
        return None
    return cursor if cursor is not None and cursor.tzinfo is not None else None


@router.get("/audit")
async def audit_log(
    request: Request,
    _p: Annotated[Principal, authorize(Action.audit_read_all)],
    db: SessionDep,
    tag_prefix: Annotated[str, Query(max_length=64)] = "",
    before: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    tag_prefix = tag_prefix.strip()
    if tag_prefix and not TAG_PREFIX.match(tag_prefix):
        events, error = (
            [],
            ("A tag prefix uses lower-case letters, digits, ':' and '-' only, e.g. account:login."),
        )
    else:
        events, error = (
            list(
                await service.instance_events(
                    db, tag_prefix=tag_prefix or None, before=_cursor(before), limit=PAGE_SIZE
                )
            ),
            None,
        )
    older = events[-1].occurred_at.isoformat() if len(events) == PAGE_SIZE else None
    context = {
        "events": events,
        "tag_prefix": tag_prefix,
        "error": error,
        "older": older,
        "namespaces": _tag_namespaces(),
    }
    return render(request, "audit/index.html", context, status_code=400 if error else 200)
