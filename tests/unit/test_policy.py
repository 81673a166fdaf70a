"""The policy on its own: deny by default, tenancy, shared users, footage for households only."""

from __future__ import annotations

import uuid

import pytest

from doorwarden import policy
from doorwarden.policy import Action, AuthMethod, Principal
from doorwarden.roles import HouseholdRole, Role

HOME, OTHER = uuid.uuid4(), uuid.uuid4()
AGENCY, OTHER_AGENCY = uuid.uuid4(), uuid.uuid4()


def resident(
    role: HouseholdRole | None = HouseholdRole.owner, auth: AuthMethod = AuthMethod.session
) -> Principal:
    households = {HOME: role} if role else {}
    return Principal(user_id=uuid.uuid4(), role=Role.resident, households=households, auth=auth)


def staff(role: Role, **kwargs: object) -> Principal:
    return Principal(user_id=uuid.uuid4(), role=role, auth=AuthMethod.session, **kwargs)  # type: ignore[arg-type]


STAFF_ROLES = [Role.operator_admin, Role.legal_reviewer, Role.auditor, Role.agency_officer]


def test_every_action_has_a_rule_and_unknown_actions_are_denied() -> None:
    assert set(policy.RULES) == set(Action)
    decision = policy.decide(resident(), "clip:teleport", policy.Instance())  # type: ignore[arg-type]
    assert not decision.allowed
    assert "denied by default" in decision.reason


@pytest.mark.parametrize("action", sorted(policy.FOOTAGE_ACTIONS))
@pytest.mark.parametrize("role", STAFF_ROLES)
def test_no_staff_or_agency_role_reaches_footage_even_with_a_membership(
    action: Action, role: Role
) -> None:
    # Even a principal forged to carry an owner membership is refused: the footage rule is
    # checked on the account's role before any household rule.
    forged = staff(role, households={HOME: HouseholdRole.owner}, agency_id=AGENCY)
    for resource in (
        policy.HouseholdResource(HOME),
        policy.Instance(),
        policy.AgencyResource(AGENCY),
    ):
        assert not policy.decide(forged, action, resource).allowed


@pytest.mark.parametrize("action", [Action.clip_view, Action.clip_download, Action.live_view])
def test_household_members_view_footage_of_their_own_household_only(action: Action) -> None:
    for member in (resident(HouseholdRole.owner), resident(HouseholdRole.shared)):
        assert policy.decide(member, action, policy.HouseholdResource(HOME)).allowed
        assert not policy.decide(member, action, policy.HouseholdResource(OTHER)).allowed


@pytest.mark.parametrize("role", STAFF_ROLES)
def test_no_staff_or_agency_role_talks_through_a_camera_even_with_a_membership(role: Role) -> None:
    # Talk sends no footage, but it is presence at someone's door: live view's rule.
    forged = staff(role, households={HOME: HouseholdRole.owner}, agency_id=AGENCY)
    for resource in (
        policy.HouseholdResource(HOME),
        policy.Instance(),
        policy.AgencyResource(AGENCY),
    ):
        assert not policy.decide(forged, Action.talk, resource).allowed


def test_household_members_talk_through_their_own_households_cameras_only() -> None:
    for member in (resident(HouseholdRole.owner), resident(HouseholdRole.shared)):
        assert policy.decide(member, Action.talk, policy.HouseholdResource(HOME)).allowed
        assert not policy.decide(member, Action.talk, policy.HouseholdResource(OTHER)).allowed
    assert not policy.decide(resident(None), Action.talk, policy.HouseholdResource(HOME)).allowed
    assert not policy.decide(policy.ANONYMOUS, Action.talk, policy.HouseholdResource(HOME)).allowed


@pytest.mark.parametrize(
    "action",
    [
        Action.clip_delete,
        Action.clip_share,
        Action.household_update,
        Action.household_member_add,
        Action.device_manage,
        Action.camera_settings,
        Action.household_audit_read,
    ],
)
def test_shared_users_cannot_delete_change_settings_or_add_users(action: Action) -> None:
    assert policy.decide(
        resident(HouseholdRole.owner), action, policy.HouseholdResource(HOME)
    ).allowed
    assert not policy.decide(
        resident(HouseholdRole.shared), action, policy.HouseholdResource(HOME)
    ).allowed


def test_members_may_leave_but_only_owners_remove_others() -> None:
    shared = resident(HouseholdRole.shared)
    assert shared.user_id is not None
    leave = policy.MemberResource(HOME, shared.user_id)
    assert policy.decide(shared, Action.household_member_remove, leave).allowed
    someone_else = policy.MemberResource(HOME, uuid.uuid4())
    assert not policy.decide(shared, Action.household_member_remove, someone_else).allowed
    assert policy.decide(resident(), Action.household_member_remove, someone_else).allowed
    foreign = policy.MemberResource(OTHER, uuid.uuid4())
    assert not policy.decide(resident(), Action.household_member_remove, foreign).allowed


def test_officers_see_their_own_agency_only() -> None:
    officer = staff(Role.agency_officer, agency_id=AGENCY)
    assert policy.decide(officer, Action.agency_read, policy.AgencyResource(AGENCY)).allowed
    assert not policy.decide(
        officer, Action.agency_read, policy.AgencyResource(OTHER_AGENCY)
    ).allowed
    assert not policy.decide(officer, Action.agency_list, policy.Instance()).allowed


def test_account_security_needs_an_interactive_session() -> None:
    assert policy.decide(resident(), Action.account_security, policy.Instance()).allowed
    token = resident(auth=AuthMethod.token)
    assert not policy.decide(token, Action.account_security, policy.Instance()).allowed
    assert policy.decide(token, Action.account_read, policy.Instance()).allowed


def test_anonymous_gets_only_open_actions() -> None:
    allowed = {a for a in Action if policy.decide(policy.ANONYMOUS, a, policy.Instance()).allowed}
    assert allowed == {
        Action.health_read,
        Action.page_public,
        Action.account_signup,
        Action.session_create,
        Action.log_read,  # the audit log is public: anyone may check it
        Action.device_pair,  # the one-time pairing code is the credential
    }


CAMERA = Principal(auth=AuthMethod.device, device_id=uuid.uuid4(), device_household_id=HOME)


def test_a_camera_does_nothing_but_its_own_state_and_uploads() -> None:
    allowed = {
        a
        for a in Action
        for r in (policy.Instance(), policy.HouseholdResource(HOME))
        if policy.decide(CAMERA, a, r).allowed
    }
    open_to_all = {
        a for a in Action if policy.decide(policy.ANONYMOUS, a, policy.Instance()).allowed
    }
    assert allowed - open_to_all == {
        Action.device_self, Action.clip_upload, Action.live_stream, Action.event_report,
    }  # fmt: skip
    # Not even footage of its own household: a camera uploads, it never watches.
    assert not policy.decide(CAMERA, Action.clip_view, policy.HouseholdResource(HOME)).allowed
    assert not policy.decide(CAMERA, Action.live_view, policy.HouseholdResource(HOME)).allowed


@pytest.mark.parametrize(
    "action", [Action.device_self, Action.clip_upload, Action.live_stream, Action.event_report]
)
def test_no_person_acts_as_a_camera(action: Action) -> None:
    people = [resident(), resident(HouseholdRole.shared), policy.ANONYMOUS]
    people += [staff(role) for role in STAFF_ROLES]
    for person in people:
        assert not policy.decide(person, action, policy.Instance()).allowed
    # A forged principal carrying both a user and a device is refused too.
    forged = Principal(
        user_id=uuid.uuid4(), role=Role.resident, auth=AuthMethod.device, device_id=uuid.uuid4()
    )
    assert not policy.decide(forged, action, policy.Instance()).allowed
