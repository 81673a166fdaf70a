"""Webhooks are the household owners' alone: a standing feed of its events outside."""

from __future__ import annotations

import uuid

import pytest

from doorwarden.policy import Action, AuthMethod, HouseholdResource, Principal, decide
from doorwarden.roles import HouseholdRole, Role

HOME = uuid.uuid4()


def _resident(role: HouseholdRole | None, auth: AuthMethod = AuthMethod.session) -> Principal:
    households = {HOME: role} if role is not None else {uuid.uuid4(): HouseholdRole.owner}
    return Principal(user_id=uuid.uuid4(), role=Role.resident, households=households, auth=auth)


def test_owners_may_with_a_session_or_a_token() -> None:
    for auth in (AuthMethod.session, AuthMethod.token):
        principal = _resident(HouseholdRole.owner, auth)
        assert decide(principal, Action.webhooks_manage, HouseholdResource(HOME)).allowed


@pytest.mark.parametrize("role", [HouseholdRole.shared, None])
def test_shared_users_and_other_households_may_not(role: HouseholdRole | None) -> None:
    assert not decide(_resident(role), Action.webhooks_manage, HouseholdResource(HOME)).allowed


@pytest.mark.parametrize(
    "role", [Role.operator_admin, Role.legal_reviewer, Role.auditor, Role.agency_officer]
)
def test_no_staff_role_may(role: Role) -> None:
    staff = Principal(user_id=uuid.uuid4(), role=role, auth=AuthMethod.session)
    assert not decide(staff, Action.webhooks_manage, HouseholdResource(HOME)).allowed
