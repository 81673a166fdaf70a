"""`<state_dir>/events/`: rings waiting for the server's acknowledgement, one file each.

A press is written here (temporary name, fsync, rename, directory fsync: the same
`write_atomic` as the pairing) before anything is sent, so a ring survives a crash, a
power cut or a server that is down, and reaches the server later with the time it
happened. The file goes when the server acknowledges it (or refuses it for good). The
event's id is made here: the server deduplicates by it, so sending it twice is harmless,
and the queue may replay what it is not sure went.

The CLI writes here too when no agent runs (`doorwarden agent ring`); the next agent to
start sends what it finds.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import structlog

from doorwarden.agent.delivery.identity import TMP_PREFIX, write_atomic
from doorwarden.agent.recording.spool import fsync_dir

log = structlog.get_logger("doorwarden.agent.ring.queue")

EVENTS_DIR = "events"
Source = Literal["button", "gpio", "onvif", "mqtt", "cli"]
SOURCES: frozenset[str] = frozenset({"button", "gpio", "onvif", "mqtt", "cli"})
CAMERA_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")  # as CameraConfig.name
MAX_QUEUED = 10_000  # a button stuck for weeks must not fill the disk with files


@dataclass(frozen=True)
class RingEvent:
    """One press: `at` is the camera's clock when it happened (kept across restarts)."""

    id: str
    camera: str
    at: datetime
    source: str
    kind: str = "ring"

    @classmethod
    def new(cls, camera: str, source: str, at: datetime | None = None) -> RingEvent:
        return cls(str(uuid.uuid4()), camera, at or datetime.now(UTC), source)

    def message(self) -> dict[str, Any]:
        """The event as the server takes it (the link adds "type": "event")."""
        return {
            "id": self.id,
            "camera": self.camera,
            "kind": self.kind,
            "at": self.at.isoformat(timespec="milliseconds"),
            "source": self.source,
        }

    @classmethod
    def from_message(cls, body: object) -> RingEvent:
        """ValueError when `body` is not an event this agent wrote."""
        if not isinstance(body, dict):
            raise ValueError("not an object")
        ident, camera, at, source = (body.get(k) for k in ("id", "camera", "at", "source"))
        if not isinstance(ident, str) or not isinstance(camera, str):
            raise ValueError("id and camera must be strings")
        if str(uuid.UUID(ident)) != ident:
            raise ValueError("id is not a canonical uuid")
        if not CAMERA_RE.match(camera) or source not in SOURCES:
            raise ValueError("bad camera or source")
        if not isinstance(at, str):
            raise ValueError("at must be a string")
        moment = datetime.fromisoformat(at)
        if moment.tzinfo is None:
            raise ValueError("at has no time zone")
        return cls(ident, camera, moment, str(source), str(body.get("kind", "ring")))


class EventQueue:
    """The events directory; safe to use from several threads and processes (each file
    is written whole under a new name, and removing a missing file is not an error)."""

    def __init__(self, state_dir: Path) -> None:
        self.directory = state_dir / EVENTS_DIR

    def put(self, event: RingEvent) -> Path:
        """Durably queue `event`; OSError if the disk refuses (the caller logs it: the
        press still reaches the server while this process lives, see RingService)."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self._path(event.id)
        body = json.dumps(event.message(), sort_keys=True).encode()
        write_atomic(path, body)
        fsync_dir(self.directory)
        return path

    def pending(self) -> list[RingEvent]:
        """Every queued event, oldest press first; unreadable files are set aside
        (renamed `.bad`) rather than sent or retried for ever."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        events = []
        for name in names:
            if not name.endswith(".json") or name.startswith(TMP_PREFIX):
                continue
            path = self.directory / name
            try:
                event = RingEvent.from_message(json.loads(path.read_bytes()))
            except FileNotFoundError:
                continue  # acknowledged meanwhile
            except (ValueError, OSError) as exc:
                log.warning("ring.queue_unreadable", file=str(path), error=str(exc))
                with contextlib.suppress(OSError):
                    path.rename(path.with_suffix(".bad"))
                continue
            if path.name != f"{event.id}.json":
                continue  # not ours
            events.append(event)
        events.sort(key=lambda e: (e.at, e.id))
        return events[-MAX_QUEUED:]

    def remove(self, event_id: str) -> bool:
        """Forget an acknowledged event; False if it was not queued."""
        try:
            self._path(event_id).unlink()
        except FileNotFoundError:
            return False
        with contextlib.suppress(OSError):
            fsync_dir(self.directory)
        return True

    def recover(self) -> None:
        """Clear the temporary files of a write that a crash interrupted."""
        with contextlib.suppress(FileNotFoundError):
            for debris in self.directory.glob(f"{TMP_PREFIX}*"):
                debris.unlink(missing_ok=True)

    def _path(self, event_id: str) -> Path:
        # Never a path from elsewhere: an id is a uuid, in its one canonical spelling.
        return self.directory / f"{uuid.UUID(event_id)}.json"
