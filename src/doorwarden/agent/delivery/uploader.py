"""Delivering sealed clips to the server, each exactly once (docs/clip-pipeline.md).

One clip is delivered by: PUT the signed manifest (the answer says where to resume, or
that the clip is already verified), PUT the sealed clip's bytes from that offset in parts
with `Content-Range`, PUT the sealed thumbnail, POST complete. Why every recorded clip
ends up on the server exactly once, whatever crashes or network failures happen:

* **at least once** -- a sealed clip leaves the spool (`SealedSpool.remove`) only after
  the server answered `verified` for it, or `replayed` (it held the clip and deleted it
  since). Every other answer, an exception, a kill -9 at any instant leave it on disk,
  and it is offered again later (after a restart too: the sealed spool is durable);
* **at most once** -- the server keys clips by (device, sequence number), and the
  sealed spool gives each recorded clip one number, once (sealer.py). Offering a manifest
  again is idempotent: the same manifest answers with the resume offset, or `verified`
  when the server already stored it (the agent died between the server's commit and
  its own delete). A second copy can never be stored: a different manifest under a held
  number is a fork, refused;
* **resumable** -- the server's count of staged bytes is the resume offset, read from the
  offer; if a part of an earlier attempt landed after all, `409 wrong_offset` carries
  the server's offset and sending resyncs to it. Files are read one part at a time: a
  clip is never held in memory whole.

What each answer means is the outcome table of `outcomes.py` (retry, stopped,
live_only, replayed, held, deferred); this module adds what an outcome implies (the log
line, removing a replayed clip, fetching the device's state again). Evidence is never
deleted because the server refused it: a held or deferred clip stays in the spool.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
from collections.abc import Mapping
from typing import Any

import httpx
import structlog

from doorwarden import __version__
from doorwarden.agent.delivery.identity import DeviceIdentity, IdentityStore
from doorwarden.agent.delivery.members import MemberSetRefused, checked_state
from doorwarden.agent.delivery.outcomes import Outcome, OutcomeKind, classify, retry_after
from doorwarden.agent.delivery.sealer import SealedSpool
from doorwarden.agent.delivery.upload_status import STATUS_FILE, UploadStatus
from doorwarden.crypto.errors import MalformedError
from doorwarden.crypto.manifest import SignedManifest
from doorwarden.formats.clip_files import MAX_MANIFEST_BYTES, SealedPaths

log = structlog.get_logger("doorwarden.agent.delivery.uploader")

DEVICE_PATH = "/api/v1/device"
CLIPS_PATH = "/api/v1/device/clips"
MAX_RESYNCS = 8  # wrong_offset answers in a row before the attempt is retried later
# Re-exported: callers (cli, tests) import these from here, as before the split.
__all__ = ["STATUS_FILE", "Outcome", "OutcomeKind", "ServerRefused", "UploadStatus", "Uploader"]


class ServerRefused(Exception):
    """A device call (`Uploader.refresh`) answered with an error; `outcome` classifies it."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.message or outcome.code)
        self.outcome = outcome


class _Done(Exception):
    """Control flow: unwinds an upload with its outcome."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.kind)
        self.outcome = outcome


def http_client(timeout_s: float = 30.0) -> httpx.Client:
    """The agent's HTTP client: certificate checks on (SSL_CERT_FILE names a private CA),
    no redirects (a redirect would carry the device token elsewhere)."""
    return httpx.Client(
        timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
        headers={"user-agent": f"doorwarden-agent/{__version__}"},
        follow_redirects=False,
    )


def error_of(response: httpx.Response) -> tuple[str, str, dict[str, Any]]:
    """(code, message, details) of an error answer in the API's one error shape."""
    try:
        error = response.json()["error"]
        details = error.get("details")
        return (
            str(error["code"]),
            str(error["message"]),
            details if isinstance(details, dict) else {},
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return f"http_{response.status_code}", response.text[:200], {}


def _smaller_limit(status: int, details: Mapping[str, Any], sent: int) -> bool:
    limit = details.get("max_bytes")
    return status == 413 and isinstance(limit, int) and 0 < limit < sent


class Uploader:
    """Uploads sealed clips from `spool` for the device `identity` over `client`.

    `store`, when given, receives the identity as `refresh()` updates it. `stop`, when
    set, interrupts an upload between two requests (the clip is resumed later).
    """

    def __init__(
        self,
        identity: DeviceIdentity,
        spool: SealedSpool,
        client: httpx.Client,
        part_bytes: int = 512 * 1024,
        *,
        store: IdentityStore | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        if part_bytes <= 0:
            raise ValueError("part_bytes must be positive")
        self.identity = identity
        self.spool = spool
        self.client = client
        self.part_bytes = part_bytes
        self.store = store
        self.stop = stop or threading.Event()
        # When refresh() last verified the server's signed member set (time.monotonic);
        # None: not in this process. The worker refreshes before sealing when it is old.
        self.members_checked_at: float | None = None

    # -- the device's own state ------------------------------------------------------------

    def refresh(self) -> DeviceIdentity:
        """GET /api/v1/device: the plan, the sealing mode and the recipients' keys now;
        saved when they changed. Raises ServerRefused, or httpx.RequestError."""
        response = self._request("GET", DEVICE_PATH)
        if response.status_code != 200:
            raise ServerRefused(self._classify(response, None))
        try:
            body = response.json()
            checked = checked_state(
                body,
                device_id=self.identity.device_id,
                pinned=self.identity.settings_key,
                held_issued_at=self.identity.member_set_issued_at,
            )
            updated = DeviceIdentity.from_json(
                {**self.identity.to_json(), **checked.fields, "plan": body["plan"]}
            )
        except MemberSetRefused as exc:
            # Nothing of this answer is used: the camera keeps sealing to the set it holds.
            log.error("upload.member_set_refused", error=str(exc))
            raise ServerRefused(
                Outcome(OutcomeKind.retry, status=200, code="bad_member_set", message=str(exc))
            ) from None
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ServerRefused(
                Outcome(OutcomeKind.retry, status=200, code="bad_answer", message=str(exc))
            ) from None
        self.members_checked_at = time.monotonic()
        # Every answer's set is issued anew: only a change of something else is news
        # (and a write to device.json); the newer issue time is kept in memory either way.
        issued = self.identity.member_set_issued_at
        if dataclasses.replace(updated, member_set_issued_at=issued) != self.identity:
            log.info(
                "upload.identity_refreshed",
                plan=updated.plan.kind,
                mode=updated.mode,
                recipients=[k for k, _ in updated.recipients],
            )
            if self.store is not None:
                self.store.save(updated)
        self.identity = updated
        return updated

    # -- one clip ------------------------------------------------------------------------

    def upload_one(self, paths: SealedPaths) -> Outcome:
        """Deliver one sealed clip; see the module docstring for what each outcome means.
        The local copy is removed only on `delivered` and `replayed`."""
        try:
            return self._upload(paths)
        except _Done as done:
            return done.outcome
        except httpx.RequestError as exc:
            reason = str(exc) or type(exc).__name__
            log.warning("upload.retry", sequence=paths.sequence, error=reason)
            return Outcome(OutcomeKind.retry, paths.sequence, code="network", message=reason)
        except (ValueError, KeyError, TypeError) as exc:
            # A success status without the expected body: a proxy's page, a half answer.
            log.warning("upload.retry", sequence=paths.sequence, error=f"bad answer: {exc}")
            return Outcome(OutcomeKind.retry, paths.sequence, code="bad_answer", message=str(exc))
        except OSError as exc:
            log.warning("upload.retry", sequence=paths.sequence, error=f"local I/O: {exc}")
            return Outcome(OutcomeKind.retry, paths.sequence, code="local_io", message=str(exc))

    def _upload(self, paths: SealedPaths) -> Outcome:
        sequence = paths.sequence
        raw, signed = self._local_manifest(paths)
        manifest = signed.manifest
        base = f"{CLIPS_PATH}/{sequence}"
        offered = self._request("PUT", base, content=raw)
        if offered.status_code not in (200, 201):
            raise _Done(self._classify(offered, sequence))
        state = offered.json()
        if state.get("status") == "verified":
            return self._delivered(sequence, manifest.ciphertext_size, resumed_from=None)
        received = int(state["received"])
        if received:
            log.info(
                "upload.resumed",
                sequence=sequence,
                received=received,
                total=manifest.ciphertext_size,
            )
        self._send_data(paths, base, received, manifest.ciphertext_size)
        if manifest.thumbnail_size:
            thumbnail = self._local_thumbnail(paths, manifest.thumbnail_size)
            sent = self._request("PUT", f"{base}/thumbnail", content=thumbnail)
            if sent.status_code != 204:
                raise _Done(self._classify(sent, sequence))
        self._check_stop(sequence)
        done = self._request("POST", f"{base}/complete")
        if done.status_code != 200 or done.json().get("status") != "verified":
            raise _Done(self._classify(done, sequence))
        return self._delivered(sequence, manifest.ciphertext_size, resumed_from=received)

    def _send_data(self, paths: SealedPaths, base: str, received: int, total: int) -> None:
        """The sealed clip from `received` to its end, one part per request."""
        resyncs = 0
        with paths.clip.open("rb") as f:
            while received < total:
                self._check_stop(paths.sequence)
                f.seek(received)
                part = f.read(min(self.part_bytes, total - received))
                if not part:
                    raise _Done(self._local_refusal(paths, "local_truncated", "shorter on disk"))
                end = received + len(part) - 1
                response = self._request(
                    "PUT",
                    f"{base}/data",
                    content=part,
                    headers={"content-range": f"bytes {received}-{end}/{total}"},
                )
                code, _, details = error_of(response) if response.is_error else ("", "", {})
                if response.status_code == 200:
                    received, resyncs = int(response.json()["received"]), 0
                elif code == "wrong_offset" and isinstance(details.get("received"), int):
                    # A part of an earlier attempt (or of a request we gave up on) landed
                    # after all: continue from where the server is.
                    resyncs += 1
                    if resyncs > MAX_RESYNCS:
                        raise _Done(Outcome(OutcomeKind.retry, paths.sequence, 409, code))
                    log.info(
                        "upload.resync",
                        sequence=paths.sequence,
                        sent_from=received,
                        server_has=details["received"],
                    )
                    received = int(details["received"])
                elif _smaller_limit(response.status_code, details, len(part)):
                    # This server takes smaller parts than configured: use its limit.
                    self.part_bytes = int(details["max_bytes"])
                    log.warning("upload.part_size_reduced", part_bytes=self.part_bytes)
                else:
                    raise _Done(self._classify(response, paths.sequence))

    def _delivered(self, sequence: int, size: int, *, resumed_from: int | None) -> Outcome:
        # The only place (with `replayed`) where a sealed clip leaves the agent's disk.
        self.spool.remove(sequence)
        log.info(
            "upload.delivered",
            sequence=sequence,
            bytes=size,
            already_verified=resumed_from is None,
            resumed_from=resumed_from or 0,
        )
        return Outcome(OutcomeKind.delivered, sequence)

    # -- classifying answers -------------------------------------------------------------

    def _classify(self, response: httpx.Response, sequence: int | None) -> Outcome:
        """What an error answer means for this clip and for the uploads after it: the
        table is `outcomes.classify`; here, what each outcome implies and its log line."""
        status = response.status_code
        code, message, _ = error_of(response)
        kind = classify(status, code)
        if kind is OutcomeKind.replayed and sequence is None:
            kind = OutcomeKind.retry  # not about a clip (cannot happen): try again later
        wait = retry_after(response) if kind is OutcomeKind.retry else None
        if kind is OutcomeKind.retry:
            log.warning(
                "upload.retry",
                sequence=sequence,
                status=status,
                code=code if status >= 400 else "bad_answer",
                retry_after=wait,
            )
        elif kind is OutcomeKind.live_only:
            log.warning(
                "upload.live_only",
                message=message,
                effect="clips are no longer sealed or uploaded; they stay in the spool",
            )
            self._refresh_quietly()
        elif kind is OutcomeKind.replayed and sequence is not None:
            # The server verified this clip once and deleted it since (retention, the
            # owner): only verified clips are ever tombstoned, so it is safe to let go.
            self.spool.remove(sequence)
            log.warning("upload.replayed", sequence=sequence, message=message)
        elif kind is OutcomeKind.stopped:
            self._log_stopped(status, code, message, sequence)
        elif kind is OutcomeKind.held:
            log.error(
                "upload.refused",
                outcome="held",
                sequence=sequence,
                status=status,
                code=code,
                message=message,
                kept="the sealed clip stays in the spool; `doorwarden agent retry` offers it again",
            )
        else:  # deferred
            if code == "missing_recipient":
                self._refresh_quietly()  # the household key changed: new clips use the new one
            log.warning(
                "upload.deferred",
                sequence=sequence,
                status=status,
                code=code,
                message=message,
                kept="the sealed clip stays in the spool and is offered again later",
            )
        return Outcome(kind, sequence, status, code, message, wait)

    def _log_stopped(self, status: int, code: str, message: str, sequence: int | None) -> None:
        if status == 401 and code == "device_revoked":
            log.error("upload.revoked", message=message)
        elif status == 401:
            log.error("upload.unauthorized", code=code, message=message, hint="pair again")
        elif status == 403:
            log.error("upload.forbidden", sequence=sequence, code=code, message=message)
        else:
            # Every later clip links to this one (or is signed by the same key): they would
            # all be refused. A fork means another agent signs with this identity (a copied
            # state directory): a person must look before anything else is sent.
            log.error(
                "upload.chain_refused",
                sequence=sequence,
                status=status,
                code=code,
                message=message,
                hint="another agent may use this identity; pair again",
            )

    def _local_refusal(self, paths: SealedPaths, code: str, message: str) -> Outcome:
        if not paths.manifest.exists():
            # Evicted for room while it was being sent (spool.evicted says so): nothing
            # is wrong with it; the delivery loop goes on with the next clip.
            log.info("upload.gone", sequence=paths.sequence, reason="evicted meanwhile")
            return Outcome(OutcomeKind.interrupted, paths.sequence, None, "local_gone", message)
        log.error("upload.local_problem", sequence=paths.sequence, code=code, message=message)
        return Outcome(OutcomeKind.held, paths.sequence, None, code, message)

    def _refresh_quietly(self) -> None:
        try:
            self.refresh()
        except (ServerRefused, httpx.RequestError) as exc:
            log.warning("upload.refresh_failed", error=str(exc) or type(exc).__name__)

    # -- plumbing ------------------------------------------------------------------------

    def _check_stop(self, sequence: int) -> None:
        if self.stop.is_set():
            raise _Done(Outcome(OutcomeKind.interrupted, sequence))

    def device_request(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """A request to the server as this device (the health report uses it)."""
        return self._request(method, path, content=content, headers=headers)

    def _request(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        return self.client.request(
            method,
            self.identity.server.rstrip("/") + path,
            content=content,
            headers={**(headers or {}), "authorization": f"Bearer {self.identity.token}"},
        )

    def _local_manifest(self, paths: SealedPaths) -> tuple[bytes, SignedManifest]:
        try:
            with paths.manifest.open("rb") as f:
                raw = f.read(MAX_MANIFEST_BYTES + 1)
            signed = SignedManifest.parse(json.loads(raw))
            if len(raw) > MAX_MANIFEST_BYTES or signed.manifest.sequence != paths.sequence:
                raise MalformedError("not the manifest of this sequence number")
            size = paths.clip.stat().st_size
        except (OSError, ValueError, MalformedError) as exc:
            raise _Done(self._local_refusal(paths, "local_unreadable", str(exc))) from None
        if size != signed.manifest.ciphertext_size:
            raise _Done(
                self._local_refusal(
                    paths,
                    "local_size_mismatch",
                    f"{paths.clip.name} is {size} bytes, the manifest says "
                    f"{signed.manifest.ciphertext_size}",
                )
            )
        return raw, signed

    def _local_thumbnail(self, paths: SealedPaths, size: int) -> bytes:
        try:
            with paths.thumbnail.open("rb") as f:
                data = f.read(size + 1)  # the manifest bounds it: never more than that
        except OSError as exc:
            raise _Done(self._local_refusal(paths, "local_unreadable", str(exc))) from None
        if len(data) != size:
            raise _Done(self._local_refusal(paths, "local_size_mismatch", paths.thumbnail.name))
        return data


def pending_bytes(paths: SealedPaths) -> int:
    total = 0
    for path in (paths.manifest, paths.clip, paths.thumbnail):
        try:
            total += os.stat(path).st_size
        except FileNotFoundError:
            continue
    return total
