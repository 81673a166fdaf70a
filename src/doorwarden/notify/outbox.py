"""The outbox: which events, integrity alerts and legal notices become notifications, and
for whom. Runs inside the dispatch job's transaction (dispatch.py), never on a request.

- An event (events.notified_at is null) -> one notification per household member whose
  rule wants it (rules.py: kinds, cameras, quiet hours, cooldown) and, for person and
  motion, whose household mode and snoozes let it through (modes.service.notifies).
  Rings always pass the mode; so do legal notices and integrity alerts.
- An integrity alert -> its household's owners (the only ones who may read alerts).
- A privacy zone removed or shrunk from the web (audit camera:privacy:reduce) -> every
  member, whatever their rules and quiet hours: it is a safeguard for whoever the zone
  hid, and the household's audit trail is its owners' alone.
- A camera whose web settings set `notify.labels` notifies only for events whose labels
  meet them (a ring is labelled "ring"; a person or motion event its clip's labels).
- A delivered legal notice -> its household's owners (the only ones who may read
  notices); one still held back by a court's non-disclosure order is not yet delivered,
  so nobody is told of it until it is.
Alerts and notices are marked handled in notify_sources; only those made within
HORIZON are looked at, so turning notifications on does not replay a household's history.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.accounts.models import User
from doorwarden.audit.models import AuditEvent
from doorwarden.audit.tags import Tag
from doorwarden.clips.models import Clip, IntegrityAlert
from doorwarden.devices.models import Device, Encryption, HouseholdPlan
from doorwarden.devices.settings import service as camera_settings
from doorwarden.events.models import Event
from doorwarden.households.models import Household, HouseholdMember
from doorwarden.households.service import zone_of
from doorwarden.legal.models import Notice
from doorwarden.modes import service as modes
from doorwarden.notify import payload
from doorwarden.notify.models import Notification, NotifyKind, NotifySource, SourceKind
from doorwarden.notify.rules import COOLED, LOUD, Rule, rules_for
from doorwarden.roles import HouseholdRole

BATCH = 200
HORIZON = timedelta(hours=6)


@dataclass
class _Household:
    household: Household
    zone: ZoneInfo
    end_to_end: bool
    members: list[tuple[uuid.UUID, HouseholdRole]]
    rules: dict[uuid.UUID, Rule]
    cameras: dict[uuid.UUID, str] = field(default_factory=dict)


@dataclass
class OutboxRun:
    now: datetime
    made: int = 0
    found: int = 0  # sources handled (a full batch: run again at once)
    _households: dict[uuid.UUID, _Household | None] = field(default_factory=dict)


async def _household(
    db: AsyncSession, run: OutboxRun, household_id: uuid.UUID
) -> _Household | None:
    if household_id in run._households:
        return run._households[household_id]
    household = await db.get(Household, household_id)
    found = None
    if household is not None:
        plan = await db.get(HouseholdPlan, household_id)
        members = [
            (m.user_id, m.role)
            for m in await db.scalars(
                select(HouseholdMember)
                .join(User, User.id == HouseholdMember.user_id)
                .where(HouseholdMember.household_id == household_id, User.is_active.is_(True))
            )
        ]
        rules = await rules_for(db, household_id=household_id, user_ids=[u for u, _ in members])
        names = await db.execute(
            select(Device.id, Device.name).where(Device.household_id == household_id)
        )
        cameras = {row[0]: row[1] for row in names.all()}
        found = _Household(
            household,
            zone_of(household),
            plan is not None and plan.encryption is Encryption.e2e,
            members,
            rules,
            cameras,
        )
    run._households[household_id] = found
    return found


async def _cooling(
    db: AsyncSession, user_id: uuid.UUID, device_id: uuid.UUID, at: datetime, cooldown_s: int
) -> bool:
    """A notification for this member and camera came within the cooldown before `at`."""
    if cooldown_s <= 0:
        return False
    recent = await db.scalar(
        select(Notification.id)
        .where(
            Notification.user_id == user_id,
            Notification.device_id == device_id,
            Notification.occurred_at > at - timedelta(seconds=cooldown_s),
            Notification.occurred_at <= at,
            Notification.kind.in_([NotifyKind.ring, NotifyKind.person, NotifyKind.motion]),
        )
        .limit(1)
    )
    return recent is not None


def _add(
    db: AsyncSession,
    run: OutboxRun,
    home: _Household,
    rule: Rule,
    *,
    kind: NotifyKind,
    source: SourceKind,
    source_id: uuid.UUID,
    device_id: uuid.UUID | None,
    occurred_at: datetime,
    text: payload.Text,
) -> None:
    db.add(
        Notification(
            id=uuid.uuid4(),
            household_id=home.household.id,
            user_id=rule.user_id,
            kind=kind,
            source=source,
            source_id=source_id,
            device_id=device_id,
            occurred_at=occurred_at,
            created_at=run.now,
            title=text.title,
            body=text.body,
            url=text.url,
            thumbnail=text.thumbnail,
            email=rule.email,
            tries=0,
            next_attempt_at=run.now,
        )
    )
    run.made += 1


async def _thumbnail(db: AsyncSession, home: _Household, clip_id: uuid.UUID | None) -> str | None:
    """The clip's thumbnail path, or None: no clip, no thumbnail, or sealed end to end
    (the server could not show it; the notification is text only)."""
    if clip_id is None or home.end_to_end:
        return None
    clip = await db.get(Clip, clip_id)
    if clip is None or clip.thumbnail_key is None or _sealed_end_to_end(clip):
        return None
    return payload.thumbnail_path(home.household.id, clip_id)


def _sealed_end_to_end(clip: Clip) -> bool:
    try:
        return bool(json.loads(clip.manifest)["manifest"]["mode"] == "e2e")
    except (ValueError, KeyError, TypeError):
        return True  # unreadable: show no image rather than a broken one


async def _event(db: AsyncSession, run: OutboxRun, event: Event) -> None:
    event.notified_at = run.now
    home = await _household(db, run, event.household_id)
    if home is None:
        return
    kind = NotifyKind(str(event.kind))
    if not await _camera_wants(db, event):
        return
    camera = home.cameras.get(event.device_id) or event.camera
    text: payload.Text | None = None
    for user_id, _role in home.members:
        rule = home.rules[user_id]
        if not rule.wants(kind, event.device_id):
            continue
        if kind not in LOUD and rule.quiet_at(event.occurred_at, home.zone):
            continue
        if kind in COOLED and await _cooling(
            db, user_id, event.device_id, event.occurred_at, rule.cooldown_s
        ):
            continue
        if kind in COOLED and not await modes.notifies(
            db,
            event.household_id,
            event.device_id,
            user_id,
            event.occurred_at,
            kind=str(kind),
            now=run.now,
        ):
            continue
        if text is None:
            thumb = await _thumbnail(db, home, event.clip_id)
            text = payload.event_text(
                kind,
                home.household.id,
                event.device_id,
                camera,
                event.clip_id,
                thumb,
                event.occurred_at,
                home.zone,
            )
        _add(
            db,
            run,
            home,
            rule,
            kind=kind,
            source=SourceKind.event,
            source_id=event.id,
            device_id=event.device_id,
            occurred_at=event.occurred_at,
            text=text,
        )


async def _camera_wants(db: AsyncSession, event: Event) -> bool:
    """The camera's `notify.labels` (set from the web), if any, meet the event's labels."""
    wanted = await camera_settings.notify_labels(db, event.device_id, event.camera)
    if wanted is None:
        return True
    labels = {str(event.kind)}
    if event.clip_id is not None:
        clip = await db.get(Clip, event.clip_id)
        labels |= {str(label) for label in (clip.labels or [])} if clip is not None else set()
    return bool(labels & wanted)


async def _privacy(db: AsyncSession, run: OutboxRun, audit: AuditEvent) -> None:
    db.add(NotifySource(source=SourceKind.privacy_zone, source_id=audit.id, noted_at=run.now))
    home = await _household(db, run, audit.household_id) if audit.household_id else None
    if home is None:
        return
    try:
        device_id: uuid.UUID | None = uuid.UUID(audit.target_id or "")
    except ValueError:
        device_id = None
    name = home.cameras.get(device_id) if device_id is not None else None
    camera = str((audit.extra or {}).get("camera") or "")
    text = payload.privacy_text(home.household.id, f"{name} ({camera})" if name else camera)
    for user_id, _role in home.members:  # every member, past rules and quiet hours
        _add(
            db, run, home, home.rules[user_id], kind=NotifyKind.privacy_zone,
            source=SourceKind.privacy_zone, source_id=audit.id, device_id=device_id,
            occurred_at=audit.occurred_at, text=text,
        )  # fmt: skip


def _owners(home: _Household) -> list[Rule]:
    return [home.rules[u] for u, role in home.members if role is HouseholdRole.owner]


async def _alert(db: AsyncSession, run: OutboxRun, alert: IntegrityAlert) -> None:
    db.add(NotifySource(source=SourceKind.integrity_alert, source_id=alert.id, noted_at=run.now))
    home = await _household(db, run, alert.household_id)
    if home is None:
        return
    camera = home.cameras.get(alert.device_id, "A camera")
    text = payload.alert_text(home.household.id, camera, str(alert.kind))
    for rule in _owners(home):
        if not rule.wants(NotifyKind.integrity_alert, alert.device_id):
            continue
        if rule.quiet_at(alert.created_at, home.zone):
            continue
        _add(
            db,
            run,
            home,
            rule,
            kind=NotifyKind.integrity_alert,
            source=SourceKind.integrity_alert,
            source_id=alert.id,
            device_id=alert.device_id,
            occurred_at=alert.created_at,
            text=text,
        )


async def _notice(db: AsyncSession, run: OutboxRun, notice: Notice) -> None:
    db.add(NotifySource(source=SourceKind.legal_notice, source_id=notice.id, noted_at=run.now))
    home = await _household(db, run, notice.household_id)
    if home is None:
        return
    text = payload.notice_text(home.household.id)
    for rule in _owners(home):
        if not rule.wants(NotifyKind.legal_notice, None):
            continue
        _add(
            db,
            run,
            home,
            rule,
            kind=NotifyKind.legal_notice,
            source=SourceKind.legal_notice,
            source_id=notice.id,
            device_id=None,
            occurred_at=notice.delivered_at or run.now,
            text=text,
        )


def _unmarked(source: SourceKind, column: Any) -> Any:
    return ~exists().where(and_(NotifySource.source == source, NotifySource.source_id == column))


async def fill(db: AsyncSession, *, now: datetime) -> OutboxRun:
    """Turn up to BATCH new events, alerts and notices each into notifications."""
    run = OutboxRun(now)
    events: Sequence[Event] = (
        await db.scalars(
            select(Event)
            .where(Event.notified_at.is_(None))
            .order_by(Event.received_at)
            .limit(BATCH)
        )
    ).all()
    for event in events:
        await _event(db, run, event)
    alerts = (
        await db.scalars(
            select(IntegrityAlert)
            .where(
                IntegrityAlert.created_at >= now - HORIZON,
                _unmarked(SourceKind.integrity_alert, IntegrityAlert.id),
            )
            .order_by(IntegrityAlert.created_at)
            .limit(BATCH)
        )
    ).all()
    for alert in alerts:
        await _alert(db, run, alert)
    notices = (
        await db.scalars(
            select(Notice)
            .where(
                Notice.delivered_at.is_not(None),
                Notice.delivered_at >= now - HORIZON,
                _unmarked(SourceKind.legal_notice, Notice.id),
            )
            .order_by(Notice.delivered_at)
            .limit(BATCH)
        )
    ).all()
    for notice in notices:
        await _notice(db, run, notice)
    privacy = (
        await db.scalars(
            select(AuditEvent)
            .where(
                AuditEvent.tag == str(Tag.camera_privacy_reduce),
                AuditEvent.occurred_at >= now - HORIZON,
                _unmarked(SourceKind.privacy_zone, AuditEvent.id),
            )
            .order_by(AuditEvent.occurred_at)
            .limit(BATCH)
        )
    ).all()
    for audit in privacy:
        await _privacy(db, run, audit)
    run.found = max(len(events), len(alerts), len(notices), len(privacy))
    return run
