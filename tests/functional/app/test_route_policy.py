"""Every route x every role x own and foreign resources, against the expected decisions.

The expectations below are written out by hand, independently of policy.RULES, so a
change to the policy that alters who may do what fails here until the table is updated
on purpose. A route that declares no policy action, or an action missing from the
table, fails the suite.

Route handlers are stopped right after the authorisation dependency (through
dependency_overrides), so the real principal loading, policy decision and CSRF check
run for each request while no handler changes the state the next request depends on.
"""

from __future__ import annotations

import functools
import itertools
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from doorwarden.accounts.models import User
from doorwarden.clock import ManualClock
from doorwarden.config import Settings
from doorwarden.deps import authorize
from doorwarden.errors import DomainError
from doorwarden.main import create_app
from doorwarden.policy import FOOTAGE_ACTIONS, Action
from doorwarden.roles import Role
from doorwarden.signing import sign
from doorwarden.web import csrf
from tests.factories import SECRET, Factory, make_client
from tests.functional.app.route_inventory import inventory
from tests.pdfs import pdf_bytes

PARAM = re.compile(r"{(\w+)}")


@dataclass
class Who:
    name: str
    role: Role | None = None
    user: User | None = None
    households: dict[uuid.UUID, str] = field(default_factory=dict)
    agency_id: uuid.UUID | None = None
    interactive: bool = True
    client: httpx.AsyncClient | None = None
    device_of: uuid.UUID | None = None  # a camera paired to this household
    agency_active: bool = False  # its agency is verified, with an approval on file


@dataclass(frozen=True)
class Binding:
    household_id: uuid.UUID | None = None
    agency_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None


Expect = Callable[[Who, Binding], bool]


def everyone(_w: Who, _b: Binding) -> bool:
    return True


def signed_in(w: Who, _b: Binding) -> bool:
    return w.user is not None


def interactive(w: Who, _b: Binding) -> bool:
    return w.user is not None and w.interactive


def roles(*allowed: Role) -> Expect:
    return lambda w, _b: w.role in allowed


def members(*household_roles: str) -> Expect:
    def expect(w: Who, b: Binding) -> bool:
        return w.role is Role.resident and w.households.get(b.household_id) in household_roles  # type: ignore[arg-type]

    return expect


def owner_or_self(w: Who, b: Binding) -> bool:
    if w.user is not None and b.user_id == w.user.id:
        return members("owner", "shared")(w, b)
    return members("owner")(w, b)


def camera_itself(w: Who, _b: Binding) -> bool:
    return w.device_of is not None


def own_officer(w: Who, b: Binding) -> bool:
    return w.role is Role.agency_officer and w.agency_id == b.agency_id


def officer_in_good_standing(w: Who, b: Binding) -> bool:
    return own_officer(w, b) and w.agency_active


def agency_reader(w: Who, b: Binding) -> bool:
    if w.role in (Role.operator_admin, Role.legal_reviewer):
        return True
    return w.role is Role.agency_officer and w.agency_id == b.agency_id


EXPECTED: dict[Action, Expect] = {
    Action.health_read: everyone,
    Action.page_public: everyone,
    Action.log_read: everyone,
    Action.account_signup: everyone,
    Action.session_create: everyone,
    Action.session_end: signed_in,
    Action.account_read: signed_in,
    Action.account_security: interactive,
    # Push subscriptions: residents only (staff never receive household events); making
    # one needs an interactive session, listing and revoking one's own does not.
    Action.push_subscribe: lambda w, _b: w.role is Role.resident and w.interactive,
    Action.push_subscriptions_manage: roles(Role.resident),
    Action.household_create: roles(Role.resident),
    Action.household_list: roles(Role.resident),
    Action.household_read: members("owner", "shared"),
    Action.household_members_read: members("owner", "shared"),
    Action.household_update: members("owner"),
    Action.household_member_add: members("owner"),
    Action.household_member_remove: owner_or_self,
    Action.household_audit_read: members("owner"),
    Action.notify_rules: members("owner", "shared"),  # one's own rules: never staff
    Action.notifications_read: roles(Role.resident),  # one's own deliveries
    Action.agency_create: roles(Role.operator_admin),
    Action.agency_verify: roles(Role.operator_admin),
    Action.agency_list: roles(Role.operator_admin, Role.legal_reviewer),
    Action.agency_read: agency_reader,
    Action.admin_users_read: roles(Role.operator_admin),
    Action.admin_user_update: roles(Role.operator_admin),
    Action.admin_invite_create: roles(Role.operator_admin),
    Action.admin_invite_confirm: roles(Role.operator_admin),  # and not the proposer: below
    Action.audit_read_all: roles(Role.auditor, Role.operator_admin),
    Action.agency_update: roles(Role.operator_admin),
    Action.governance_manage: roles(Role.operator_admin),
    Action.instance_policy_update: roles(Role.operator_admin),
}
# Legal process: officers act for their own agency only, and only in good standing (they
# may still read their requests); review is the reviewers'; a household's legal view is
# its owner's. No staff role reaches a package, and no agency reaches footage otherwise.
EXPECTED |= {
    Action.legal_request_submit: officer_in_good_standing,
    Action.legal_request_update: officer_in_good_standing,
    Action.legal_package_download: officer_in_good_standing,
    Action.legal_request_read: own_officer,
    # Its officer-administrator's alone (the service asks policy.officer_invite): below.
    Action.agency_officer_invite: officer_in_good_standing,
    Action.legal_review: roles(Role.legal_reviewer),
    Action.household_requests_read: members("owner"),
}
# Footage actions: members only, never staff. They have routes once clips exist; their
# expectations are already fixed here so those routes are checked the day they land.
EXPECTED |= {
    Action.clip_view: members("owner", "shared"),
    Action.clip_download: members("owner", "shared"),
    Action.live_view: members("owner", "shared"),
    Action.talk: members("owner", "shared"),  # on live view's socket (tests/functional/live)
    Action.clip_delete: members("owner"),
    Action.clip_share: members("owner"),
    Action.device_manage: members("owner"),
    Action.camera_settings: members("owner"),  # settings and snapshots (issue 19)
    Action.integrity_alert_read: members("owner"),
}
# Cameras: pairing is open (the one-time code is the credential, checked by the service);
# a camera's token does nothing but its own state and uploads, and nobody else does those.
EXPECTED |= {
    Action.device_pair: everyone,
    Action.device_self: camera_itself,
    Action.clip_upload: camera_itself,
    Action.event_report: camera_itself,
}
# Events (rings, people, motion): a household's members, never staff.
EXPECTED |= {Action.event_read: members("owner", "shared")}
# Modes: owners set them (and snooze the household, decided again by the service); any
# member snoozes their own notifications. Never staff.
EXPECTED |= {Action.mode_set: members("owner"), Action.snooze_own: members("owner", "shared")}
# Webhooks: a standing feed of the household's events to an outside address: its owners'.
EXPECTED |= {Action.webhooks_manage: members("owner")}
STAFF = (Role.operator_admin, Role.legal_reviewer, Role.auditor, Role.agency_officer)


class _Allowed(DomainError):
    """Raised right after an allow decision, so the handler does not run. A DomainError,
    so the app's own error handling answers it (with a status no route uses)."""

    status_code = 299
    code = "test_policy_allowed"


def _stop_after(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def stopped(*args: Any, **kwargs: Any) -> Any:
        await original(*args, **kwargs)
        raise _Allowed("allowed")

    return stopped


def _stop_handlers_after_authorisation(app: FastAPI) -> None:
    routes, _ = inventory(app)
    for route in routes:
        for call in route.authorize_calls:
            app.dependency_overrides[call] = _stop_after(call)


def test_every_route_declares_exactly_one_policy_action(app: FastAPI) -> None:
    routes, others = inventory(app)
    assert len(routes) > 20
    undeclared = [f"{r.method} {r.path}" for r in routes if len(r.actions) != 1]
    assert undeclared == [], f"routes without exactly one authorize(...): {undeclared}"
    unknown = sorted({str(a) for r in routes for a in r.actions if a not in EXPECTED})
    assert unknown == [], f"actions with no expected decision in this test: {unknown}"
    assert others == ["mount /static"], others


def test_the_inventory_catches_a_route_without_a_policy_decision(app: FastAPI) -> None:
    rogue = APIRouter()

    @rogue.get("/api/v1/rogue")
    async def rogue_route() -> dict[str, str]:
        return {}

    @rogue.get("/api/v1/guarded")
    async def guarded_route(_p: Any = authorize(Action.account_read)) -> dict[str, str]:
        return {}

    app.include_router(rogue)
    routes, _ = inventory(app)
    by_path = {r.path: r for r in routes}
    assert by_path["/api/v1/rogue"].actions == ()
    assert by_path["/api/v1/guarded"].actions == (Action.account_read,)


@pytest.mark.parametrize("role", STAFF)
def test_no_staff_role_is_expected_to_reach_footage(role: Role) -> None:
    # The rule as the table states it (policy.py states it again, tests/unit checks it).
    who = Who(name=str(role), role=role, user=object(), households={})  # type: ignore[arg-type]
    for action in FOOTAGE_ACTIONS:
        assert not EXPECTED[action](who, Binding(household_id=uuid.uuid4()))


@pytest.mark.parametrize("role", STAFF)
def test_no_staff_role_is_expected_to_talk_through_a_camera(role: Role) -> None:
    who = Who(name=str(role), role=role, user=object(), households={})  # type: ignore[arg-type]
    assert not EXPECTED[Action.talk](who, Binding(household_id=uuid.uuid4()))


async def _cast(factory: Factory) -> tuple[list[Who], dict[str, Any]]:
    admin = await factory.user(Role.operator_admin)
    owner_a = await factory.user()
    shared_a = await factory.user()
    owner_b = await factory.user()
    home_a = await factory.household(owner_a, "A")
    home_b = await factory.household(owner_b, "B")
    await factory.share(home_a, owner_a, shared_a)
    agency_x = await factory.agency_in_good_standing(admin, "Agency X")
    agency_y = await factory.agency(admin, "Agency Y")  # not verified: may not act
    officer = await factory.user(Role.agency_officer, agency_id=agency_x)
    officer_y = await factory.user(Role.agency_officer, agency_id=agency_y)
    reviewer = await factory.user(Role.legal_reviewer)
    auditor = await factory.user(Role.auditor)
    cast = [
        Who("anonymous", client=make_client(factory.app)),
        Who("owner_a", Role.resident, owner_a, {home_a: "owner"}),
        Who("owner_a_token", Role.resident, owner_a, {home_a: "owner"}, interactive=False),
        Who("shared_a", Role.resident, shared_a, {home_a: "shared"}),
        Who("owner_b", Role.resident, owner_b, {home_b: "owner"}),
        Who("officer_x", Role.agency_officer, officer, agency_id=agency_x, agency_active=True),
        Who("officer_y", Role.agency_officer, officer_y, agency_id=agency_y),
        Who("reviewer", Role.legal_reviewer, reviewer),
        Who("admin", Role.operator_admin, admin),
        Who("auditor", Role.auditor, auditor),
    ]
    camera = await factory.camera(owner_a, home_a)
    cast.append(Who("camera_a", device_of=home_a, client=camera.client))
    for who in cast:
        if who.device_of is not None:
            continue  # carries its device token already
        if who.user is None:
            who.client.cookies.set(csrf.COOKIE, "anon-cookie")  # type: ignore[union-attr]
            who.client.headers["x-csrf-token"] = sign(SECRET, "csrf:anon:anon-cookie")  # type: ignore[union-attr]
        elif who.interactive:
            who.client = await factory.signed_in(who.user)
        else:
            who.client = await factory.with_token(who.user)
    ids = {
        "home_a": home_a,
        "home_b": home_b,
        "agency_x": agency_x,
        "agency_y": agency_y,
        "shared_a": shared_a.id,
    }
    return cast, ids


def _bindings(path: str, who: Who, ids: dict[str, Any]) -> list[Binding]:
    params = set(PARAM.findall(path))
    households = [ids["home_a"], ids["home_b"]] if "household_id" in params else [None]
    agencies = [ids["agency_x"], ids["agency_y"]] if "agency_id" in params else [None]
    users: list[uuid.UUID | None] = [None]
    if "user_id" in params:
        users = [ids["shared_a"]] + ([who.user.id] if who.user is not None else [])
    return [Binding(h, a, u) for h, a, u in itertools.product(households, agencies, users)]


def _fill(path: str, binding: Binding) -> str:
    values = {
        "household_id": binding.household_id,
        "agency_id": binding.agency_id,
        "user_id": binding.user_id,
        "token_id": uuid.uuid4(),
        "device_id": uuid.uuid4(),
        "clip_id": uuid.uuid4(),
        "sequence": 0,
        "request_id": uuid.uuid4(),
        "package_id": uuid.uuid4(),
        "document_id": uuid.uuid4(),
        "approval_id": uuid.uuid4(),
        "programme_id": uuid.uuid4(),
        "invite_id": uuid.uuid4(),
        "snooze_id": uuid.uuid4(),
        "subscription_id": uuid.uuid4(),
        "camera": "front",  # a camera of a device, as its agent names it
        "webhook_id": uuid.uuid4(),
        "kind": "warrant",  # a request kind (the officer's new-request form)
    }

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise AssertionError(f"route parameter {{{name}}} has no test value: add it to _fill")
        return str(values[name])

    return PARAM.sub(value, path)


@pytest.mark.slow
async def test_every_route_decides_as_expected_for_every_role(
    app: FastAPI, factory: Factory, settings: Settings, clock: ManualClock
) -> None:
    cast, ids = await _cast(factory)
    # A second app on the same database, with overrides in place before its first request
    # (FastAPI resolves overrides when a route first handles a request).
    checked_app = create_app(settings, clock=clock)
    _stop_handlers_after_authorisation(checked_app)
    for who in cast:
        assert who.client is not None
        moved = make_client(checked_app)
        moved.cookies = who.client.cookies
        moved.headers.update(
            {k: v for k, v in who.client.headers.items() if k in ("authorization", "x-csrf-token")}
        )
        await who.client.aclose()
        who.client = moved
    async with checked_app.router.lifespan_context(checked_app):
        routes, _ = inventory(checked_app)
        mismatches: list[str] = []
        checked = 0
        for route, who in itertools.product(routes, cast):
            (action,) = route.actions
            for binding in _bindings(route.path, who, ids):
                url = _fill(route.path, binding)
                kwargs: dict[str, Any] = {}
                if route.method in ("POST", "PUT", "PATCH", "DELETE"):
                    kwargs = {"json": {}} if url.startswith("/api/") else {"data": {"x": "1"}}
                assert who.client is not None
                response = await who.client.request(route.method, url, **kwargs)
                expected = EXPECTED[action](who, binding)
                if expected:
                    ok = response.status_code == 299
                elif who.user is None:
                    ok = response.status_code in (401, 303) and (
                        response.status_code == 401
                        or response.headers["location"].startswith("/login")
                    )
                else:
                    ok = response.status_code == 403
                if url.startswith("/api/") and response.status_code in (401, 403):
                    ok = ok and response.json()["error"]["code"] in (
                        "not_authenticated",
                        "forbidden",
                        "agency_unverified",  # officers of an agency not in good standing
                        "agency_no_approval",
                        "wrong_agency",  # an officer on another agency's path
                    )
                checked += 1
                if not ok:
                    mismatches.append(
                        f"{route.method} {url} as {who.name}: "
                        f"expected {'allow' if expected else 'deny'}, "
                        f"got {response.status_code} {response.text[:120]}"
                    )
        for who in cast:
            assert who.client is not None
            await who.client.aclose()
    assert mismatches == [], "\n".join(mismatches)
    assert checked >= len(routes) * len(cast)


# -- separation of duties (policy rule 8) -------------------------------------------------
# Some decisions need a fact the path does not carry (who did the first half of a two-person
# act): the route's rule lets every operator in, as the table above says, and the service
# asks the policy with that fact. Each case is one person doing both halves, refused.


async def test_separation_of_duties_refuses_one_person_doing_both_halves(
    app: FastAPI, factory: Factory
) -> None:
    first_user = await factory.user(Role.operator_admin)
    first = await factory.signed_in(first_user)
    second = await factory.signed_in(await factory.user(Role.operator_admin))
    auditor = await factory.signed_in(await factory.user(Role.auditor))
    agency_id = await factory.agency(first_user)
    # Verify, then the same operator records the approval: refused; another may.
    assert (await first.post(f"/api/v1/agencies/{agency_id}/verify")).status_code == 200
    form = {
        "data": {
            "details": '{"approving_body": "Council", "approved_on": "2026-01-05", '
            '"reference": "Ord. 1", "expires_on": null}'
        },
        "files": {"policy_document": ("p.pdf", pdf_bytes("policy"), "application/pdf")},
    }
    refused = await first.post(f"/api/v1/agencies/{agency_id}/approvals", **form)
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "separation_of_duties"
    done = await second.post(f"/api/v1/agencies/{agency_id}/approvals", **form)
    assert done.status_code == 201, done.text
    # The other order: an approval first, then its recorder verifies: refused.
    other = await factory.agency(first_user, "Other")
    assert (await second.post(f"/api/v1/agencies/{other}/approvals", **form)).status_code == 201
    refused = await second.post(f"/api/v1/agencies/{other}/verify")
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "separation_of_duties"
    # A proposed invite: its proposer may not confirm it, nor anyone but an operator.
    proposed = await first.post("/api/v1/admin/invites", json={"role": "legal_reviewer"})
    assert proposed.status_code == 201 and proposed.json()["confirmed"] is False
    confirm = f"/api/v1/admin/invites/{proposed.json()['id']}/confirm"
    refused = await first.post(confirm)
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "separation_of_duties"
    assert (await auditor.post(confirm)).status_code == 403
    assert (await second.post(confirm)).status_code == 200
    refused = await second.post(confirm)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "already_confirmed"
    # Residents, auditors and plain invites need no second person.
    plain = await first.post("/api/v1/admin/invites", json={"role": "auditor"})
    assert plain.status_code == 201 and plain.json()["confirmed"] is True
    # An officer who is not its agency's officer-administrator invites no one.
    officer = await factory.signed_in(await factory.user(Role.agency_officer, agency_id=agency_id))
    refused = await officer.post(f"/api/v1/agencies/{agency_id}/invites")
    assert refused.status_code == 403, refused.text
    for client in (first, second, auditor, officer):
        await client.aclose()
