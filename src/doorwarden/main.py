"""create_app() and its lifespan. Nothing is created at import time: the engine, the
session factory and the clock live on app.state, made when the app is created."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from sqlalchemy.ext.asyncio import AsyncEngine

from doorwarden import __version__
from doorwarden.accounts import account_views as accounts_account_views
from doorwarden.accounts import router as accounts_router
from doorwarden.accounts import views as accounts_views
from doorwarden.admin import router as accounts_admin_router
from doorwarden.admin import views as accounts_admin_views
from doorwarden.agencies import router as legal_router
from doorwarden.agencies import views as legal_views
from doorwarden.agencies.governance import router as governance_router
from doorwarden.agencies.governance import views as governance_views
from doorwarden.audit import log_router as audit_log_router
from doorwarden.audit import router as audit_router
from doorwarden.audit import views as audit_views
from doorwarden.audit.log import LogSigner
from doorwarden.audit.tasks import log_job
from doorwarden.bus import connect_bus
from doorwarden.clips import playback_router as clips_playback_router
from doorwarden.clips import router as clips_router
from doorwarden.clips import views as clips_views
from doorwarden.clips.e2e import router as clips_e2e_router
from doorwarden.clips.stagings import make_staging
from doorwarden.clips.sweep import sweep_at_startup, sweep_job
from doorwarden.clips.tasks import retention_job
from doorwarden.clock import Clock
from doorwarden.config import Settings, get_settings
from doorwarden.crypto import strict_json
from doorwarden.db import check_schema_current, create_engine, create_sessionmaker
from doorwarden.deps import document_gate
from doorwarden.devices import router as devices_router
from doorwarden.devices import views as devices_views
from doorwarden.devices.settings import router as devices_settings_router
from doorwarden.devices.settings import views as devices_settings_views
from doorwarden.events import router as events_router
from doorwarden.events.clip_events import clip_events_job
from doorwarden.events.wake import notify_wake
from doorwarden.formats.checkpoint import log_key
from doorwarden.health import router as health_router
from doorwarden.households import router as households_router
from doorwarden.households import views as households_views
from doorwarden.http_errors import StorageFaults, document_errors, install_error_handlers
from doorwarden.integrations.webhooks import router as webhooks_router
from doorwarden.integrations.webhooks import views as webhooks_views
from doorwarden.integrations.webhooks.tasks import Deliverer
from doorwarden.keyring import router as keyring_router
from doorwarden.keyring import views as keyring_views
from doorwarden.legal.household import router as legal_household_router
from doorwarden.legal.household import views as legal_household_views
from doorwarden.legal.requests import detail_views as legal_request_detail_views
from doorwarden.legal.requests import router as legal_requests_router
from doorwarden.legal.requests import views as legal_request_views
from doorwarden.legal.review import router as legal_review_router
from doorwarden.legal.review import views as legal_review_views
from doorwarden.legal.tasks import legal_job
from doorwarden.live import router as live_router
from doorwarden.live import views as live_views
from doorwarden.live.relay import LiveHub
from doorwarden.logging import configure_logging
from doorwarden.middleware import RequestMiddleware
from doorwarden.modes import router as modes_router
from doorwarden.modes import views as modes_views
from doorwarden.modes.tasks import modes_job
from doorwarden.notify import push_router as notify_push_router
from doorwarden.notify import router as notify_router
from doorwarden.notify import views as notify_views
from doorwarden.notify.dispatch import Dispatcher
from doorwarden.scheduler import Scheduler
from doorwarden.storage import (
    ClipStore,
    InvalidKey,
    InvalidRange,
    ObjectNotFound,
    StorageError,
    StorageFull,
    make_store,
)
from doorwarden.transparency import router as transparency_router
from doorwarden.transparency import views as transparency_views
from doorwarden.transparency.tasks import coverage_job
from doorwarden.web.pwa import router as web_pwa
from doorwarden.web.render import STATIC_DIR
from doorwarden.web.resident import views as web_resident_views

API_DESCRIPTION = """
The doorwarden JSON API. Authenticate with a session cookie (send `X-CSRF-Token` on
unsafe requests) or with `Authorization: Bearer dwt_...` (create tokens on your account
page). Every error has the shape `{"error": {"code", "message", "details"}}`.
"""


def clip_store(settings: Settings) -> ClipStore:
    """The store the settings name (a local directory unless storage_url says s3://)."""
    url = settings.storage_url or str(settings.data_dir / "clips")
    if not url.startswith("s3://"):
        return make_store(url)
    secret = settings.s3_secret_access_key
    return make_store(
        url,
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
        access_key_id=settings.s3_access_key_id,
        secret_access_key=secret.get_secret_value() if secret is not None else None,
        allow_http=settings.s3_allow_http,
    )


def log_signer(settings: Settings) -> LogSigner:
    """The instance's log key, derived from its secret key (no key file to lose)."""
    origin = settings.effective_log_origin
    key, private = log_key(settings.secret_key.get_secret_value().encode(), origin)
    return LogSigner(origin, key, private)


def _both(first: Callable[[], None], second: Callable[[], None]) -> Callable[[], None]:
    def wake() -> None:
        first()
        second()

    return wake


def create_app(
    settings: Settings | None = None,
    *,
    engine: AsyncEngine | None = None,
    clock: Clock | None = None,
    check_schema: bool = True,
) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(json=settings.json_logs)
    engine = engine or create_engine(settings.effective_database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if check_schema:
            await check_schema_current(engine)  # refuses to serve an un-migrated database
        # The other instances (NATS), or this process alone; on PostgreSQL an unreachable
        # NATS refuses to start (bus/connect.py).
        bus = await connect_bus(settings, database_is_sqlite=engine.dialect.name == "sqlite")
        app.state.bus = bus
        await app.state.live_hub.use_bus(bus)
        sweep = sweep_job(settings, app.state.staging, app.state.clip_store)
        # Before serving: what a crash left is gone before the first upload may need room.
        await sweep_at_startup(app.state.sessionmaker, sweep)
        notify = Dispatcher(settings, app.state.sessionmaker, app.state.clock.now)
        webhooks = Deliverer(settings, app.state.sessionmaker, app.state.clock.now)
        scheduler = Scheduler(
            app.state.sessionmaker,
            [
                log_job(app.state.log_signer, settings.log_interval_s),
                retention_job(
                    app.state.clip_store,
                    app.state.clock.now,
                    settings.retention_interval_minutes * 60,
                    live_only_ring_days=settings.live_only_ring_retention_days,
                ),
                sweep,
                legal_job(settings, app.state.clock.now, settings.legal_interval_s),
                coverage_job(settings, app.state.clock.now, settings.coverage_interval_s),
                modes_job(
                    app.state.sessionmaker,
                    app.state.live_hub,
                    app.state.clock.now,
                    settings.modes_interval_s,
                ),
                notify.job,
                webhooks.job,
                clip_events_job(
                    app.state.clock.now,
                    settings.events_clip_interval_s,
                    on_new=lambda: notify_wake(app.state),
                ),
            ],
        )
        app.state.scheduler = scheduler  # its jobs' names and leaderships, for tests
        app.state.notify_dispatcher = notify  # tests run its job by hand
        app.state.notify_wake = notify.waker(scheduler)
        # A new event wakes webhooks too (events/wake.py calls notify_wake only).
        app.state.webhooks_dispatcher = webhooks  # tests run its job by hand
        app.state.webhooks_wake = webhooks.waker(scheduler)
        app.state.notify_wake = _both(app.state.notify_wake, app.state.webhooks_wake)
        try:
            async with scheduler:
                yield
        finally:
            await app.state.live_hub.aclose()
            await bus.close()
            await notify.aclose()
            await webhooks.aclose()
            await engine.dispose()

    app = FastAPI(
        title="doorwarden",
        version=__version__,
        description=API_DESCRIPTION,
        lifespan=lifespan,
        # Served by our own route below, so it too passes through the policy.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = create_sessionmaker(engine)
    app.state.clock = clock or Clock()
    app.state.clip_store = clip_store(settings)
    # On S3 the staging is the bucket's, shared by every instance (clips/stagings.py).
    app.state.staging = make_staging(settings.data_dir / "staging", app.state.clip_store)
    app.state.log_signer = log_signer(settings)
    app.state.live_hub = LiveHub(
        linger_s=settings.live_linger_s, max_viewer_fragments=settings.live_viewer_queue
    )

    # The kernel's handlers cannot import storage (a layer above): the classes come in.
    storage_faults = StorageFaults(
        StorageError, StorageFull, (ObjectNotFound, InvalidKey, InvalidRange)
    )
    install_error_handlers(app, storage=storage_faults)
    document_errors(app)
    for router in (
        health_router,
        accounts_router.router,
        accounts_admin_router.router,
        households_router.router,
        legal_router.router,
        legal_requests_router.router,
        legal_review_router.router,
        legal_household_router.router,
        governance_router.router,
        audit_router.router,
        audit_log_router.router,
        devices_router.router,
        devices_settings_router.router,
        clips_router.router,
        clips_playback_router.router,
        clips_e2e_router.router,
        live_router.router,
        notify_push_router.router,
        notify_router.router,
        notify_views.router,
        transparency_router.router,
        accounts_views.router,
        accounts_account_views.router,
        accounts_admin_views.router,
        households_views.router,
        legal_views.router,
        legal_request_views.router,
        legal_request_detail_views.router,
        legal_review_views.router,
        legal_household_views.router,
        governance_views.router,
        audit_views.router,
        devices_views.router,
        devices_settings_views.router,
        clips_views.router,
        live_views.router,
        transparency_views.router,
        web_pwa.router,
        web_resident_views.router,
        modes_router.router,
        modes_views.router,
        events_router.router,
        webhooks_router.router,
        webhooks_views.router,
        keyring_router.router,
        keyring_views.router,
    ):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(
        RequestMiddleware,
        max_body_bytes=settings.max_body_bytes,
        max_upload_part_bytes=settings.max_upload_part_bytes,
        max_document_bytes=settings.legal_document_max_bytes,
        document_gate=document_gate,
        json_too_deep=strict_json.body_nested_deeper_than,
        max_json_depth=strict_json.MAX_DEPTH,
    )
    return app
