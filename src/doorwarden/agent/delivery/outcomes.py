"""What each answer of the server means for a clip and for the uploads after it.

The agent outcome table (issue 23, decision 3), decided here once as a pure function of
the HTTP status and the error code, so that it can be read, tested row by row, and
changed in one place. The uploader adds what an outcome implies (removing a replayed
clip, refreshing the device's state, the log line); the delivery loop decides when to
try again:

* `retry` -- nothing is wrong with the clip or the device: the network, a timeout, the
  server's own trouble (every 5xx, 507 storage_full included), 404, 408, 425, 429, 409
  `incomplete`, too many `wrong_offset` in a row. The whole loop backs off (exponential,
  at least the server's `Retry-After`, capped);
* `stopped` -- the device itself is refused (401, 403, a forked or broken chain, a
  signature the server does not accept): every later clip would be refused the same way;
* `live_only` -- the plan stores nothing; `replayed` -- the server verified this clip
  once and deleted it since (`clips/ingest.py` answers it only for a tombstone, and only
  verified clips are ever tombstoned), so the local copy can go;
* `held` -- final for this clip: what the camera signed does not match what it sent (its
  own data or signature is at fault), or the local copy is unreadable (`local_*`). Kept
  on disk and listed; offered again only when a person asks (`doorwarden agent retry`);
* `deferred` -- any other refusal of this one clip (a household key that changed, a
  part size, a server that does not know a field yet...): it waits on its own backoff
  (60 s doubling to 1 h) while the next clips go on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import httpx

# 422 codes that mean the camera's own data does not match its own signature.
HELD_CODES = frozenset(
    {"hash_mismatch", "chunk_tampered", "truncated", "malformed_manifest", "sequence_mismatch"}
)
LOCAL_PREFIX = "local_"  # codes the agent gives its own copy's problems
STOP_CODES_409 = frozenset({"chain_fork", "chain_broken"})
STOP_CODES_422 = frozenset({"bad_signature", "wrong_device"})
RETRIED_STATUSES = frozenset({404, 408, 425, 429})  # and every 5xx
RETRIED_409 = frozenset({"incomplete", "wrong_offset"})
RETRY_AFTER_STATUSES = frozenset({429, 503, 507})
MAX_RETRY_AFTER_S = 3600.0  # a server's Retry-After beyond this is not believed

DEFER_FIRST_S = 60.0
DEFER_MAX_S = 3600.0


class OutcomeKind(StrEnum):
    delivered = "delivered"  # verified by the server; the local copy was removed
    replayed = "replayed"  # the server had it and deleted it since; removed locally
    retry = "retry"  # network, timeout, 5xx: the same clip again after a delay
    held = "held"  # this clip's own data or signature is at fault: kept, not offered again
    deferred = "deferred"  # refused for now: this clip waits, the next ones go on
    stopped = "stopped"  # the device refused (revoked, fork ...): stop uploading
    live_only = "live_only"  # the plan stores no recordings: stop uploading and sealing
    interrupted = "interrupted"  # the agent is stopping; resumed at the next start


@dataclass(frozen=True)
class Outcome:
    kind: OutcomeKind
    sequence: int | None = None
    status: int | None = None  # the HTTP status, when the server answered
    code: str = ""  # the server's error code (or a local one: local_*)
    message: str = ""
    retry_after: float | None = None  # seconds, from the server's Retry-After


def classify(status: int, code: str) -> OutcomeKind:
    """The table above, for an answer that is not the success the request expected."""
    if status < 400:  # a success status without the expected body: a proxy, a half answer
        return OutcomeKind.retry
    if status == 401:
        return OutcomeKind.stopped
    if status == 403:
        return OutcomeKind.live_only if code == "live_only" else OutcomeKind.stopped
    if status == 409:
        if code == "replayed":
            return OutcomeKind.replayed
        if code in STOP_CODES_409:
            return OutcomeKind.stopped
        if code in RETRIED_409:
            return OutcomeKind.retry
        return OutcomeKind.deferred
    if status == 422 and code in STOP_CODES_422:
        return OutcomeKind.stopped
    if status >= 500 or status in RETRIED_STATUSES:
        return OutcomeKind.retry
    if code in HELD_CODES or code.startswith(LOCAL_PREFIX):
        return OutcomeKind.held
    return OutcomeKind.deferred


def is_held_code(code: str) -> bool:
    """Whether a refusal with this code is final for the clip (see the table)."""
    return code in HELD_CODES or code.startswith(LOCAL_PREFIX)


def retry_after(response: httpx.Response) -> float | None:
    """The server's `Retry-After` in seconds (delta form, or the error body's
    `details.retry_after`), for the statuses that send one; None otherwise."""
    if response.status_code not in RETRY_AFTER_STATUSES:
        return None
    values: list[object] = [response.headers.get("retry-after")]
    try:
        details = response.json()["error"].get("details")
        if isinstance(details, dict):
            values.append(details.get("retry_after"))
    except (ValueError, KeyError, TypeError, AttributeError):
        pass
    for value in values:
        try:
            seconds = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue  # absent, or an HTTP date: the exponential backoff alone then
        if math.isfinite(seconds) and seconds >= 0:
            return min(seconds, MAX_RETRY_AFTER_S)
    return None


def deferral_delay(attempts: int) -> float:
    """The wait before offering a deferred clip again after `attempts` refusals (>= 1)."""
    doublings = max(0, min(attempts - 1, 16))
    return float(min(DEFER_FIRST_S * (1 << doublings), DEFER_MAX_S))
