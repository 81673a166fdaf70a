"""Settings: environment (prefix DOORWARDEN_), then an optional TOML file, then defaults.

Every field carries a description; `doorwarden serve --help` and the docs are generated
from the same source. A missing or well-known secret is refused unless the instance is
explicitly in development mode, so a forgotten setting cannot ship a forgeable cookie.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_SECRET = "change-me"
CONFIG_FILE_ENV = "DOORWARDEN_CONFIG"
# Settings an operator may raise but not lower (only development mode may, for the demo).
PRIVACY_FLOORS = {
    "coverage_min_age_days": 7,
    "coverage_move_days": 7,
    "community_min_households": 5,
}
MIN_SECRET_LENGTH = 32


class SignupMode(StrEnum):
    open = "open"
    invite = "invite"


@dataclass(frozen=True)
class PasswordCost:
    """argon2id's cost for new password hashes (a stored hash carries its own)."""

    time_cost: int
    memory_kib: int
    parallelism: int


class Settings(BaseSettings):
    """Instance settings. Unknown keys are rejected so a typo never silently falls back."""

    model_config = SettingsConfigDict(
        env_prefix="DOORWARDEN_",
        extra="forbid",
        validate_default=True,
    )

    development: bool = Field(
        False,
        title="Development mode",
        description="Allows a generated secret key, plain-HTTP cookies and readable console logs. "
        "Never enable on an instance reachable by others.",
    )
    data_dir: Path = Field(
        Path("data"),
        title="Data directory",
        description="Where the default SQLite database and local clip storage live.",
    )
    database_url: str | None = Field(
        None,
        title="Database URL",
        description="SQLAlchemy async URL, e.g. postgresql+asyncpg://user@host/db. "
        "Defaults to a SQLite file doorwarden.db in the data directory.",
    )
    secret_key: SecretStr = Field(
        SecretStr(""),
        title="Secret key",
        description=f"At least {MIN_SECRET_LENGTH} random characters; signs CSRF tokens and "
        "device cookies, encrypts TOTP secrets and the household keys of standard-mode "
        "clips. Changing it signs every user out, invalidates enrolled second factors and "
        "makes stored standard-mode clips unreadable: keep it, and back it up.",
    )
    bind_host: str = Field(
        "127.0.0.1", title="Bind address", description="Address the HTTP server listens on."
    )
    bind_port: int = Field(
        8000, ge=1, le=65535, title="Bind port", description="Port the HTTP server listens on."
    )
    public_base_url: str = Field(
        "http://127.0.0.1:8000",
        title="Public base URL",
        description="How browsers reach this instance; an https URL makes cookies Secure.",
        pattern=r"^https?://[^\s/]+(/[^\s]*)?$",
    )
    push_contact: str | None = Field(
        None,
        title="Web Push contact",
        description="The VAPID 'sub' claim push services may use to reach the operator: a "
        "mailto: address or an https URL. Defaults to the public base URL.",
        pattern=r"^(mailto:[^\s@]+@[^\s@]+|https://[^\s/]+(/[^\s]*)?)$",
    )
    push_timeout_s: float = Field(
        10.0,
        gt=0,
        le=60,
        title="Web Push timeout",
        description="Seconds to wait for a push service to accept a message (connect, "
        "send and answer each) before the attempt counts as failed and is retried.",
    )
    notify_interval_s: float = Field(
        1.0,
        ge=0,
        le=60,
        title="Notification delivery interval (seconds)",
        description="How often new events, alerts and notices become notifications and due "
        "ones are sent or retried (a new event also wakes it at once). 0: never (a test "
        "runs the job).",
    )
    smtp_host: str | None = Field(
        None,
        max_length=253,
        title="SMTP host",
        description="The mail server notifications are sent through; unset: no e-mail "
        "(members who opted in see each e-mail recorded as failed, 'not configured').",
    )
    smtp_port: int = Field(
        587, ge=1, le=65535, title="SMTP port", description="465 with smtp_tls, else 587 or 25."
    )
    smtp_tls: bool = Field(
        False,
        title="SMTP over TLS",
        description="Connect with TLS from the start (implicit TLS, usually port 465).",
    )
    smtp_starttls: bool = Field(
        True,
        title="SMTP STARTTLS",
        description="Upgrade a plain connection with STARTTLS, and refuse a server that "
        "does not offer it (ignored with smtp_tls). Off only for a server on this host.",
    )
    smtp_username: str | None = Field(
        None, max_length=254, title="SMTP user", description="Sign in as this user, if set."
    )
    smtp_password: SecretStr | None = Field(
        None, title="SMTP password", description="The SMTP user's password."
    )
    smtp_from: str = Field(
        "doorwarden <doorwarden@localhost>",
        max_length=254,
        title="E-mail sender",
        description="The From address of notification e-mails.",
    )
    smtp_timeout_s: float = Field(
        15.0,
        gt=0,
        le=120,
        title="SMTP timeout",
        description="Seconds to wait for the mail server before the e-mail counts as failed "
        "and is retried.",
    )
    signup_mode: SignupMode = Field(
        SignupMode.invite,
        title="Sign-up mode",
        description="'open' lets anyone create a resident account; 'invite' needs an invite "
        "code created by an operator admin.",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        title="Trusted proxies",
        description="Client addresses of reverse proxies whose X-Forwarded-For is believed. "
        "Empty: the socket peer is the client address (throttling and audit use it).",
    )
    session_idle_minutes: int = Field(
        60 * 24 * 7,
        ge=5,
        title="Session idle timeout (minutes)",
        description="A session unused for this long is ended.",
    )
    session_max_days: int = Field(
        30,
        ge=1,
        le=365,
        title="Session lifetime (days)",
        description="A session is ended this long after sign-in, used or not.",
    )
    max_body_bytes: int = Field(
        1_048_576,
        ge=1024,
        title="Maximum request body (bytes)",
        description="Larger API and form bodies are refused with 413 before they are read.",
    )
    max_upload_part_bytes: int = Field(
        8 * 1_048_576,
        ge=1024,
        le=64 * 1_048_576,
        title="Maximum clip upload part (bytes)",
        description="Largest part of a sealed clip a camera may send in one request (the "
        "one body allowed above the general maximum).",
    )
    password_hash_time_cost: int = Field(
        3,
        ge=1,
        le=20,
        title="Password hashing: passes",
        description="argon2id passes over memory per password hash. The defaults (3 passes, "
        "64 MiB, 4 lanes) are RFC 9106's second recommended profile; OWASP's floor is 2 "
        "passes with 19 MiB. Stored hashes keep their own cost and are re-hashed at the "
        "next sign-in after a change.",
    )
    password_hash_memory_kib: int = Field(
        65536,
        ge=64,
        le=4 * 1024 * 1024,
        title="Password hashing: memory (KiB)",
        description="argon2id memory per password hash, in KiB (each sign-in needs this "
        "much for ~0.1-0.2 s). Lower only on a machine that cannot afford it.",
    )
    password_hash_parallelism: int = Field(
        4,
        ge=1,
        le=16,
        title="Password hashing: lanes",
        description="argon2id lanes (threads) per password hash.",
    )
    login_account_failures: int = Field(
        10,
        ge=3,
        le=100,
        title="Failures before an account locks",
        description="Failed sign-ins for one account, from anywhere, before it is locked.",
    )
    login_address_failures: int = Field(
        30,
        ge=3,
        le=1000,
        title="Failures before an address is blocked",
        description="Failed sign-ins from one client address, for any account, before it "
        "is blocked.",
    )
    login_window_minutes: int = Field(
        15,
        ge=1,
        title="Throttle window (minutes)",
        description="Failures older than this no longer count.",
    )
    login_lock_minutes: int = Field(
        15,
        ge=1,
        title="First lock (minutes)",
        description="Length of the first lock; each further lock doubles it, up to a day.",
    )
    storage_url: str | None = Field(
        None,
        title="Clip storage",
        description="Where sealed clips and thumbnails are kept: a directory path or "
        "file:///path, or s3://bucket for any S3-compatible store (with the s3_* settings). "
        "Defaults to the directory clips/ in the data directory.",
    )
    s3_endpoint_url: str | None = Field(
        None,
        title="S3 endpoint",
        description="The S3-compatible endpoint, e.g. https://s3.eu-west-1.amazonaws.com or "
        "a MinIO URL; empty for AWS's default.",
    )
    s3_region: str = Field("us-east-1", title="S3 region", description="The bucket's region.")
    s3_access_key_id: str | None = Field(
        None, title="S3 access key id", description="Credentials for the bucket."
    )
    s3_secret_access_key: SecretStr | None = Field(
        None, title="S3 secret access key", description="Credentials for the bucket."
    )
    nats_url: str | None = Field(
        None,
        title="NATS server",
        description="nats://host:4222 (several separated by commas) joining this server "
        "instance to the others of one deployment: live view of a camera connected to "
        "another instance, messages to agents, cache invalidation. Empty: one instance, "
        "everything in-process. On PostgreSQL an unreachable NATS stops the server at start; "
        "on SQLite (one instance by nature) it falls back to in-process with a warning.",
    )
    nats_subject_prefix: str = Field(
        "doorwarden",
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        title="NATS subject prefix",
        description="The first token of every subject this deployment uses, so several "
        "deployments (or test runs) can share one NATS server without hearing each other.",
    )
    s3_allow_http: bool = Field(
        False,
        title="S3 over plain HTTP",
        description="Allow an http:// endpoint (a store on the same host or a test).",
    )
    retention_interval_minutes: int = Field(
        60,
        ge=0,
        title="Retention interval (minutes)",
        description="How often the server deletes clips older than their household's "
        "retention (never those under a legal hold). 0: not in the server; run "
        "`doorwarden retention` from cron instead.",
    )
    live_only_ring_retention_days: int = Field(
        1,
        ge=1,
        le=365,
        title="Ring clips on live-only plans: retention (days)",
        description="A live-only plan stores no recordings, but a doorbell press still "
        "records a clip (labelled ring): how long such a clip is kept.",
    )
    live_only_ring_clips_per_hour: int = Field(
        12,
        ge=0,
        le=3600,
        title="Ring clips on live-only plans: per camera and hour",
        description="How many ring clips a camera on a live-only plan may store in an hour; "
        "beyond, its clips are refused (403 live_only) as any clip on that plan. 0: none.",
    )
    sweep_interval_s: float = Field(
        3600,
        ge=0,
        title="Sweep interval (seconds)",
        description="How often the server removes what interrupted writes left behind: "
        "temporary files in the local clip store and in upload staging, the staging of "
        "clips already verified and of uploads abandoned (see staging_abandon_days). It "
        "also runs once at start-up, before serving. 0: only at start-up.",
    )
    sweep_temp_age_s: float = Field(
        3600,
        ge=60,
        title="Temporary file age to sweep (seconds)",
        description="A temporary file (of a clip being stored, or a thumbnail being "
        "staged) is removed by the sweep once it is this old: longer than any write can "
        "take, so that no write in progress, in this process or another, loses its file.",
    )
    staging_abandon_days: int = Field(
        7,
        ge=1,
        title="Abandoned uploads (days)",
        description="An upload that received nothing for this many days is abandoned: "
        "the sweep removes its staged bytes, and the camera, which keeps its copy until "
        "the clip is verified, sends it again from the start.",
    )
    clip_view_audit_window_minutes: int = Field(
        10,
        ge=0,
        le=24 * 60,
        title="One viewing of a clip (minutes)",
        description="A player fetches one viewing in many Range requests; the first of them "
        "from one user and address writes the `clip:view` audit event, and the others "
        "within this many minutes of it belong to the same viewing. Whatever bytes a "
        "request asks for, no viewing goes unrecorded. 0: every request is its own event.",
    )
    live_linger_s: float = Field(
        10.0,
        ge=0,
        le=600,
        title="Live view linger (seconds)",
        description="How long a camera keeps streaming after its last viewer left, so a "
        "page reload does not restart the camera's stream.",
    )
    live_viewer_queue: int = Field(
        150,
        ge=2,
        le=10_000,
        title="Live view queue per viewer (fragments)",
        description="Fragments (about one per frame) waiting for one slow viewer before "
        "its backlog is dropped and it resumes at the next keyframe; other viewers and the "
        "camera are never slowed down by it.",
    )
    live_ping_s: float = Field(
        20.0,
        gt=0,
        le=600,
        title="WebSocket keep-alive (seconds)",
        description="How often the server pings each live-view connection (cameras and "
        "viewers), and how long it waits for the answer: a camera or a viewer that "
        "vanished without closing its connection (power cut, lost network) is noticed "
        "within twice this, and its viewers told the camera is offline.",
    )
    live_recheck_s: float = Field(
        30.0,
        gt=0,
        le=3600,
        title="Live view re-authorisation interval (seconds)",
        description="How often an open live view checks again that its viewer may still "
        "watch (signed in, still a member of the household); it ends when not.",
    )
    events_clip_interval_s: float = Field(
        2.0,
        ge=0,
        le=3600,
        title="Events from clips (seconds)",
        description="How often newly verified clips become person or motion events (or are "
        "linked to the ring they recorded). 0: never (a test or cron runs the job).",
    )
    modes_interval_s: float = Field(
        15.0,
        ge=0,
        le=60,
        title="Mode schedule interval (seconds)",
        description="How often households' mode schedules are applied (a switch at 07:00 "
        "reaches the cameras by 07:00 plus this). 0: never (a test runs the job).",
    )
    webhook_interval_s: float = Field(
        1.0,
        ge=0,
        le=60,
        title="Webhook delivery interval (seconds)",
        description="How often new household events become webhook deliveries and due ones "
        "are sent or retried (a ring or a test also wakes it at once). 0: never (a test "
        "runs the job).",
    )
    webhook_timeout_s: float = Field(
        10.0,
        gt=0,
        le=30,
        title="Webhook timeout",
        description="Seconds one webhook attempt may take in all (connect, send, answer) "
        "before it counts as failed and is retried.",
    )
    webhook_max_endpoints: int = Field(
        10,
        ge=1,
        le=100,
        title="Webhook endpoints per household",
        description="How many webhook endpoints one household may register.",
    )
    webhook_disable_after_hours: float = Field(
        72.0,
        gt=0,
        le=24 * 30,
        title="Disable a failing webhook after (hours)",
        description="An endpoint whose attempts have all failed for this long is turned off, "
        "and its owners see why on the Integrations page and in the household's audit trail.",
    )
    webhook_ca_file: Path | None = Field(
        None,
        title="Webhook CA bundle",
        description="A PEM file of extra certificate authorities trusted for webhook "
        "endpoints (a home's private CA), in addition to the public ones.",
    )
    webhook_resolve: dict[str, str] = Field(
        default_factory=dict,
        title="Webhook host addresses",
        description="Host name to IP address, used instead of DNS for webhook endpoints "
        "(as curl --resolve): for split-horizon DNS. The address is still checked like any "
        "DNS answer (no private address outside development).",
    )
    log_origin: str | None = Field(
        None,
        title="Audit log origin",
        description="The name of this instance's tamper-evident audit log in its signed "
        "checkpoints (C2SP tlog-checkpoint). Default: the public base URL's host and path "
        "with '/log', e.g. door.example.org/log. Verifiers pin it with the log key.",
        pattern=r"^[^\s+]+$",
        max_length=200,
    )
    log_interval_s: float = Field(
        5.0,
        ge=0,
        le=3600,
        title="Audit log append interval (seconds)",
        description="How often the server appends new audit events to the log and signs a "
        "checkpoint. 0: not in the server; run `doorwarden log append` instead.",
    )
    log_json: bool | None = Field(
        None,
        title="JSON logs",
        description="Structured JSON log lines; defaults to on outside development mode.",
    )
    coverage_h3_resolution: int = Field(
        7,
        ge=0,
        le=15,
        title="Coverage map cell size (H3 resolution)",
        description="The H3 resolution of the public coverage map's cells. 7 (about 5 km² "
        "per cell, a small town or a few city districts) keeps a cell far larger than any "
        "one street; each step up divides a cell's area by 7 (8: 0.7 km², 9: 0.1 km², "
        "10: 0.015 km², a block). Above 8 a cell approaches a few buildings and the map "
        "starts to say where cameras are. Changing it later lets anyone who kept the old "
        "map compare the two, so choose it once.",
    )
    coverage_min_cameras: int = Field(
        5,
        ge=2,
        title="Coverage map minimum cameras per cell (k)",
        description="Cells with fewer cameras are not shown on the public coverage map; "
        "their cameras count only in the instance's totals, never in a place.",
    )
    coverage_min_households: int = Field(
        3,
        ge=2,
        title="Coverage map minimum households per cell",
        description="Cells whose cameras belong to fewer households are not shown either: "
        "five cameras of one home would otherwise point at that home, and with two "
        "households each could work out the other's count.",
    )
    coverage_interval_s: float = Field(
        3600.0,
        ge=0,
        le=86_400,
        title="Coverage map publishing interval (seconds)",
        description="How often the server counts the public coverage map and publishes "
        "the snapshot every request reads (requests never count). 0: not in the server.",
    )
    coverage_min_age_days: int = Field(
        30,
        ge=0,
        title="Coverage map: days before a household counts",
        description="A household counts on the map only once it and its camera were made, "
        "and the camera delivered its first clip, at least this many days ago: anyone may "
        "sign up, so households made to order must not fill a withheld cell (at least 7; "
        "lower only in development mode, for the demo).",
    )
    coverage_move_days: int = Field(
        30,
        ge=0,
        title="Coverage map: days after a move before a household counts there",
        description="A household whose location changed counts in its new place only after "
        "this many days (in the totals meanwhile); it may move at any time (at least 7; "
        "lower only in development mode, for the demo).",
    )
    coverage_round_to: int = Field(
        5,
        ge=2,
        le=100,
        title="Coverage map rounding",
        description="Each published count is rounded to the nearest multiple of this (a "
        "shown cell to at least this): one camera coming or going does not show.",
    )
    coverage_cache_s: float = Field(
        300.0,
        ge=0,
        le=86_400,
        title="Coverage map refresh (seconds)",
        description="How long the programmes' counts and each transparency report are "
        "reused before they are counted again (anyone may ask, as often as they like). "
        "0: every request.",
    )
    map_tile_url: str | None = Field(
        None,
        title="Map tile URL",
        description="A slippy-map tile URL template for the public maps, e.g. "
        "https://tile.openstreetmap.org/{z}/{x}/{y}.png ({s}. may lead the host name). "
        "Browsers fetch tiles from it directly, so its operator sees visitors' addresses. "
        "Empty: the maps are drawn on a plain background and make no outside request.",
        pattern=r"^https?://(\{s\}\.)?[A-Za-z0-9.-]+(:\d{1,5})?/\S*$",
        max_length=500,
    )
    map_tile_attribution: str = Field(
        "",
        title="Map tile attribution",
        description="Credit shown on the map for its tiles, as plain text, e.g. "
        "'© OpenStreetMap contributors'. Most tile servers require one.",
        max_length=300,
    )

    legal_require_municipal_approval: bool = Field(
        True,
        title="Require a municipal approval",
        description="An agency may make requests only with a municipal approval on file "
        "(approving body, date, reference, use policy), as surveillance-ordinance laws "
        "require before an agency uses surveillance technology. Turn off only where no "
        "such law applies; the transparency report says which.",
    )
    warrant_max_devices: int = Field(
        10,
        ge=1,
        le=1000,
        title="Warrant: most cameras (N)",
        description="A warrant or subpoena naming more cameras than this is overbroad: "
        "the reviewer must narrow it or reject it.",
    )
    warrant_max_hours: int = Field(
        72,
        ge=1,
        le=24 * 365,
        title="Warrant: longest window (M hours)",
        description="A warrant or preservation request for a longer time window is "
        "overbroad: the reviewer must narrow it or reject it.",
    )
    emergency_max_devices: int = Field(
        3,
        ge=1,
        le=5,
        title="Emergency: most cameras",
        description="An emergency request may name at most this many cameras (5 at most: "
        "an emergency is about a few cameras, never a neighbourhood).",
    )
    emergency_max_hours: int = Field(
        24,
        ge=1,
        le=24,
        title="Emergency: longest window (hours)",
        description="An emergency request may cover at most this many hours (24 at most).",
    )
    emergency_proof_hours: int = Field(
        48,
        ge=1,
        le=24 * 30,
        title="Emergency: proof due within (hours)",
        description="After an emergency disclosure the agency must file its proof (a "
        "subsequent warrant, or the incident report) within this many hours, or the "
        "request becomes unratified and the agency is flagged publicly.",
    )
    preservation_days: int = Field(
        90,
        ge=1,
        le=90,
        title="Preservation: hold length (days)",
        description="How long a preservation request holds clips from retention and "
        "deletion (90 at most, as the law gives a preservation letter); the agency may "
        "extend it once by the same length.",
    )
    community_max_square_miles: float = Field(
        0.5,
        gt=0,
        le=0.5,
        title="Community request: largest area (square miles)",
        description="A community request may cover at most this area (0.5 at most: an "
        "operator may make it smaller, never larger).",
    )
    # Floors, not only defaults: below them a community request points at a few homes
    # (a box around one door says whether that house has a camera). An operator may raise
    # them, never lower them (issue 16 item 2; docs/legal-process.md).
    community_min_square_miles: float = Field(
        0.05,
        ge=0.05,
        le=0.5,
        title="Community request: smallest area (square miles)",
        description="A community request must cover at least this area (0.05 at least, "
        "about 360 m square: an operator may make it larger, never smaller).",
    )
    community_min_households: int = Field(
        5,
        ge=1,
        le=1000,
        title="Community request: fewest homes asked",
        description="A community request that would reach fewer homes with cameras than "
        "this is refused, the same way whatever the number (5 at least: an operator may "
        "raise it, never lower it; lower only in development mode, for the demo).",
    )
    community_max_hours: int = Field(
        12,
        ge=1,
        le=12,
        title="Community request: longest window (hours)",
        description="A community request may ask for clips of at most this many hours (12 "
        "at most).",
    )
    community_open_days: int = Field(
        14,
        ge=1,
        le=90,
        title="Community request: open for (days)",
        description="Residents may share with a community request for this many days; "
        "then it closes on its own.",
    )
    legal_document_max_bytes: int = Field(
        10 * 1_048_576,
        ge=10_000,
        le=100 * 1_048_576,
        title="Largest legal document (bytes)",
        description="Warrants, subpoenas, orders, reports and use policies are PDFs of at "
        "most this size.",
    )
    package_link_days: int = Field(
        14,
        ge=1,
        le=365,
        title="Disclosure package link lifetime (days)",
        description="An agency can download a disclosure package for this long after it "
        "was built; afterwards the download is refused (the package stays on record).",
    )
    legal_interval_s: float = Field(
        60.0,
        ge=0,
        le=3600,
        title="Legal deadlines interval (seconds)",
        description="How often the server delivers delayed notices whose non-disclosure "
        "order ended, marks unproven emergencies unratified, ends expired holds and "
        "closes community requests. 0: not in the server; run `doorwarden legal run` instead.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = os.environ.get(CONFIG_FILE_ENV)
        if config_file:
            path = Path(config_file)
            if not path.is_file():
                raise ValueError(f"{CONFIG_FILE_ENV}={config_file}: no such file")
            with path.open("rb") as fh:
                tomllib.load(fh)  # a syntax error names the file and line here
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    @field_validator("map_tile_url", mode="before")
    @classmethod
    def _tile_placeholders(cls, value: Any) -> Any:
        if value == "":  # DOORWARDEN_MAP_TILE_URL= : no tiles, as when it is unset
            return None
        if isinstance(value, str) and not all(p in value for p in ("{z}", "{x}", "{y}")):
            raise ValueError("a tile URL has {z}, {x} and {y} placeholders")
        return value

    @model_validator(mode="after")
    def _password_memory_fits_lanes(self) -> Settings:
        if self.password_hash_memory_kib < 8 * self.password_hash_parallelism:
            raise ValueError(
                "password_hash_memory_kib must be at least 8 KiB per lane "
                f"({8 * self.password_hash_parallelism} for {self.password_hash_parallelism})"
            )
        return self

    @model_validator(mode="after")
    def _privacy_floors(self) -> Settings:
        # What keeps one home from being singled out (docs/threat-model.md 2 and 4): the
        # coverage map's waits and the fewest homes a community request may reach. Only
        # a development instance (the demo's three new homes) may go below them.
        short = [name for name, floor in PRIVACY_FLOORS.items() if getattr(self, name) < floor]
        if short and not self.development:
            raise ValueError(
                "below their floors outside development mode: "
                + ", ".join(f"{name} (at least {PRIVACY_FLOORS[name]})" for name in short)
            )
        return self

    @model_validator(mode="after")
    def _refuse_weak_secret(self) -> Settings:
        secret = self.secret_key.get_secret_value()
        if self.development:
            if not secret:
                # Development only: a per-process secret (sessions end at restart).
                self.secret_key = SecretStr(os.urandom(32).hex())
            return self
        if not secret or secret == DEFAULT_SECRET:
            raise ValueError(
                "DOORWARDEN_SECRET_KEY is missing or the default; set it to a random value "
                "(python -c 'import secrets; print(secrets.token_urlsafe(48))') or enable "
                "development mode with DOORWARDEN_DEVELOPMENT=1"
            )
        if len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"DOORWARDEN_SECRET_KEY must be at least {MIN_SECRET_LENGTH} characters"
            )
        return self

    @property
    def password_cost(self) -> PasswordCost:
        return PasswordCost(
            time_cost=self.password_hash_time_cost,
            memory_kib=self.password_hash_memory_kib,
            parallelism=self.password_hash_parallelism,
        )

    @property
    def effective_log_origin(self) -> str:
        if self.log_origin:
            return self.log_origin
        parts = urlsplit(self.public_base_url)
        return f"{parts.netloc}{parts.path.rstrip('/')}/log"

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'doorwarden.db').resolve()}"

    @property
    def cookies_secure(self) -> bool:
        return self.public_base_url.startswith("https://")

    @property
    def json_logs(self) -> bool:
        return (not self.development) if self.log_json is None else self.log_json


@lru_cache
def get_settings() -> Settings:
    return Settings()


def settings_documentation() -> list[dict[str, Any]]:
    """Every setting with its environment name, default and description (for docs/CLI)."""
    rows = []
    for name, field in Settings.model_fields.items():
        default = field.default if field.default_factory is None else field.default_factory()  # type: ignore[call-arg]
        rows.append(
            {
                "env": f"DOORWARDEN_{name.upper()}",
                "title": field.title,
                "default": "" if isinstance(default, SecretStr) else default,
                "description": field.description,
            }
        )
    return rows
