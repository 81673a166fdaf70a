"""`<state_dir>/upload-status.json`: what `doorwarden agent status` and the health report
say about uploads. Written by the delivery thread when something changes.

* `stopped` -- why uploading stopped (the device was refused, a live-only plan);
* `retrying` -- since when the server is unreachable or failing;
* `held` -- clips refused for good because their own data or signature is at fault, or
  the local copy is unreadable: kept on disk, not offered again until a person asks
  (`doorwarden agent retry SEQ|--all`, which leaves a request in `upload-retry.json`
  that the running agent, or the next one, takes);
* `deferred` -- clips refused for another reason, each offered again on its own backoff
  (`next_attempt`, wall-clock so that it survives a restart);
* `last_delivered`.

Older versions kept one `refused` map and never offered those clips again, even when
the refusal was the server's fault. Loading migrates it: entries whose code is a held
code stay held, every other one becomes deferred and due at once.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from doorwarden.agent.delivery.identity import write_atomic
from doorwarden.agent.delivery.outcomes import Outcome, OutcomeKind, deferral_delay, is_held_code
from doorwarden.agent.recording.room import ROOM_FILE

log = structlog.get_logger("doorwarden.agent.delivery.upload_status")

STATUS_FILE = "upload-status.json"
RETRY_FILE = "upload-retry.json"


def now_utc() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def parse_iso(value: object) -> datetime | None:
    """An ISO-8601 time with a zone from a status file; None if it is not one."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


@dataclass
class UploadStatus:
    device_id: str
    stopped: dict[str, str] | None = None  # {"code", "message", "since"}
    held: dict[int, dict[str, str]] = field(default_factory=dict)  # {"code","message","since"}
    # {"code", "message", "since", "attempts": int, "next_attempt": ISO}
    deferred: dict[int, dict[str, Any]] = field(default_factory=dict)
    retrying: dict[str, str] | None = None  # {"error", "since"}: the server is unreachable
    last_delivered: dict[str, Any] | None = None  # {"sequence", "at"}

    @property
    def refused(self) -> dict[int, dict[str, Any]]:
        """Held and deferred clips together: the clips the server refused, kept on disk."""
        return {**self.deferred, **self.held}

    @classmethod
    def load(cls, state_dir: Path, device_id: str) -> UploadStatus:
        """The saved status of this device; a fresh one if absent, unreadable or another
        pairing's. An older file's `refused` map is migrated (see the module docstring)."""
        try:
            body = json.loads((state_dir / STATUS_FILE).read_bytes())
            if not isinstance(body, dict) or body.get("device_id") != device_id:
                return cls(device_id)
            status = cls(
                device_id,
                stopped=body.get("stopped"),
                held={int(k): v for k, v in (body.get("held") or {}).items()},
                deferred={int(k): v for k, v in (body.get("deferred") or {}).items()},
                retrying=body.get("retrying"),
                last_delivered=body.get("last_delivered"),
            )
            status._migrate(body.get("refused") or {})
            return status
        except (OSError, ValueError, TypeError, AttributeError):
            return cls(device_id)

    def _migrate(self, refused: dict[str, Any]) -> None:
        if not refused:
            return
        now = iso(now_utc())
        for key, entry in refused.items():
            sequence = int(key)
            code = str(entry.get("code", ""))
            message = str(entry.get("message", ""))
            since = str(entry.get("at") or now)
            if is_held_code(code):
                self.held[sequence] = {"code": code, "message": message, "since": since}
            else:
                self.deferred[sequence] = {
                    "code": code,
                    "message": message,
                    "since": since,
                    "attempts": 0,
                    "next_attempt": now,  # due at once: an older agent refused it for good
                }
        log.info(
            "upload.status_migrated",
            held=sorted(s for s in self.held if str(s) in refused),
            deferred=sorted(s for s in self.deferred if str(s) in refused),
            hint="held clips go again with: doorwarden agent retry --all",
        )

    def save(self, state_dir: Path) -> None:
        body = {
            "device_id": self.device_id,
            "stopped": self.stopped,
            "held": {str(k): v for k, v in sorted(self.held.items())},
            "deferred": {str(k): v for k, v in sorted(self.deferred.items())},
            "retrying": self.retrying,
            "last_delivered": self.last_delivered,
        }
        write_atomic(state_dir / STATUS_FILE, json.dumps(body, indent=1).encode())

    @staticmethod
    def clear(state_dir: Path) -> None:
        """A new pairing: the previous one's troubles, retry requests and evictions (its
        sequence numbers mean nothing to the new device) go."""
        for name in (STATUS_FILE, RETRY_FILE, ROOM_FILE):
            (state_dir / name).unlink(missing_ok=True)

    # -- what the delivery loop asks -----------------------------------------------------

    def waiting(self, sequence: int, now: datetime | None = None) -> bool:
        """Whether this clip must not be offered now: held, or deferred and not yet due."""
        if sequence in self.held:
            return True
        entry = self.deferred.get(sequence)
        if entry is None:
            return False
        due = parse_iso(entry.get("next_attempt"))
        return due is not None and due > (now or now_utc())

    def next_due(self) -> datetime | None:
        """When the earliest deferred clip is due again."""
        times = [parse_iso(e.get("next_attempt")) for e in self.deferred.values()]
        known = [t for t in times if t is not None]
        return min(known) if known else None

    def note(self, outcome: Outcome, now: datetime | None = None) -> bool:
        """Record an outcome; True when the status changed (and should be saved)."""
        moment = now or now_utc()
        before = self._snapshot()
        sequence = outcome.sequence
        if outcome.kind in (OutcomeKind.delivered, OutcomeKind.replayed):
            self.stopped = self.retrying = None
            self.last_delivered = {"sequence": sequence, "at": iso(moment)}
            self.forget([sequence] if sequence is not None else [])
        elif outcome.kind is OutcomeKind.retry and self.retrying is None:
            self.retrying = {"error": outcome.message or outcome.code, "since": iso(moment)}
        elif outcome.kind is OutcomeKind.held and sequence is not None:
            self.deferred.pop(sequence, None)
            self.held[sequence] = {
                "code": outcome.code,
                "message": outcome.message,
                "since": iso(moment),
            }
        elif outcome.kind is OutcomeKind.deferred and sequence is not None:
            previous = self.deferred.get(sequence) or {}
            attempts = int(previous.get("attempts", 0)) + 1
            self.deferred[sequence] = {
                "code": outcome.code,
                "message": outcome.message,
                "since": previous.get("since") or iso(moment),
                "attempts": attempts,
                "next_attempt": iso(moment + timedelta(seconds=deferral_delay(attempts))),
            }
        elif outcome.kind in (OutcomeKind.stopped, OutcomeKind.live_only):
            self.retrying = None
            self.stopped = {"code": outcome.code, "message": outcome.message, "since": iso(moment)}
        return self._snapshot() != before

    def forget(self, sequences: list[int]) -> bool:
        """Drop clips that left the spool (delivered, evicted); True if any was listed."""
        changed = False
        for sequence in sequences:
            changed |= self.held.pop(sequence, None) is not None
            changed |= self.deferred.pop(sequence, None) is not None
        return changed

    def release(self, sequences: set[int] | None) -> list[int]:
        """Offer held and deferred clips again at once (`agent retry`); None: all of
        them. The clips released."""
        chosen = set(self.refused) if sequences is None else sequences & set(self.refused)
        for sequence in chosen:
            self.held.pop(sequence, None)
            self.deferred.pop(sequence, None)
        return sorted(chosen)

    def _snapshot(self) -> str:
        return json.dumps(
            [self.stopped, self.held, self.deferred, self.retrying, self.last_delivered],
            sort_keys=True,
            default=str,
        )


# -- `doorwarden agent retry`: a request the delivery loop takes -------------------------


def request_retry(state_dir: Path, sequences: list[int] | None) -> None:
    """Ask the agent to offer these held or deferred clips again (None: all of them).
    Merged with a request not yet taken; the running agent takes it at its next pass,
    a stopped one at its next start."""
    everything, wanted = read_retry_request(state_dir)
    if sequences is None:
        everything = True
    else:
        wanted |= set(sequences)
    body = {"all": everything, "sequences": sorted(wanted)}
    write_atomic(state_dir / RETRY_FILE, json.dumps(body).encode())


def read_retry_request(state_dir: Path) -> tuple[bool, set[int]]:
    """(all, sequences) of a pending request; (False, empty) when there is none."""
    try:
        body = json.loads((state_dir / RETRY_FILE).read_bytes())
        return bool(body.get("all")), {int(s) for s in body.get("sequences") or []}
    except (OSError, ValueError, TypeError, AttributeError):
        return False, set()


def take_retry_request(state_dir: Path) -> tuple[bool, set[int]] | None:
    """A pending request (all, sequences), removed; None when there is none."""
    path = state_dir / RETRY_FILE
    if not path.exists():
        return None
    request = read_retry_request(state_dir)
    with contextlib.suppress(OSError):
        path.unlink()
    return request
