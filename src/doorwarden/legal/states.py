"""Each request kind's state machine, as data: which events may move a request from
which states, and where to. Anything not listed is a forbidden transition, refused with
`wrong_state` and nothing changed (tests/unit/legal/test_states.py walks every pair).
"""

from __future__ import annotations

from enum import StrEnum

from doorwarden.audit.tags import Tag
from doorwarden.errors import Conflict
from doorwarden.legal.models import RequestKind, RequestStatus

S = RequestStatus


class Event(StrEnum):
    review = "review"  # a reviewer takes the request
    approve = "approve"
    narrow = "narrow"  # approve a smaller scope, with a stated reason
    reject = "reject"
    withdraw = "withdraw"  # the agency, before a decision
    ratify = "ratify"  # emergency: proof filed in time
    lapse = "lapse"  # emergency: the deadline passed without proof
    extend = "extend"  # preservation: once
    expire = "expire"  # preservation hold ended; community request's time is up
    close = "close"  # community: the agency closes it


UNDECIDED = frozenset({S.submitted, S.in_review})
GRANTED = frozenset({S.approved, S.narrowed})
REVIEWED_KINDS = (
    RequestKind.warrant,
    RequestKind.subpoena,
    RequestKind.preservation,
    RequestKind.emergency,
)

# (kind, event) -> (states it may happen in, the state after; None: unchanged)
TRANSITIONS: dict[tuple[RequestKind, Event], tuple[frozenset[RequestStatus], RequestStatus | None]]
TRANSITIONS = {}
for _kind in REVIEWED_KINDS:
    TRANSITIONS[(_kind, Event.review)] = (frozenset({S.submitted}), S.in_review)
    TRANSITIONS[(_kind, Event.approve)] = (UNDECIDED, S.approved)
    TRANSITIONS[(_kind, Event.narrow)] = (UNDECIDED, S.narrowed)
    TRANSITIONS[(_kind, Event.reject)] = (UNDECIDED, S.rejected)
    TRANSITIONS[(_kind, Event.withdraw)] = (UNDECIDED, S.withdrawn)
TRANSITIONS[(RequestKind.emergency, Event.ratify)] = (GRANTED, S.ratified)
# Also from ratified: the warrant that proved it was withdrawn or rejected afterwards.
TRANSITIONS[(RequestKind.emergency, Event.lapse)] = (GRANTED | {S.ratified}, S.unratified)
TRANSITIONS[(RequestKind.preservation, Event.extend)] = (GRANTED, None)
TRANSITIONS[(RequestKind.preservation, Event.expire)] = (GRANTED, S.closed)
TRANSITIONS[(RequestKind.community, Event.close)] = (frozenset({S.open}), S.closed)
TRANSITIONS[(RequestKind.community, Event.expire)] = (frozenset({S.open}), S.closed)

# The state a new request starts in.
INITIAL = dict.fromkeys(REVIEWED_KINDS, S.submitted) | {RequestKind.community: S.open}

TAGS = {
    Event.review: Tag.legal_request_review,
    Event.approve: Tag.legal_request_approve,
    Event.narrow: Tag.legal_request_narrow,
    Event.reject: Tag.legal_request_reject,
    Event.withdraw: Tag.legal_request_withdraw,
    Event.ratify: Tag.legal_request_ratify,
    Event.lapse: Tag.legal_request_lapse,
    Event.extend: Tag.legal_request_extend,
    Event.expire: Tag.legal_request_close,
    Event.close: Tag.legal_request_close,
}


class WrongState(Conflict):
    code = "wrong_state"


def allowed(kind: RequestKind, status: RequestStatus, event: Event) -> bool:
    rule = TRANSITIONS.get((kind, event))
    return rule is not None and status in rule[0]


def next_status(kind: RequestKind, status: RequestStatus, event: Event) -> RequestStatus:
    """The state after `event`, or WrongState saying what is possible instead."""
    rule = TRANSITIONS.get((kind, event))
    if rule is None:
        raise WrongState(
            f"A {kind} request cannot be {_past(event)}.",
            details={"kind": str(kind), "status": str(status), "event": str(event)},
        )
    sources, target = rule
    if status not in sources:
        raise WrongState(
            f"This {kind} request is {status.replace('_', ' ')}: it cannot be {_past(event)} now.",
            details={
                "kind": str(kind),
                "status": str(status),
                "event": str(event),
                "allowed_from": sorted(str(s) for s in sources),
            },
        )
    return status if target is None else target


def _past(event: Event) -> str:
    return {
        Event.review: "taken for review",
        Event.approve: "approved",
        Event.narrow: "narrowed",
        Event.reject: "rejected",
        Event.withdraw: "withdrawn",
        Event.ratify: "ratified",
        Event.lapse: "marked unratified",
        Event.extend: "extended",
        Event.expire: "expired",
        Event.close: "closed",
    }[event]
