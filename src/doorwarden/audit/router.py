"""The instance-wide audit trail for auditors and operators: metadata, never footage, and
nothing of a legal request's scope (audit/readers.py)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from doorwarden.audit import service
from doorwarden.audit.schemas import AuditEventOut
from doorwarden.deps import SessionDep, authorize
from doorwarden.policy import Action, Principal

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get("/events", response_model=list[AuditEventOut])
async def list_events(
    _p: Annotated[Principal, authorize(Action.audit_read_all)],
    db: SessionDep,
    household_id: uuid.UUID | None = None,
    tag_prefix: Annotated[str | None, Query(max_length=64, pattern=r"^[a-z0-9:-]+$")] = None,
    before: AwareDatetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AuditEventOut]:
    events = await service.instance_events(
        db, household_id=household_id, tag_prefix=tag_prefix, before=before, limit=limit
    )
    return [AuditEventOut.model_validate(e) for e in events]
