"""The device health report: what the owner must see about this camera's spool.

`PUT /api/v1/device/health` (issue 23, decision 4) with the spool's free and total
bytes, what waits for upload, whether the disk is full, the held and deferred clips and
the recent evictions. The server keeps the latest per device and shows it on the
household's integrity page: a clip refused or evicted is never gone without the owner
seeing it.

When: as soon as something the owner must see changes (disk full, a held, deferred or
evicted clip: `change_key`), and with every heartbeat (the free space and the backlog
move all the time; they ride along). A change counts as told only once the server took
it: a failure (unreachable, 5xx) is logged quietly and the next delivery pass tries
again; a body the server refused (4xx) waits for the next change or heartbeat; a server
that does not know the endpoint (an older one: 404 or 405) is not asked again in this
run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import structlog

from doorwarden.agent.delivery.upload_status import UploadStatus, iso, now_utc, parse_iso
from doorwarden.agent.delivery.uploader import pending_bytes
from doorwarden.agent.recording.room import SpoolRoom, disk_usage
from doorwarden.formats.clip_files import SealedPaths

if TYPE_CHECKING:
    from doorwarden.agent.delivery.uploader import Uploader

log = structlog.get_logger("doorwarden.agent.delivery.health")

HEALTH_PATH = "/api/v1/device/health"
MAX_LISTED = 100  # held, deferred: the server's bound
MAX_EVICTED = 50
MAX_CODE = 64
MAX_MESSAGE = 300
UNSUPPORTED = frozenset({404, 405})


@dataclass(frozen=True)
class Backlog:
    """Sealed clips not yet delivered, and their size on disk."""

    clips: int
    bytes: int


def health_body(
    *,
    spool_dir: Path,
    backlog: Backlog,
    status: UploadStatus,
    room: SpoolRoom | None,
) -> dict[str, Any]:
    """The report's body, exactly as the protocol has it (unknown keys are refused)."""
    usage = disk_usage(spool_dir)
    now = now_utc()
    held = [
        {**_why(entry), "sequence": sequence, "since": _time(entry.get("since"), now)}
        for sequence, entry in sorted(status.held.items())
    ]
    deferred = [
        {
            **_why(entry),
            "sequence": sequence,
            "next_attempt": _time(entry.get("next_attempt"), now),
        }
        for sequence, entry in sorted(status.deferred.items())
    ]
    evicted = [e.to_json() for e in (room.evictions if room is not None else [])]
    return {
        "spool": {
            "free_bytes": max(0, usage.free_bytes),
            "total_bytes": max(0, usage.total_bytes),
            "pending_clips": max(0, backlog.clips),
            "pending_bytes": max(0, backlog.bytes),
            "disk_full": bool(room is not None and room.disk_full),
        },
        "held": held[:MAX_LISTED],
        "deferred": deferred[:MAX_LISTED],
        "evicted": evicted[-MAX_EVICTED:],
    }


def change_key(body: dict[str, Any]) -> str:
    """What, when it changes, is worth a report before the next heartbeat."""
    return json.dumps(
        [body["spool"]["disk_full"], body["held"], body["deferred"], body["evicted"]],
        sort_keys=True,
    )


class HealthReporter:
    """Sends the report through the uploader's client and device token."""

    def __init__(self, uploader: Uploader) -> None:
        self.uploader = uploader
        self.supported = True  # until the server says it does not know the endpoint
        self.sent = 0  # reports the server accepted in this run
        self._last_key: str | None = None

    def report_state(
        self,
        pending: list[SealedPaths],
        *,
        spool_dir: Path,
        status: UploadStatus,
        room: SpoolRoom | None,
        heartbeat: bool,
    ) -> bool:
        """Build the report from the spool's state now, and `report` it."""
        try:
            size = sum(pending_bytes(p) for p in pending)
            body = health_body(
                spool_dir=spool_dir,
                backlog=Backlog(len(pending), size),
                status=status,
                room=room,
            )
        except OSError as exc:
            log.info("health.unavailable", error=str(exc))
            return False
        return self.report(body, heartbeat=heartbeat)

    def report(self, body: dict[str, Any], *, heartbeat: bool) -> bool:
        """Send `body` if it changed since the last accepted report, or on a heartbeat;
        True when the server accepted it now."""
        if not self.supported:
            return False
        key = change_key(body)
        if not heartbeat and key == self._last_key:
            return False  # the server has it already
        try:
            response = self.uploader.device_request(
                "PUT",
                HEALTH_PATH,
                content=json.dumps(body).encode(),
                headers={"content-type": "application/json"},
            )
        except httpx.RequestError as exc:
            log.info("health.send_failed", error=str(exc) or type(exc).__name__)
            return False
        if response.is_success:
            # Remembered only once accepted: a change that failed to go (the server was
            # unreachable) goes with the next pass, not a heartbeat later.
            self._last_key = key
            self.sent += 1
            return True
        if response.status_code in UNSUPPORTED:
            self.supported = False
            log.info(
                "health.unsupported",
                status=response.status_code,
                effect="this server does not take health reports; not sent again in this run",
            )
            return False
        if response.status_code < 500:
            # Refused as it is: the same body is not sent again until it changes or
            # the heartbeat comes. A 5xx is the server's trouble: the next pass retries.
            self._last_key = key
        log.info("health.refused", status=response.status_code, answer=response.text[:200])
        return False


def _why(entry: dict[str, Any]) -> dict[str, str]:
    return {
        # The server takes a non-empty code: an older status file's entry may lack one.
        "code": (str(entry.get("code") or "") or "unknown")[:MAX_CODE],
        "message": str(entry.get("message", ""))[:MAX_MESSAGE],
    }


def _time(value: object, default: datetime) -> str:
    return iso(parse_iso(value) or default)
