"""What each reader of the audit trail is shown of an event: one rule per kind of reader,
applied by the service that every route returning events calls, so no route can forget.

* A household (its owners: the activity API and page, and the log entries it checks)
  sees its own events in full, except where someone outside it acted: for staff
  (operators, reviewers, auditors, agency officers), the system and anyone unknown, the
  client address and user agent are withheld. Residents' and the household's own
  cameras' entries keep theirs. The rule is by the actor's role, recorded with the
  event, not by today's membership: staff accounts are never household members
  (roles.py), a resident acts on a household's events only as its member, and an entry
  must not change what it shows (or whether it verifies) when someone leaves later.
* Instance-wide readers (operators and auditors: policy rule 7, "no request's scope")
  see every event, but of the events that tie a household to a legal request, an
  agency's camera programme or a share with an agency (`SCOPED_TAGS`, the same tags the
  public log keeps quiet), no household, no camera or clip, no resident who acted (nor
  where from: either joins the event to the household's other events), and of the
  details only the keys known to hold no scope, and only as plain values (an id list
  never passes).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from doorwarden.audit.models import AuditEvent

# Actors whose client address and user agent a household may see: its members, and its
# own cameras. An allow-list, so a role added later is withheld until someone decides.
HOUSEHOLD_ACTORS = frozenset({"resident", "device"})
NETWORK_FIELDS = ("client_address", "user_agent")

# Events that tie a household to an agency: legal process, camera programmes, clips shared
# with a community request. At least log.QUIET_HOUSEHOLD_TAGS (a test holds it).
SCOPED_TAGS = ("legal:", "clip:share", "governance:programme:")
# Targets that name a home or its footage, withheld from instance-wide readers of scoped
# events. A request, package, notice, document or agency id names none.
SCOPED_TARGETS = frozenset({"household", "device", "camera", "clip"})
# Details of scoped events that instance-wide readers may see: kinds, statuses, counts,
# dates, digests and the ids of requests, packages and programmes. Anything else (a
# household, clip ids, the approved window, a reviewer's reasons, which may describe the
# scope) is withheld, as is any key a writer adds later until it is listed here.
STAFF_DETAILS = frozenset(
    {
        "kind", "status", "request", "warrant_request", "package_kind", "provisional",
        "case_number", "scope_items", "nondisclosure_until", "delayed_until", "area_km2",
        "households_asked", "cameras", "cameras_dropped", "clips", "clips_without_content",
        "devices", "households", "holds", "holds_released", "hold_until", "until", "bytes",
        "sha256", "pages", "incident_report_sha256", "why", "programme",
    }
)  # fmt: skip
_PLAIN = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class EventView:
    """An audit event as one reader is shown it (the API's AuditEventOut reads these
    attributes; pages also show `log_index`). `withheld` names what was left out."""

    id: uuid.UUID
    occurred_at: datetime
    tag: str
    actor_user_id: uuid.UUID | None
    actor_role: str | None
    household_id: uuid.UUID | None
    agency_id: uuid.UUID | None
    target_type: str | None
    target_id: str | None
    client_address: str | None
    user_agent: str | None
    request_id: str | None
    extra: dict[str, Any]
    log_index: int | None
    withheld: frozenset[str] = frozenset()


def acted_from_outside(actor_role: str | None) -> bool:
    """Whether a household is not to see where this event's actor acted from."""
    return actor_role not in HOUSEHOLD_ACTORS


def scoped(tag: str) -> bool:
    return tag.startswith(SCOPED_TAGS)


def _whole(event: AuditEvent) -> EventView:
    return EventView(
        id=event.id,
        occurred_at=event.occurred_at,
        tag=event.tag,
        actor_user_id=event.actor_user_id,
        actor_role=event.actor_role,
        household_id=event.household_id,
        agency_id=event.agency_id,
        target_type=event.target_type,
        target_id=event.target_id,
        client_address=event.client_address,
        user_agent=event.user_agent,
        request_id=event.request_id,
        extra=dict(event.extra or {}),
        log_index=event.log_index,
    )


def for_household(event: AuditEvent) -> EventView:
    """The event as its household is shown it (item 9 of issue 16)."""
    view = _whole(event)
    if not acted_from_outside(event.actor_role):
        return view
    return replace(view, client_address=None, user_agent=None, withheld=frozenset(NETWORK_FIELDS))


def for_instance(event: AuditEvent) -> EventView:
    """The event as operators and auditors are shown it (policy rule 7)."""
    view = _whole(event)
    if not scoped(event.tag):
        return view
    withheld = {
        k for k, v in view.extra.items() if k not in STAFF_DETAILS or not isinstance(v, _PLAIN)
    }
    if view.household_id is not None:
        withheld.add("household_id")
    target_hidden = view.target_type in SCOPED_TARGETS and view.target_id is not None
    if target_hidden:
        withheld.add("target_id")
    # A resident (or camera) acting on a scoped event is the household: their id, or
    # where they acted from, joins it to their other, unscoped events. Staff stay shown.
    resident = not acted_from_outside(view.actor_role)
    if resident:
        withheld |= {"actor_user_id", *NETWORK_FIELDS}
    return replace(
        view,
        household_id=None,
        target_id=None if target_hidden else view.target_id,
        actor_user_id=None if resident else view.actor_user_id,
        client_address=None if resident else view.client_address,
        user_agent=None if resident else view.user_agent,
        extra={k: v for k, v in view.extra.items() if k not in withheld},
        withheld=frozenset(withheld),
    )
