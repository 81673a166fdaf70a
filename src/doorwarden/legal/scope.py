"""From what an agency named to the cameras it reaches.

Each scope item is kept as named; the server resolves it to cameras (`Target`): a
household's cameras, one camera, or the cameras of the households at an address (by the
normalised address key, exactly). An area sweep resolves to nothing: it is never
particular, and is only there so the refusal is on record. Unknown ids and addresses
resolve to nothing too, without an error: whether a home has a camera here is not the
agency's to learn from a submission.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden import geo
from doorwarden.clips.models import Clip, ClipStatus
from doorwarden.devices.models import Device
from doorwarden.errors import InvalidInput
from doorwarden.households.addresses import address_key
from doorwarden.households.models import Household
from doorwarden.legal.models import LegalRequest, ScopeItem, ScopeKind, Target
from doorwarden.legal.requests.schemas import ScopeItemIn


class InvalidArea(InvalidInput):
    code = "invalid_area"


def parse_area(value: object, what: str = "area") -> geo.Area:
    try:
        return geo.parse_area(value)  # type: ignore[arg-type]
    except geo.GeoError as exc:
        raise InvalidArea(f"The {what} is not usable: {exc}.") from None


async def _devices_for(db: AsyncSession, item: ScopeItemIn) -> Sequence[Device]:
    if item.kind is ScopeKind.household:
        query = select(Device).where(Device.household_id == item.id)
    elif item.kind is ScopeKind.device:
        query = select(Device).where(Device.id == item.id)
    elif item.kind is ScopeKind.address:
        key = address_key(item.address)
        if key is None:
            return []
        query = (
            select(Device)
            .join(Household, Household.id == Device.household_id)
            .where(Household.address_key == key)
        )
    else:
        return []
    return (await db.scalars(query.order_by(Device.created_at))).all()


async def resolve_scope(
    db: AsyncSession, request: LegalRequest, items: Sequence[ScopeItemIn]
) -> list[Target]:
    """Add the request's scope items and the cameras they resolve to (each camera once)."""
    targets: dict[uuid.UUID, Target] = {}
    for item in items:
        if item.kind is ScopeKind.area:
            value = geo.dumps(parse_area(item.area, "area in the scope"))
        else:
            value = item.value
        row = ScopeItem(id=uuid.uuid4(), request_id=request.id, kind=item.kind, value=value)
        db.add(row)
        matched = 0
        for device in await _devices_for(db, item):
            if device.id in targets:
                continue
            targets[device.id] = Target(
                request_id=request.id,
                device_id=device.id,
                household_id=device.household_id,
                scope_item_id=row.id,
                approved=None,
            )
            matched += 1
        row.matched = matched
    db.add_all(targets.values())
    await db.flush()
    return list(targets.values())


async def scope_items(db: AsyncSession, request_id: uuid.UUID) -> Sequence[ScopeItem]:
    query = select(ScopeItem).where(ScopeItem.request_id == request_id).order_by(ScopeItem.id)
    return (await db.scalars(query)).all()


async def targets_of(
    db: AsyncSession, request_id: uuid.UUID, *, approved_only: bool = False
) -> Sequence[Target]:
    query = select(Target).where(Target.request_id == request_id)
    if approved_only:
        query = query.where(Target.approved.is_(True))
    return (await db.scalars(query.order_by(Target.household_id, Target.device_id))).all()


async def clips_in_window(
    db: AsyncSession, device_ids: Sequence[uuid.UUID], start: datetime, end: datetime
) -> Sequence[Clip]:
    """Verified clips of these cameras that overlap [start, end)."""
    if not device_ids:
        return []
    query = (
        select(Clip)
        .where(
            Clip.device_id.in_(device_ids),
            Clip.status == ClipStatus.verified,
            Clip.start_at < end,
            Clip.end_at > start,
        )
        .order_by(Clip.device_id, Clip.sequence)
    )
    return (await db.scalars(query)).all()
