"""Every (kind, state, event) of the request state machines: the allowed transitions
written out here by hand, independently of legal/states.py; everything else refused."""

from __future__ import annotations

import itertools

import pytest

from doorwarden.legal.models import RequestKind, RequestStatus
from doorwarden.legal.states import Event, WrongState, allowed, next_status

K, S, E = RequestKind, RequestStatus, Event
REVIEWED = (K.warrant, K.subpoena, K.preservation, K.emergency)

ALLOWED: dict[tuple[RequestKind, RequestStatus, Event], RequestStatus] = {}
for kind in REVIEWED:
    ALLOWED[(kind, S.submitted, E.review)] = S.in_review
    for undecided in (S.submitted, S.in_review):
        ALLOWED[(kind, undecided, E.approve)] = S.approved
        ALLOWED[(kind, undecided, E.narrow)] = S.narrowed
        ALLOWED[(kind, undecided, E.reject)] = S.rejected
        ALLOWED[(kind, undecided, E.withdraw)] = S.withdrawn
for granted in (S.approved, S.narrowed):
    ALLOWED[(K.emergency, granted, E.ratify)] = S.ratified
    ALLOWED[(K.emergency, granted, E.lapse)] = S.unratified
    ALLOWED[(K.preservation, granted, E.extend)] = granted
    ALLOWED[(K.preservation, granted, E.expire)] = S.closed
# A ratified emergency whose proving warrant is withdrawn or rejected is unratified.
ALLOWED[(K.emergency, S.ratified, E.lapse)] = S.unratified
ALLOWED[(K.community, S.open, E.close)] = S.closed
ALLOWED[(K.community, S.open, E.expire)] = S.closed

EVERY = list(itertools.product(RequestKind, RequestStatus, Event))


@pytest.mark.parametrize(("kind", "status", "event"), EVERY)
def test_each_transition_is_allowed_exactly_as_listed(
    kind: RequestKind, status: RequestStatus, event: Event
) -> None:
    expected = ALLOWED.get((kind, status, event))
    assert allowed(kind, status, event) is (expected is not None)
    if expected is None:
        with pytest.raises(WrongState) as refused:
            next_status(kind, status, event)
        assert refused.value.code == "wrong_state" and refused.value.status_code == 409
        assert refused.value.details["status"] == str(status)
    else:
        assert next_status(kind, status, event) is expected


def test_final_states_have_no_way_out() -> None:
    final = (S.rejected, S.withdrawn, S.ratified, S.unratified, S.closed)
    for kind, status, event in EVERY:
        if status is S.ratified and (kind, event) == (K.emergency, E.lapse):
            continue  # its proof can fall away
        if status in final:
            assert not allowed(kind, status, event), (kind, status, event)


def test_nothing_ever_moves_a_request_back_to_review() -> None:
    for kind, status, event in EVERY:
        if allowed(kind, status, event):
            assert next_status(kind, status, event) not in (S.submitted, S.open)
