"""The public API of the tamper-evident audit log: anyone may read it, and check it.

Only what the leaves already hold is served (identifiers, tags, times, commitments),
never the private half of an event. `doorwarden verify-log URL` is the client.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel

from doorwarden.audit import log
from doorwarden.deps import SessionDep, SignerDep, authorize, household_resource
from doorwarden.errors import InvalidInput
from doorwarden.policy import Action, Principal

router = APIRouter(tags=["log"])
LOG = "/api/v1/log"
NOTE_TYPE = "text/plain; charset=utf-8"
MAX_INDEX = 2**53


class Entry(BaseModel):
    index: int
    leaf: str  # the exact bytes hashed into the tree (canonical JSON), as UTF-8 text


class EntriesOut(BaseModel):
    entries: list[Entry]


class InclusionOut(BaseModel):
    index: int
    size: int
    proof: list[str]  # hex, RFC 6962 section 2.1.1 order


class HouseholdEntryOut(BaseModel):
    index: int
    leaf: str
    salt: str  # hex; SHA-256(salt || private) is the leaf's "commitment"
    private: str  # the private fields as committed to (JSON text)


class ConsistencyOut(BaseModel):
    first: int
    second: int
    proof: list[str]  # hex, RFC 6962 section 2.1.2 order


Index = Annotated[int, Query(ge=0, le=MAX_INDEX)]


@router.get(LOG + "/checkpoint", response_class=PlainTextResponse)
async def checkpoint(
    _p: Annotated[Principal, authorize(Action.log_read)], db: SessionDep, signer: SignerDep
) -> PlainTextResponse:
    """The newest signed checkpoint (C2SP tlog-checkpoint in a signed note)."""
    note = await log.latest_checkpoint(db, signer)
    return PlainTextResponse(note.decode(), media_type=NOTE_TYPE)


@router.get(LOG + "/key", response_class=PlainTextResponse)
async def key(_p: Annotated[Principal, authorize(Action.log_read)], signer: SignerDep) -> str:
    """The log's verifier key (signed-note vkey). Pin it: a verifier that fetches it from
    the log it checks trusts the log."""
    return signer.key.verifier()


@router.get(LOG + "/entries", response_model=EntriesOut)
async def entries(
    _p: Annotated[Principal, authorize(Action.log_read)],
    db: SessionDep,
    start: Index = 0,
    end: Index = 100,
) -> EntriesOut:
    """Entries start <= index < end (at most 1,000 at a time), in order."""
    try:
        found = await log.entries(db, start, end)
    except log.LogError as exc:
        raise InvalidInput(str(exc)) from exc
    return EntriesOut(entries=[Entry(index=i, leaf=leaf) for i, leaf in found])


@router.get(LOG + "/proofs/inclusion", response_model=InclusionOut)
async def inclusion(
    _p: Annotated[Principal, authorize(Action.log_read)],
    db: SessionDep,
    index: Index,
    size: Index,
) -> InclusionOut:
    """The audit path of entry `index` in the tree of `size` entries."""
    try:
        proof = await log.inclusion(db, index, size)
    except log.LogError as exc:
        raise InvalidInput(str(exc)) from exc
    return InclusionOut(index=index, size=size, proof=[h.hex() for h in proof])


@router.get(LOG + "/proofs/consistency", response_model=ConsistencyOut)
async def consistency(
    _p: Annotated[Principal, authorize(Action.log_read)],
    db: SessionDep,
    first: Index,
    second: Index,
) -> ConsistencyOut:
    """Proof that the tree of `first` entries is a prefix of the tree of `second`."""
    try:
        proof = await log.consistency(db, first, second)
    except log.LogError as exc:
        raise InvalidInput(str(exc)) from exc
    return ConsistencyOut(first=first, second=second, proof=[h.hex() for h in proof])


@router.get("/api/v1/households/{household_id}/log-entries", response_model=list[HouseholdEntryOut])
async def household_entries(
    household_id: uuid.UUID,
    _p: Annotated[Principal, authorize(Action.household_audit_read, household_resource)],
    db: SessionDep,
    before: Annotated[int | None, Query(ge=0, le=MAX_INDEX)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[HouseholdEntryOut]:
    """This household's log entries, newest first, with the salt and private fields of
    each (owners only): `doorwarden verify-log URL --key KEY --entries FILE` recomputes
    every leaf from them and checks its inclusion under the signed checkpoint. Where the
    actor acted from is among them only as a hash under a salt the household is not given,
    so no staff address reaches it (audit/log.py, leaf version 2)."""
    found = await log.household_entries(db, household_id, before=before, limit=limit)
    return [HouseholdEntryOut(**vars(e)) for e in found]
