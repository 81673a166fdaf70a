"""Members' notification rules: what each member of a household wants to be told of.

A member who never saved rules gets the defaults (every camera; rings, people, integrity
alerts and legal notices; no quiet hours; a minute's cooldown; no e-mail). Reading the
rules never writes them. Cameras are the household's own (paired, not removed when
saved); an unknown or another household's camera is refused with `unknown_camera`.

What a rule means when a notification is made (outbox.py):
- kinds and cameras filter (legal notices name no camera);
- quiet hours, in the household's time zone, silence all but rings and legal notices;
- the cooldown per camera silences a person or motion alert that follows another
  notification for the same camera within it; rings, legal notices and integrity
  alerts ignore it (an alert is one per fact; a ring is someone waiting at the door).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from doorwarden.accounts.models import User
from doorwarden.accounts.service import actor_of
from doorwarden.audit.service import RequestContext, record
from doorwarden.audit.tags import Tag
from doorwarden.devices.models import Device
from doorwarden.errors import DomainError
from doorwarden.notify.models import NotificationRule, NotifyKind
from doorwarden.notify.schemas import QuietHours, RulesIn, RulesOut

DEFAULT_KINDS = (
    NotifyKind.ring,
    NotifyKind.person,
    NotifyKind.integrity_alert,
    NotifyKind.legal_notice,
)
DEFAULT_COOLDOWN_S = 60
# Someone at the door, or the law: never silenced by quiet hours.
LOUD = frozenset({NotifyKind.ring, NotifyKind.legal_notice})
# Silenced by the cooldown: a stream of alerts from one busy camera.
COOLED = frozenset({NotifyKind.person, NotifyKind.motion})


class UnknownCamera(DomainError):
    status_code = 422
    code = "unknown_camera"


@dataclass(frozen=True)
class Rule:
    user_id: uuid.UUID
    cameras: frozenset[uuid.UUID] | None
    kinds: frozenset[NotifyKind]
    quiet: tuple[time, time] | None
    cooldown_s: int
    email: bool
    saved: bool

    def wants(self, kind: NotifyKind, device_id: uuid.UUID | None) -> bool:
        if kind not in self.kinds:
            return False
        return self.cameras is None or device_id is None or device_id in self.cameras

    def quiet_at(self, at: datetime, zone: ZoneInfo) -> bool:
        if self.quiet is None:
            return False
        start, end = self.quiet
        local = at.astimezone(zone).time().replace(second=0, microsecond=0, tzinfo=None)
        if start < end:
            return start <= local < end
        return local >= start or local < end  # over midnight

    def out(self) -> RulesOut:
        quiet = None
        if self.quiet is not None:
            quiet = QuietHours(start=_hhmm(self.quiet[0]), end=_hhmm(self.quiet[1]))
        return RulesOut(
            cameras=sorted(self.cameras, key=str) if self.cameras is not None else None,
            kinds=[k for k in NotifyKind if k in self.kinds],
            quiet_hours=quiet,
            cooldown_s=self.cooldown_s,
            email=self.email,
            saved=self.saved,
        )


def _hhmm(value: time) -> str:
    return f"{value.hour:02d}:{value.minute:02d}"


def _time(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def default_rule(user_id: uuid.UUID) -> Rule:
    return Rule(user_id, None, frozenset(DEFAULT_KINDS), None, DEFAULT_COOLDOWN_S, False, False)


def _rule(row: NotificationRule) -> Rule:
    quiet = None
    if row.quiet_start is not None and row.quiet_end is not None:
        quiet = (_time(row.quiet_start), _time(row.quiet_end))
    kinds = frozenset(NotifyKind(k) for k in row.kinds if k in NotifyKind.__members__)
    cameras = None if row.cameras is None else frozenset(uuid.UUID(c) for c in row.cameras)
    return Rule(row.user_id, cameras, kinds, quiet, row.cooldown_s, row.email, True)


async def rule_of(db: AsyncSession, *, household_id: uuid.UUID, user_id: uuid.UUID) -> Rule:
    row = await db.get(NotificationRule, (household_id, user_id))
    return default_rule(user_id) if row is None else _rule(row)


async def rules_for(
    db: AsyncSession, *, household_id: uuid.UUID, user_ids: list[uuid.UUID]
) -> dict[uuid.UUID, Rule]:
    """Every listed member's rule (the defaults for those who saved none)."""
    rows = await db.scalars(
        select(NotificationRule).where(
            NotificationRule.household_id == household_id,
            NotificationRule.user_id.in_(user_ids),
        )
    )
    saved = {row.user_id: _rule(row) for row in rows}
    return {u: saved.get(u) or default_rule(u) for u in user_ids}


async def save_rules(
    db: AsyncSession,
    *,
    household_id: uuid.UUID,
    user: User,
    rules: RulesIn,
    ctx: RequestContext,
    now: datetime,
) -> Rule:
    if rules.cameras is not None and rules.cameras:
        found = set(
            await db.scalars(
                select(Device.id).where(
                    Device.id.in_(rules.cameras),
                    Device.household_id == household_id,
                    Device.revoked_at.is_(None),
                )
            )
        )
        unknown = [str(c) for c in rules.cameras if c not in found]
        if unknown:
            raise UnknownCamera(
                "These are not cameras of this household.", details={"cameras": unknown}
            )
    row = await db.get(NotificationRule, (household_id, user.id))
    if row is None:
        row = NotificationRule(household_id=household_id, user_id=user.id)
        db.add(row)
    row.cameras = None if rules.cameras is None else [str(c) for c in rules.cameras]
    row.kinds = [str(k) for k in NotifyKind if k in rules.kinds]
    row.quiet_start = rules.quiet_hours.start if rules.quiet_hours else None
    row.quiet_end = rules.quiet_hours.end if rules.quiet_hours else None
    row.cooldown_s = rules.cooldown_s
    row.email = rules.email
    row.updated_at = now
    record(
        db,
        tag=Tag.notify_rules_update,
        actor=actor_of(user),
        ctx=ctx,
        household_id=household_id,
        target_type="notification_rules",
        target_id=user.id,
        extra={"kinds": row.kinds, "email": row.email},
        occurred_at=now,
    )
    return _rule(row)
