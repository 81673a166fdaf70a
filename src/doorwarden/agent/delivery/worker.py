"""Sealing and uploading in the background of `doorwarden agent run` (once paired).

One thread does both, so sealing, eviction and uploads never race each other (the
sealed spool's lock would make them safe; one thread makes them simple):

* at start: `SealedSpool.recover` (what a crash left: debris, the chain head, plain
  entries already sealed), then GET /api/v1/device, since the plan or the household's key
  may have changed while the agent was off, and a revoked camera learns it here;
* each pass: seal every plain clip, oldest first -> `enforce_limit` (evictions are
  logged by the sealer, and the server alerts the owner to the gap) -> upload the sealed
  clips, oldest first. A pass runs when a camera commits a clip (`notify`, CameraJob's
  `on_clip`), every `poll_s` seconds otherwise, and when a backoff delay has passed.

Exactly once is the uploader's and the sealer's business (their docstrings argue it);
this loop only decides when to try and when to stop trying:

* a network error, a timeout or a 5xx: the same clip again after an exponential backoff,
  reset by the next delivery;
* the server refused one clip for good: it stays on disk, is listed by `agent status`
  and is not offered again under this pairing, and the next clip goes. Not again: it
  would raise the same alert for the owner each time, and once a later clip is in, the
  server answers an earlier one it never stored with `replayed`, which the uploader
  takes as "held and deleted since" and removes: a refused clip must never get there;
* the device refused (revoked, a forked or broken chain, an unknown key) or a plan that
  stores nothing: no more uploads and no more sealing in this process; new clips stay in
  the plain spool, as when the camera is not paired, so that they are not sealed for a
  pairing that can no longer deliver them. A live-only plan is checked again every
  `recheck_s`, and uploads resume when it changes.

Stopping (`stop`) interrupts an upload between two requests, and gives up on a request
in flight after `timeout_s` (the thread is a daemon: the process may exit under it).
Nothing is lost: the server resumes from its offset at the next start. `finish` (for
`run --once`) delivers everything pending, then stops.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import httpx
import structlog

from doorwarden.agent.capture.rtsp import Backoff
from doorwarden.agent.config.models import UploadConfig
from doorwarden.agent.delivery.identity import DeviceIdentity, IdentityStore
from doorwarden.agent.delivery.sealer import SealedSpool, SealedSpoolError, SealRecovery
from doorwarden.agent.delivery.uploader import (
    Outcome,
    OutcomeKind,
    ServerRefused,
    Uploader,
    UploadStatus,
    http_client,
)
from doorwarden.agent.recording.spool import Spool

log = structlog.get_logger("doorwarden.agent.delivery.worker")

LIVE_ONLY_MESSAGE = "This household's plan stores no recordings (live view only)."


@dataclass(frozen=True)
class Backlog:
    plain: int  # clips not sealed yet
    sealed: int  # sealed clips waiting for upload
    refused: int  # sealed clips the server refused, kept on disk


class Delivery:
    """Seals and uploads the clips of `spool` for the paired device in `store`."""

    def __init__(
        self,
        spool: Spool,
        store: IdentityStore,
        upload: UploadConfig,
        *,
        identity: DeviceIdentity | None = None,
        client: httpx.Client | None = None,
        poll_s: float = 5.0,
        recheck_s: float = 300.0,
        heartbeat_s: float = 60.0,
    ) -> None:
        identity = identity or store.load()
        if identity is None:
            raise ValueError(f"this agent is not paired ({store.identity_path} is missing)")
        self.spool = spool
        self.store = store
        self.poll_s = poll_s
        self.recheck_s = recheck_s
        self.heartbeat_s = heartbeat_s
        self._heartbeat_at = time.monotonic() + heartbeat_s
        self.sealed = SealedSpool(
            spool.directory, identity, store.signing_key(), max_bytes=upload.max_spool_bytes
        )
        self._owns_client = client is None
        self.client = client or http_client(upload.timeout_s)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._draining = threading.Event()
        self.uploader = Uploader(
            identity, self.sealed, self.client, upload.part_bytes, store=store, stop=self._stop
        )
        self.status = UploadStatus.load(store.state_dir, identity.device_id)
        self.backoff = Backoff(upload.backoff_initial_s, upload.backoff_max_s)
        self.delivered = 0  # clips the server verified during this run
        self.blocked: Outcome | None = None  # why uploading stopped, if it did
        self.drained = False  # finish() found nothing left to deliver
        self._sealing = True
        self._retry_at = 0.0
        self._recheck_at = 0.0
        self._quiet = False  # the last pass found nothing to seal or send
        self._recovered: SealRecovery | None = None
        self._thread: threading.Thread | None = None

    @property
    def identity(self) -> DeviceIdentity:
        return self.uploader.identity

    # -- life cycle ----------------------------------------------------------------------

    def recover(self) -> SealRecovery:
        """Crash recovery of the sealed spool; before anything else (start does it)."""
        if self._recovered is None:
            self._recovered = self.sealed.recover(self.spool)
        return self._recovered

    def start(self) -> None:
        self.recover()
        self._thread = threading.Thread(target=self._run, name="doorwarden-delivery", daemon=True)
        self._thread.start()

    def notify(self, *_: object) -> None:
        """A clip was committed to the plain spool: seal and send it soon."""
        self._wake.set()

    def stop(self, timeout_s: float = 10.0) -> bool:
        """Stop after the request in flight (abandoned after `timeout_s`); True if the
        thread ended in time."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
            if thread.is_alive():
                log.warning("delivery.abandoned", reason="a request did not end in time")
                return False
        if self._owns_client:
            self.client.close()
        return True

    def finish(self, timeout_s: float, abort: threading.Event | None = None) -> bool:
        """Deliver everything pending (for `run --once`), then stop. True when nothing
        is left to deliver; False on timeout, `abort`, or when uploading stopped."""
        self._draining.set()
        self._wake.set()
        deadline = time.monotonic() + timeout_s
        thread = self._thread
        while thread is not None and thread.is_alive() and time.monotonic() < deadline:
            if abort is not None and abort.is_set():
                break
            thread.join(0.1)
        self.stop()
        return self.drained

    def backlog(self) -> Backlog:
        pending = [p.sequence for p in self.sealed.pending()]
        refused = sum(1 for s in pending if s in self.status.refused)
        return Backlog(len(self.spool.entries()), len(pending) - refused, refused)

    # -- the loop ------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._contact()
        except Exception:  # a bug (or a full disk) must not end deliveries for good
            log.exception("delivery.failed")
        while not self._stop.is_set():
            try:
                delay = self.step()
            except Exception:
                log.exception("delivery.failed")
                self._quiet = False
                delay = self.backoff.next_delay()
            if self._draining.is_set() and (self._quiet or self.blocked is not None):
                self.drained = self._quiet and self.blocked is None
                break
            if self._wake.wait(max(0.0, delay)):
                self._wake.clear()

    def _contact(self) -> None:
        """First contact: the plan, the recipients, whether this camera is still paired."""
        try:
            self._adopt(self.uploader.refresh())
        except ServerRefused as refused:
            if refused.outcome.kind in (OutcomeKind.stopped, OutcomeKind.live_only):
                self._block(refused.outcome)
        except httpx.RequestError as exc:
            log.warning(
                "delivery.server_unreachable",
                server=self.identity.server,
                error=str(exc) or type(exc).__name__,
                effect="uploads are retried",
            )
        if self.identity.plan.kind == "live_only" and self.blocked is None:
            self._block(Outcome(OutcomeKind.live_only, code="live_only", message=LIVE_ONLY_MESSAGE))
        backlog = self.backlog()
        log.info(
            "delivery.started",
            server=self.identity.server,
            device=self.identity.device_id,
            plain=backlog.plain,
            sealed=backlog.sealed,
            refused=backlog.refused,
            uploading=self.blocked is None,
        )

    def step(self) -> float:
        """One pass: seal, evict, upload what is due. Seconds until the next pass."""
        self._quiet = True  # nothing left to do; anything pending or failing clears it
        progress = False
        if self.blocked is not None:
            self._recheck()
        else:
            self._heartbeat()
        if self._sealing and self.blocked is None:
            progress = self._seal()
        if self.blocked is not None:
            return min(self.poll_s, self.recheck_s)
        wait = self._retry_at - time.monotonic()
        if wait > 0:
            self._quiet = False
            return wait
        for paths in self.sealed.pending():
            if paths.sequence in self.status.refused:
                continue
            if self._stop.is_set():
                return 0.0
            self._quiet = False
            outcome = self.uploader.upload_one(paths)
            self._note(outcome)
            if self.uploader.identity is not self.sealed.identity:
                self._adopt(self.uploader.identity)  # refreshed: a new household key
            if outcome.kind in (OutcomeKind.delivered, OutcomeKind.replayed):
                self.delivered += outcome.kind is OutcomeKind.delivered
                self.backoff.reset()
            elif outcome.kind is OutcomeKind.retry:
                delay = self.backoff.next_delay()
                self._retry_at = time.monotonic() + delay
                return delay
            elif outcome.kind is OutcomeKind.interrupted:
                return 0.0
            elif outcome.kind in (OutcomeKind.stopped, OutcomeKind.live_only):
                self._block(outcome)
                return self.poll_s
            progress = True
            if self._wake.is_set():  # new clips while a backlog goes out: seal them now
                self._wake.clear()
                self._seal()
        return 0.0 if progress else self.poll_s

    def _seal(self) -> bool:
        """Seal what the cameras committed; True if something was sealed."""
        try:
            sealed = self.sealed.seal_pending(self.spool)
            evicted = self.sealed.enforce_limit()  # logs spool.evicted (a warning)
        except OSError:
            self._quiet = False  # logged by the sealer (spool.seal_failed); tried again later
            return False
        except SealedSpoolError as exc:
            log.error("delivery.sealing_stopped", error=str(exc))
            self._sealing = False
            return False
        if evicted:
            for sequence in evicted:
                self.status.refused.pop(sequence, None)
            self._save_status()
        return bool(sealed)

    # -- states --------------------------------------------------------------------------

    def _adopt(self, identity: DeviceIdentity) -> None:
        """New recipients or mode from the server: the next clips are sealed for them."""
        self.sealed.identity = identity

    def _block(self, outcome: Outcome) -> None:
        """Stop uploading and sealing: the server will not take clips from this device."""
        self.blocked = outcome
        self._recheck_at = time.monotonic() + self.recheck_s
        self._note(outcome)
        if outcome.kind is OutcomeKind.live_only:
            log.warning(
                "delivery.live_only",
                message=outcome.message or LIVE_ONLY_MESSAGE,
                effect="no clip is sealed or uploaded; they stay in the plain spool",
                recheck_s=self.recheck_s,
            )
        else:
            log.error(
                "delivery.stopped",
                code=outcome.code,
                message=outcome.message,
                effect="no clip is sealed or uploaded until this is resolved (restart the "
                "agent, or pair it again); clips stay in the spool",
            )

    def _heartbeat(self) -> None:
        """Now and then, even with nothing to upload: the server sees the camera is alive
        (its Cameras page), and the camera learns a changed plan, mode or recipients (a
        household switching to end-to-end) before it seals its next clip."""
        if time.monotonic() < self._heartbeat_at:
            return
        self._heartbeat_at = time.monotonic() + self.heartbeat_s
        try:
            identity = self.uploader.refresh()
        except ServerRefused as refused:
            if refused.outcome.kind in (OutcomeKind.stopped, OutcomeKind.live_only):
                self._block(refused.outcome)
            return
        except httpx.RequestError as exc:
            log.info("delivery.heartbeat_failed", error=str(exc) or type(exc).__name__)
            return
        self._adopt(identity)
        if identity.plan.kind == "live_only":
            self._block(Outcome(OutcomeKind.live_only, code="live_only", message=LIVE_ONLY_MESSAGE))

    def _recheck(self) -> None:
        """A live-only plan may be upgraded: ask again now and then."""
        blocked = self.blocked
        if blocked is None or blocked.kind is not OutcomeKind.live_only:
            return
        if time.monotonic() < self._recheck_at:
            return
        self._recheck_at = time.monotonic() + self.recheck_s
        try:
            identity = self.uploader.refresh()
        except (ServerRefused, httpx.RequestError) as exc:
            log.warning("delivery.recheck_failed", error=str(exc) or type(exc).__name__)
            return
        self._adopt(identity)
        if identity.plan.kind == "recording":
            log.info("delivery.resumed", reason="the plan stores recordings again")
            self.blocked = None
            self.status.stopped = None
            self._save_status()

    def _note(self, outcome: Outcome) -> None:
        if self.status.note(outcome):
            self._save_status()

    def _save_status(self) -> None:
        try:
            self.status.save(self.store.state_dir)
        except OSError as exc:
            log.warning("delivery.status_unsaved", error=str(exc))
