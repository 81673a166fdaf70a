"""Who may do what to which resource: the only authorisation code in doorwarden.

Every route declares one `Action` (see `deps.authorize`); this module decides allow or
deny for (principal, action, resource). Anything not granted below is denied, including
an action that has no rule at all.

Standing rules, enforced here and proven by tests/unit/test_policy.py and the route-by-role
test:

1. Footage (clips, thumbnails, live view, exports) is reachable only by members of the
   household that owns it. Operator admins, legal reviewers, auditors and agency
   officers have no rule that grants footage, and `decide` refuses footage actions to
   every non-resident account before any rule is consulted. Agencies receive recorded
   clips only through disclosure packages built by the legal process (legal_package_*),
   never by these actions, and never live view: no rule below lets an agency, a
   reviewer or an operator reach a live stream.
2. Tenancy: a household resource is visible only to that household's members; an agency
   resource only to that agency's officers (and to staff for administration).
3. Shared users may view live and history, but not delete footage, change settings or
   manage users.
4. Account security (password, second factor, API tokens) needs an interactive session:
   a leaked API token cannot mint more tokens or lock the owner out.
5. A camera (device principal) may only read its own pairing state and report its own
   health (device_self), upload its own clips and stream itself live to the relay; it
   has no user rights at all, and no person, whatever their role, may upload a clip or
   report health in a camera's name.
6. An agency acts only in good standing: verified by an operator and, where the
   instance requires it, with a municipal approval on file. Until then its officers may
   read their agency and their requests, and do nothing else.
7. Legal review is the legal reviewers' alone; operators verify agencies, record
   approvals and set instance policy, and see no request's scope or package.
8. Separation of duties: no one person can set up every step that leads to a disclosure.
   An agency's verification and its municipal approval are two operators' acts
   (`distinct_operator`); a legal reviewer's or an agency officer's account made from the
   web needs a second operator to confirm the first one's invite (`confirm_invite`; the
   server's shell, `doorwarden admin create-user`, is the other way); and whoever took
   part in setting up an agency (verified it, recorded its approval, invited or confirmed
   one of its officers) or in creating the reviewer's own account may not review that
   agency's requests (`review_conflict`: 409 conflict_of_interest). These rules need facts
   from the database, so the services gather them and ask here; the decision is this
   module's alone.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from doorwarden.roles import HouseholdRole, Role


class AuthMethod(StrEnum):
    none = "none"
    session = "session"
    token = "token"
    device = "device"


class Action(StrEnum):
    # Open to everyone, signed in or not.
    health_read = "health:read"
    page_public = "page:public"
    account_signup = "account:signup"
    session_create = "session:create"
    log_read = "log:read"  # the tamper-evident audit log: public by design
    # One's own account.
    session_end = "session:end"
    account_read = "account:read"
    account_security = "account:security"
    # One's own Web Push subscriptions (residents: pushes carry only household events).
    push_subscribe = "push:subscribe"
    push_subscriptions_manage = "push:subscriptions:manage"  # list and revoke one's own
    notifications_read = "notify:notifications:read"  # one's own deliveries and attempts
    # Households.
    household_create = "household:create"
    household_list = "household:list"
    household_read = "household:read"
    household_update = "household:update"
    household_members_read = "household:members:read"
    household_member_add = "household:member:add"
    household_member_remove = "household:member:remove"
    household_audit_read = "household:audit:read"
    notify_rules = "notify:rules"  # one's own notification rules for the household
    # Footage and cameras: the rules exist before the routes do.
    clip_view = "clip:view"
    clip_download = "clip:download"
    clip_delete = "clip:delete"
    clip_share = "clip:share"
    live_view = "live:view"
    # Two-way talk from the live page: no footage leaves, but it is live presence at the
    # door, so it follows live view's rule (members, never staff or agencies).
    talk = "live:talk"
    device_manage = "device:manage"
    # A camera's settings from the web (zones, sensitivity, clip lengths, notify labels)
    # and the fresh snapshot the zone editor draws over: its owner's, never staff's.
    camera_settings = "camera:settings"
    integrity_alert_read = "integrity-alert:read"
    # Cameras: pairing with a one-time code, then acting as themselves.
    device_pair = "device:pair"
    device_self = "device:self"  # its own state: read it, report its health
    clip_upload = "clip:upload"
    live_stream = "live:stream"  # the camera's side of live view: its outbound connection
    # Household modes: owners set them (and snooze the household); any member may snooze
    # their own notifications. Never staff.
    mode_set = "mode:set"
    snooze_own = "mode:snooze:own"
    event_report = "event:report"  # a camera's doorbell ring (its own, never another's)
    # Rings, people and motion: a household's timeline. Members only, never staff.
    event_read = "event:read"
    # A household's webhooks: a standing feed of its events to an address outside, so
    # its owners' alone (never shared users, never staff).
    webhooks_manage = "integration:webhooks"
    # Agencies.
    agency_create = "agency:create"
    agency_list = "agency:list"
    agency_read = "agency:read"
    agency_verify = "agency:verify"
    agency_update = "agency:update"
    agency_officer_invite = "agency:officer:invite"  # its officer-administrator's (rule 8)
    # Legal process. Not footage actions: a package holds only what a decision allowed.
    legal_request_submit = "legal:request:submit"
    legal_request_read = "legal:request:read"
    legal_request_update = "legal:request:update"  # withdraw, file proof, extend, close
    legal_package_download = "legal:package:download"
    legal_review = "legal:review"
    household_requests_read = "household:requests:read"  # notices, requests, disclosures
    # Governance.
    governance_manage = "governance:manage"  # municipal approvals, camera programmes
    instance_policy_update = "instance:policy:update"
    # Running the instance.
    admin_users_read = "admin:users:read"
    admin_user_update = "admin:user:update"
    admin_invite_create = "admin:invite:create"
    admin_invite_confirm = "admin:invite:confirm"  # a second operator's (rule 8)
    audit_read_all = "audit:read"


# Actions that touch video or images from a camera. See rule 1.
FOOTAGE_ACTIONS = frozenset(
    {
        Action.clip_view,
        Action.clip_download,
        Action.clip_delete,
        Action.clip_share,
        Action.live_view,
        Action.camera_settings,  # its snapshot is a fresh image from the camera
    }
)


@dataclass(frozen=True)
class Principal:
    user_id: uuid.UUID | None = None
    role: Role | None = None
    households: Mapping[uuid.UUID, HouseholdRole] = field(default_factory=dict)
    agency_id: uuid.UUID | None = None
    auth: AuthMethod = AuthMethod.none
    session_id: uuid.UUID | None = None
    # A paired camera acting with its device token (never together with user_id).
    device_id: uuid.UUID | None = None
    device_household_id: uuid.UUID | None = None
    # An officer's agency's standing (agencies/standing.py): "active" or why not.
    agency_standing: str | None = None

    @property
    def is_anonymous(self) -> bool:
        """No person: anonymous callers and cameras alike have no user rights."""
        return self.user_id is None

    @property
    def is_device(self) -> bool:
        return self.device_id is not None

    def household_role(self, household_id: uuid.UUID) -> HouseholdRole | None:
        return self.households.get(household_id)


ANONYMOUS = Principal()


# Resources: what the action is applied to. Built from the request path alone, so a
# decision never depends on a database read that a route could forget to make.
@dataclass(frozen=True)
class Instance:
    """The instance as a whole (sign-up, admin pages, one's own account)."""


@dataclass(frozen=True)
class HouseholdResource:
    household_id: uuid.UUID


@dataclass(frozen=True)
class MemberResource:
    household_id: uuid.UUID
    user_id: uuid.UUID


@dataclass(frozen=True)
class AgencyResource:
    agency_id: uuid.UUID


Resource = Instance | HouseholdResource | MemberResource | AgencyResource


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    code: str | None = None  # a specific error code for the refusal, else "forbidden"


def _allow(reason: str) -> Decision:
    return Decision(True, reason)


def _deny(reason: str, code: str | None = None) -> Decision:
    return Decision(False, reason, code)


Rule = Callable[[Principal, Resource], Decision]


def _anyone(_p: Principal, _r: Resource) -> Decision:
    return _allow("open to everyone")


def _signed_in(p: Principal, _r: Resource) -> Decision:
    return _allow("signed in") if not p.is_anonymous else _deny("sign in first")


def _interactive(p: Principal, _r: Resource) -> Decision:
    if p.auth is not AuthMethod.session:
        return _deny("account security needs an interactive sign-in, not an API token")
    return _allow("own account, interactive session")


def _resident_interactive(p: Principal, _r: Resource) -> Decision:
    """A push subscription keeps delivering after the credential that made it is gone: a
    leaked API token must not leave a standing feed of a household's events behind (its
    holder could read them only until the token is revoked). Browsers subscribe from a
    signed-in page, so nothing real needs a token here."""
    if p.role is not Role.resident:
        return _deny("push notifications carry household events: residents only")
    if p.auth is not AuthMethod.session:
        return _deny("subscribe to notifications from a signed-in browser, not an API token")
    return _allow("a resident's own browser, interactive session")


def _roles(*roles: Role) -> Rule:
    def rule(p: Principal, _r: Resource) -> Decision:
        if p.role in roles:
            return _allow(f"role {p.role}")
        return _deny(f"needs role {' or '.join(roles)}")

    return rule


def _household_id(r: Resource) -> uuid.UUID | None:
    if isinstance(r, HouseholdResource | MemberResource):
        return r.household_id
    return None


def _household(*roles: HouseholdRole) -> Rule:
    """Residents with one of `roles` in the household the resource belongs to."""

    def rule(p: Principal, r: Resource) -> Decision:
        household_id = _household_id(r)
        if household_id is None or p.role is not Role.resident:
            return _deny("not a household resource or not a resident")
        role = p.household_role(household_id)
        if role is None:
            return _deny("not a member of this household")
        if role not in roles:
            return _deny(f"household role {role} may not do this")
        return _allow(f"household {role}")

    return rule


def _owner_or_self(p: Principal, r: Resource) -> Decision:
    """Owners remove anyone; any member may leave (remove themselves)."""
    if isinstance(r, MemberResource) and r.user_id == p.user_id:
        return _household(HouseholdRole.owner, HouseholdRole.shared)(p, r)
    return _household(HouseholdRole.owner)(p, r)


def _not_this_agency(p: Principal) -> Decision:
    """An officer of another agency is told so (wrong_agency); anyone else is refused
    plainly. Either way nothing about the other agency's request is said."""
    code = "wrong_agency" if p.role is Role.agency_officer else None
    return _deny("not an officer of this agency", code)


def _agency_staff_or_own_officer(p: Principal, r: Resource) -> Decision:
    if not isinstance(r, AgencyResource):
        return _deny("not an agency resource")
    if p.role in (Role.operator_admin, Role.legal_reviewer):
        return _allow(f"role {p.role}")
    if p.role is Role.agency_officer and p.agency_id == r.agency_id:
        return _allow("officer of this agency")
    return _not_this_agency(p)


# An agency's standing as agencies/standing.py names it, and what a refusal then says.
ACTIVE = "active"
STANDING_REFUSALS = {
    "unverified": "this agency has not been verified by an operator yet",
    "no_approval": "this agency has no municipal approval on file",
}


def _officer_in_good_standing(p: Principal, r: Resource) -> Decision:
    if not isinstance(r, AgencyResource):
        return _deny("not an agency resource")
    if p.role is not Role.agency_officer or p.agency_id != r.agency_id:
        return _not_this_agency(p)
    if p.agency_standing != ACTIVE:
        standing = p.agency_standing or "unverified"
        reason = STANDING_REFUSALS.get(standing, "this agency may not act")
        return _deny(reason, f"agency_{standing}")
    return _allow("officer of this agency, in good standing")


def _own_officer(p: Principal, r: Resource) -> Decision:
    own = isinstance(r, AgencyResource) and p.agency_id == r.agency_id
    if own and p.role is Role.agency_officer:
        return _allow("officer of this agency")
    return _not_this_agency(p)


def _device_itself(p: Principal, _r: Resource) -> Decision:
    if p.is_device and p.user_id is None:
        return _allow("the camera itself")
    return _deny("only a paired camera, with its device token")


MEMBERS = (HouseholdRole.owner, HouseholdRole.shared)
OWNER = (HouseholdRole.owner,)

RULES: Mapping[Action, Rule] = {
    Action.health_read: _anyone,
    Action.page_public: _anyone,
    Action.account_signup: _anyone,  # open/invite-only is checked by the sign-up service
    Action.session_create: _anyone,
    Action.log_read: _anyone,
    Action.session_end: _signed_in,
    Action.account_read: _signed_in,
    Action.account_security: _interactive,
    # Staff and agency officers are never household members, so no push would ever be
    # theirs to receive: a subscription of theirs would only be an address the server
    # posts to. Listing and revoking one's own also works with an API token (revoking
    # is always safe; a script may clean up).
    Action.push_subscribe: _resident_interactive,
    Action.push_subscriptions_manage: _roles(Role.resident),
    Action.notifications_read: _roles(Role.resident),
    Action.household_create: _roles(Role.resident),
    Action.household_list: _roles(Role.resident),
    Action.household_read: _household(*MEMBERS),
    Action.household_update: _household(*OWNER),
    Action.household_members_read: _household(*MEMBERS),
    Action.household_member_add: _household(*OWNER),
    Action.household_member_remove: _owner_or_self,
    Action.household_audit_read: _household(*OWNER),
    Action.notify_rules: _household(*MEMBERS),
    Action.clip_view: _household(*MEMBERS),
    Action.clip_download: _household(*MEMBERS),
    Action.clip_delete: _household(*OWNER),
    Action.clip_share: _household(*OWNER),
    Action.live_view: _household(*MEMBERS),
    Action.talk: _household(*MEMBERS),  # a resident rule: staff are refused by role too
    Action.device_manage: _household(*OWNER),
    Action.camera_settings: _household(*OWNER),
    Action.integrity_alert_read: _household(*OWNER),
    Action.device_pair: _anyone,  # the one-time code is the credential; checked by the service
    Action.device_self: _device_itself,
    Action.clip_upload: _device_itself,
    Action.live_stream: _device_itself,
    Action.mode_set: _household(*OWNER),
    Action.snooze_own: _household(*MEMBERS),
    Action.event_report: _device_itself,
    Action.event_read: _household(*MEMBERS),
    Action.webhooks_manage: _household(*OWNER),
    Action.agency_create: _roles(Role.operator_admin),
    Action.agency_list: _roles(Role.operator_admin, Role.legal_reviewer),
    Action.agency_read: _agency_staff_or_own_officer,
    Action.agency_verify: _roles(Role.operator_admin),
    Action.agency_update: _roles(Role.operator_admin),
    Action.agency_officer_invite: _officer_in_good_standing,  # and its admin: officer_invite
    Action.legal_request_submit: _officer_in_good_standing,
    Action.legal_request_read: _own_officer,
    Action.legal_request_update: _officer_in_good_standing,
    Action.legal_package_download: _officer_in_good_standing,
    Action.legal_review: _roles(Role.legal_reviewer),
    Action.household_requests_read: _household(*OWNER),
    Action.governance_manage: _roles(Role.operator_admin),
    Action.instance_policy_update: _roles(Role.operator_admin),
    Action.admin_users_read: _roles(Role.operator_admin),
    Action.admin_user_update: _roles(Role.operator_admin),
    Action.admin_invite_create: _roles(Role.operator_admin),
    Action.admin_invite_confirm: _roles(Role.operator_admin),  # and not its proposer
    # Auditors and operators read the audit trail: who did what, never the footage.
    Action.audit_read_all: _roles(Role.auditor, Role.operator_admin),
}

OPEN_ACTIONS = frozenset(a for a, rule in RULES.items() if rule is _anyone)
DEVICE_ACTIONS = frozenset(a for a, rule in RULES.items() if rule is _device_itself)


def decide(principal: Principal, action: Action, resource: Resource) -> Decision:
    rule = RULES.get(action)
    if rule is None:
        return _deny(f"no rule for {action}: denied by default")
    if action in DEVICE_ACTIONS:
        return rule(principal, resource)
    if action not in OPEN_ACTIONS and principal.is_anonymous:
        return _deny("sign in first")
    if action in FOOTAGE_ACTIONS and principal.role is not Role.resident:
        return _deny("footage is for household members only; staff and agencies have no path")
    return rule(principal, resource)


# -- separation of duties (rule 8) -------------------------------------------------------

SEPARATION_OF_DUTIES = "separation_of_duties"
CONFLICT_OF_INTEREST = "conflict_of_interest"
# Roles whose accounts an operator alone may not create from the web: each is a step on
# the path to a disclosure (review, or filing for an agency).
TWO_PERSON_ROLES = frozenset({Role.legal_reviewer, Role.agency_officer})


def distinct_operator(actor_id: uuid.UUID, earlier: Collection[uuid.UUID | None]) -> Decision:
    """Verifying an agency and recording its approval: the second act must be another
    operator's than the one who did the first (`earlier`: whoever did the other act)."""
    if actor_id in earlier:
        return _deny(
            "another operator must do this: you already verified this agency or recorded "
            "its municipal approval",
            SEPARATION_OF_DUTIES,
        )
    return _allow("a second operator")


def invite_needs_confirmation(role: Role) -> bool:
    """An operator's invite for one of these roles is inert until a second confirms it."""
    return role in TWO_PERSON_ROLES


def operator_invite(role: Role, *, agency_has_admin: bool) -> Decision:
    """What an operator may invite: an agency's officers are its officer-administrator's to
    invite; an operator may only propose the first officer-administrator."""
    if role is Role.agency_officer and agency_has_admin:
        return _deny(
            "this agency's officer-administrator invites its officers, not an operator",
            "officer_admin_invites",
        )
    return _allow("an operator's invite")


def officer_invite(p: Principal, *, is_admin: bool) -> Decision:
    """An officer invites another officer of their own agency only as its administrator
    (the route's rule has already checked agency and good standing)."""
    if p.role is not Role.agency_officer or not is_admin:
        return _deny("only the agency's officer-administrator invites its officers")
    return _allow("the agency's officer-administrator")


def confirm_invite(
    p: Principal, *, proposed_by: uuid.UUID | None, already_confirmed: bool
) -> Decision:
    if p.role is not Role.operator_admin:
        return _deny("needs role operator_admin")
    if already_confirmed:
        return _deny("this invite is already confirmed", "already_confirmed")
    if proposed_by is not None and p.user_id == proposed_by:
        return _deny("a second operator must confirm an invite you proposed", SEPARATION_OF_DUTIES)
    return _allow("a second operator confirms")


def review_conflict(
    reviewer_side: Collection[uuid.UUID | None], agency_side: Collection[uuid.UUID | None]
) -> Decision:
    """`reviewer_side`: the reviewer and whoever created or confirmed their account;
    `agency_side`: whoever verified the agency, recorded its approvals, and created,
    invited or confirmed its officers. Anyone on both sides is a conflict."""
    shared = {u for u in reviewer_side if u is not None} & {u for u in agency_side if u is not None}
    if shared:
        return _deny(
            "you, or whoever created your account, took part in setting up this agency: "
            "another reviewer must decide its requests",
            CONFLICT_OF_INTEREST,
        )
    return _allow("no one in common")


def can(principal: Principal, action: Action, resource: Resource) -> bool:
    """Whether a page offers a control: the policy's own answer, so a page never shows a
    button its route would refuse."""
    return decide(principal, action, resource).allowed
