"""Request dependencies: database session, settings, clock, clip store, upload staging,
log signer, the effects bag legal decisions carry, principal, authorisation, request
context. Routers and views get these from here, never from `app.state` (main.py sets it).

`authorize(action, resource)` is how every route reaches the policy module. It marks the
dependency with the action, so tests/functional/app/test_route_policy.py can find routes
that make no policy decision and fail.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.types import Scope

from doorwarden import policy
from doorwarden.accounts import api_tokens, sessions
from doorwarden.accounts.models import User
from doorwarden.agencies.models import Agency
from doorwarden.agencies.service import officer_agency
from doorwarden.agencies.standing import standing_of
from doorwarden.audit.log import LogSigner
from doorwarden.audit.service import RequestContext
from doorwarden.clips.completion import AnyStaging
from doorwarden.clock import Clock
from doorwarden.config import Settings
from doorwarden.crypto.errors import MalformedError
from doorwarden.db import forget_cleanups, run_rollback_cleanups
from doorwarden.devices import service as devices
from doorwarden.devices.models import Device
from doorwarden.errors import CsrfFailed, DomainError, Forbidden, NotAuthenticated
from doorwarden.households.service import memberships
from doorwarden.http_errors import domain_error_response
from doorwarden.legal.disclosure.outcomes import Effects
from doorwarden.live.relay import LiveHub
from doorwarden.roles import Role
from doorwarden.storage.base import ClipStore
from doorwarden.web import csrf

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_settings_dep(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.clock
    return clock


async def get_db(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request; committed when the route returns, before the response
    is sent (scope="function"), rolled back if it raised."""
    async with request.app.state.sessionmaker() as db:
        try:
            yield db
            await db.commit()
            forget_cleanups(db)
        except BaseException:
            await db.rollback()
            await run_rollback_cleanups(db)  # objects stored for rows that never were
            raise


def get_live_hub(request: Request) -> LiveHub:
    hub: LiveHub = request.app.state.live_hub
    return hub


def get_store(request: Request) -> ClipStore:
    """Where clips, thumbnails, legal documents and packages are stored."""
    store: ClipStore = request.app.state.clip_store
    return store


def get_signer(request: Request) -> LogSigner:
    signer: LogSigner = request.app.state.log_signer
    return signer


def get_staging(request: Request) -> AnyStaging:
    """Where a camera's upload waits until it is verified (local, or the S3 bucket's
    `staging/` when the clip store is S3: clips/stagings.py)."""
    staging: AnyStaging = request.app.state.staging
    return staging


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
LiveHubDep = Annotated[LiveHub, Depends(get_live_hub)]
ClockDep = Annotated[Clock, Depends(get_clock)]
SessionDep = Annotated[AsyncSession, Depends(get_db, scope="function")]
StoreDep = Annotated[ClipStore, Depends(get_store)]
SignerDep = Annotated[LogSigner, Depends(get_signer)]
StagingDep = Annotated[AnyStaging, Depends(get_staging)]


def client_address(request: HTTPConnection, settings: Settings) -> str:
    peer = request.client.host if request.client else "unknown"
    forwarded = request.headers.get("x-forwarded-for")
    if forwarded and peer in settings.trusted_proxies:
        # The right-most address not added by one of our own proxies is the client.
        for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
            if hop not in settings.trusted_proxies:
                return hop[:64]
    return peer[:64]


def get_request_context(request: Request, settings: SettingsDep) -> RequestContext:
    return RequestContext(
        client_address=client_address(request, settings),
        user_agent=request.headers.get("user-agent"),
        request_id=getattr(request.state, "request_id", None),
    )


ContextDep = Annotated[RequestContext, Depends(get_request_context)]


def get_effects(
    store: StoreDep, signer: SignerDep, settings: SettingsDep, clock: ClockDep, ctx: ContextDep
) -> Effects:
    """The one bag a legal filing or decision carries besides the database: where its
    documents and packages go, the log key that signs a package, the limits, who asked,
    and the time of the request."""
    return Effects(store=store, signer=signer, settings=settings, ctx=ctx, now=clock.now())


EffectsDep = Annotated[Effects, Depends(get_effects)]


async def _principal_for(
    db: AsyncSession,
    user: User,
    auth: policy.AuthMethod,
    session_id: uuid.UUID | None,
    *,
    settings: Settings,
    clock: Clock,
) -> policy.Principal:
    households = await memberships(db, user.id) if user.role is Role.resident else {}
    agency_id = await officer_agency(db, user.id) if user.role is Role.agency_officer else None
    standing = None
    if agency_id is not None:
        agency = await db.get(Agency, agency_id)
        if agency is not None:
            standing = await standing_of(
                db,
                agency,
                require_approval=settings.legal_require_municipal_approval,
                today=clock.now().date(),
            )
    return policy.Principal(
        user_id=user.id,
        role=user.role,
        households=households,
        agency_id=agency_id,
        auth=auth,
        session_id=session_id,
        agency_standing=standing,
    )


async def load_principal(
    request: Request, db: SessionDep, settings: SettingsDep, clock: ClockDep
) -> policy.Principal:
    """The caller, loaded once per request (see `principal_of`)."""
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    return await principal_of(request, db, settings, clock)


async def principal_of(
    request: HTTPConnection, db: AsyncSession, settings: Settings, clock: Clock
) -> policy.Principal:
    """Bearer token first (scripts, or a camera's device token), then the session cookie
    (browsers). Works for WebSockets too, whose routes cannot use `authorize`: live view
    calls this at the handshake and again while the stream runs."""
    principal = policy.ANONYMOUS
    user: User | None = None
    authorization = request.headers.get("authorization", "")
    if authorization:
        scheme, _, secret = authorization.partition(" ")
        secret = secret.strip()
        if scheme.lower() == "bearer" and secret.startswith(devices.TOKEN_PREFIX):
            device = await devices.authenticate(db, secret, clock.now())
            principal = policy.Principal(
                auth=policy.AuthMethod.device,
                device_id=device.id,
                device_household_id=device.household_id,
            )
            request.state.principal, request.state.device = principal, device
            request.state.user = request.state.user_name = None
            return principal
        found = (
            await api_tokens.authenticate(db, secret, clock.now())
            if scheme.lower() == "bearer"
            else None
        )
        if found is None:
            raise NotAuthenticated(
                "The API token is not valid, expired or revoked.",
                headers={"WWW-Authenticate": "Bearer"},
            )
        user = found[1]
        principal = await _principal_for(
            db, user, policy.AuthMethod.token, None, settings=settings, clock=clock
        )
    elif token := request.cookies.get(sessions.SESSION_COOKIE):
        loaded = await sessions.load_session(db, settings, token, clock.now())
        if loaded is not None and not loaded[0].mfa_pending:
            session, user = loaded
            principal = await _principal_for(
                db, user, policy.AuthMethod.session, session.id, settings=settings, clock=clock
            )
    request.state.principal = principal
    request.state.user = user
    request.state.user_name = user.display_name if user is not None and principal.user_id else None
    return principal


PrincipalDep = Annotated[policy.Principal, Depends(load_principal)]


def instance_resource() -> policy.Resource:
    return policy.Instance()


def household_resource(household_id: uuid.UUID) -> policy.Resource:
    return policy.HouseholdResource(household_id)


def member_resource(household_id: uuid.UUID, user_id: uuid.UUID) -> policy.Resource:
    return policy.MemberResource(household_id, user_id)


def agency_resource(agency_id: uuid.UUID) -> policy.Resource:
    return policy.AgencyResource(agency_id)


async def _check_csrf(request: Request, principal: policy.Principal, settings: Settings) -> None:
    """Unsafe requests riding on ambient credentials (the session cookie) or coming from
    a form must carry the CSRF token; bearer-token API calls carry no ambient credential."""
    if request.method in SAFE_METHODS or principal.auth in (
        policy.AuthMethod.token,
        policy.AuthMethod.device,
    ):
        return
    is_form = request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    )
    if principal.auth is policy.AuthMethod.none and not is_form:
        return
    supplied = request.headers.get(csrf.HEADER)
    if supplied is None and is_form:
        form = await request.form()
        value = form.get(csrf.FIELD)
        supplied = value if isinstance(value, str) else None
    if not csrf.token_ok(settings, request, principal.session_id, supplied):
        raise CsrfFailed(
            "The form has expired or did not come from this site. Reload and try again."
        )


def refusal(principal: policy.Principal, decision: policy.Decision) -> DomainError:
    """What a refused caller is told: sign in first, or why not."""
    if principal.is_anonymous:
        return NotAuthenticated("Sign in to continue.")
    error = Forbidden(
        "You are not allowed to do this."
        if decision.code is None
        else f"Refused: {decision.reason}.",
        details={"reason": decision.reason},
    )
    if decision.code is not None:
        error.code = decision.code
    return error


def authorize(
    action: policy.Action, resource: Callable[..., policy.Resource] = instance_resource
) -> Any:
    """Depends(...) that asks the policy and returns the principal, or refuses."""

    async def _authorize(
        request: Request,
        settings: SettingsDep,
        principal: PrincipalDep,
        # A default, not Annotated: the closure's `resource` is invisible to string annotations.
        target: policy.Resource = Depends(resource),
    ) -> policy.Principal:
        decision = policy.decide(principal, action, target)
        request.state.policy_decision = (action, decision)
        if not decision.allowed:
            raise refusal(principal, decision)
        await _check_csrf(request, principal, settings)
        return principal

    _authorize.policy_action = action  # type: ignore[attr-defined]
    return Depends(_authorize)


async def current_user(request: Request, _principal: PrincipalDep) -> User:
    """The signed-in User row. Routes still declare `authorize(...)` for the decision."""
    user: User | None = getattr(request.state, "user", None)
    if user is None:
        raise NotAuthenticated("Sign in to continue.")
    return user


UserDep = Annotated[User, Depends(current_user)]


async def current_device(request: Request, _principal: PrincipalDep) -> Device:
    """The camera calling with its device token. Routes still declare `authorize(...)`."""
    device: Device | None = getattr(request.state, "device", None)
    if device is None:
        raise NotAuthenticated("This call is for a paired camera, with its device token.")
    return device


DeviceDep = Annotated[Device, Depends(current_device)]


# The policy actions of the routes under each section of middleware.DOCUMENT_PATH (forms
# that may carry legal documents). tests/functional/app/test_document_body_gate.py checks
# that every such route declares one of these, so a new or renamed action cannot slip by.
DOCUMENT_ACTIONS: dict[str, tuple[policy.Action, ...]] = {
    "requests": (policy.Action.legal_request_submit, policy.Action.legal_request_update),
    "approvals": (policy.Action.governance_manage,),
}


async def document_gate(scope: Scope, agency: str, section: str) -> bool | Response:
    """Run by the request middleware before the body of a POST that may carry legal
    documents is read: the caller is authenticated and the policy asked first. One whom
    the policy lets act there at this agency may send a document-sized body (True);
    anyone else is answered now, as the route would answer them, before a byte of the
    body is read or parsed. False: not an agency id; the ordinary limit, the app answers."""
    try:
        agency_id = uuid.UUID(agency)
    except ValueError:
        return False
    # A state of its own: the user row principal_of leaves there belongs to this short
    # session, and the route must load its own in the request's session.
    request = Request({**scope, "state": {}})
    state = request.app.state
    async with state.sessionmaker() as db:  # answered within it: an error page may read the user
        try:
            principal = await principal_of(request, db, state.settings, state.clock)
        except DomainError as exc:  # a bad bearer token
            return domain_error_response(request, exc)
        resource = policy.AgencyResource(agency_id)
        decisions = [policy.decide(principal, a, resource) for a in DOCUMENT_ACTIONS[section]]
        if any(decision.allowed for decision in decisions):
            return True
        return domain_error_response(request, refusal(principal, decisions[0]))


# -- small JSON bodies a route reads itself ---------------------------------------------
# A camera's health report and its rings are read from the stream, bounded, then parsed
# strictly (crypto/strict_json.py) rather than by FastAPI: both are limited and refused
# alike, in the shapes FastAPI's own validation has.

_Parsed = TypeVar("_Parsed")


class PayloadTooLarge(DomainError):
    status_code = 413
    code = "payload_too_large"


async def read_bounded(request: Request, max_bytes: int, what: str) -> bytes:
    """The body, read only up to `max_bytes`: 413 beyond, declared or streamed (the rest
    stays unread and the connection closes)."""
    too_large = PayloadTooLarge(
        f"{what} is at most {max_bytes} bytes.",
        details={"max_bytes": max_bytes},
        headers={"Connection": "close"},
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise too_large
    return bytes(body)


def parse_or_422(parse: Callable[[bytes], _Parsed], body: bytes) -> _Parsed:
    """`parse(body)`, or 422 validation_error as FastAPI answers it (never echoing the
    input: where, what type of error, and the message)."""
    try:
        return parse(body)
    except MalformedError as exc:
        errors: list[Any] = [{"type": "json_invalid", "loc": ("body",), "msg": str(exc)}]
    except ValidationError as exc:
        errors = [
            {"type": e["type"], "loc": ("body", *e["loc"]), "msg": e["msg"]}
            for e in exc.errors(include_url=False, include_input=False, include_context=False)
        ]
    raise RequestValidationError(errors)
