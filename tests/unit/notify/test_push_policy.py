"""Who may subscribe to push notifications and manage their subscriptions."""

from __future__ import annotations

import uuid

import pytest

from doorwarden import policy
from doorwarden.policy import Action, AuthMethod, Principal
from doorwarden.roles import Role

INSTANCE = policy.Instance()
STAFF = [Role.operator_admin, Role.auditor, Role.legal_reviewer, Role.agency_officer]


def person(role: Role, auth: AuthMethod = AuthMethod.session) -> Principal:
    return Principal(user_id=uuid.uuid4(), role=role, auth=auth)


def test_a_resident_subscribes_from_a_browser_session_only() -> None:
    assert policy.decide(person(Role.resident), Action.push_subscribe, INSTANCE).allowed
    token = person(Role.resident, AuthMethod.token)
    refused = policy.decide(token, Action.push_subscribe, INSTANCE)
    assert not refused.allowed and "API token" in refused.reason
    # A script may still list and revoke what the member's browsers made.
    assert policy.decide(token, Action.push_subscriptions_manage, INSTANCE).allowed


@pytest.mark.parametrize("role", STAFF)
@pytest.mark.parametrize("action", [Action.push_subscribe, Action.push_subscriptions_manage])
def test_staff_have_no_push_subscriptions(role: Role, action: Action) -> None:
    assert not policy.decide(person(role), action, INSTANCE).allowed


@pytest.mark.parametrize("action", [Action.push_subscribe, Action.push_subscriptions_manage])
def test_neither_anonymous_callers_nor_cameras(action: Action) -> None:
    camera = Principal(auth=AuthMethod.device, device_id=uuid.uuid4())
    assert not policy.decide(policy.ANONYMOUS, action, INSTANCE).allowed
    assert not policy.decide(camera, action, INSTANCE).allowed
