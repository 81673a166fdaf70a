"""Sealing and uploading in the background of `doorwarden agent run` (once paired).

One thread does both, so sealing, eviction and uploads never race each other (the
sealed spool's lock would make them safe; one thread makes them simple). The one
exception is a full disk: a camera thread about to record may evict the oldest sealed
clips (room.py), through the sealed spool's lock; an upload whose clip went that way
ends as `interrupted` and the loop goes on with the next clip:

* at start: `SealedSpool.recover` (what a crash left: debris, the chain head, plain
  entries already sealed), then GET /api/v1/device, since the plan or the household's key
  may have changed while the agent was off, and a revoked camera learns it here;
* each pass: seal every plain clip, oldest first (a full disk: the oldest clips are
  evicted, room.py, and sealing is tried once more) -> `enforce_limit` (evictions are
  logged by the sealer and recorded for the status and the health report; the server
  alerts the owner to the gap) -> upload the sealed clips that are due, oldest first ->
  the device health report when what the owner must see changed (health.py). A pass
  runs when a camera commits a clip (`notify`, CameraJob's `on_clip`), every `poll_s`
  seconds otherwise, and when a backoff delay or a deferred clip's delay has passed.

Exactly once is the uploader's and the sealer's business (their docstrings argue it);
this loop only decides when to try and when to stop trying:

* retry (a network error, a timeout, a 5xx, 507 storage_full, 429...): the same clip
  again after an exponential backoff of at least the server's `Retry-After`, capped at
  `backoff_max_s`, reset by the next delivery;
* held (the clip's own data or signature is at fault, or the local copy is unreadable):
  it stays on disk, is listed by `agent status` and in the health report, and is not
  offered again until a person asks (`doorwarden agent retry SEQ|--all`, which leaves a
  request in the state directory that this loop takes at its next pass). Not again by
  itself: for the server's codes each offer would raise another integrity alert for
  the owner, and an unreadable local copy does not mend itself;
* deferred (any other refusal of this one clip): it waits on its own backoff (60 s
  doubling to 1 h, outcomes.py) and the next clips go on meanwhile. Going on is safe:
  a later clip reaching the server first only makes the server note a gap, and an
  earlier clip offered afterwards is still accepted (it answers `replayed` only for a
  clip it verified and deleted since -- clips/ingest.py answers it for tombstones, and
  only verified clips are ever tombstoned -- so the uploader's removal on `replayed`
  never drops a clip the server did not store);
* the device refused (revoked, a forked or broken chain, an unknown key) or a plan that
  stores nothing: no more uploads and no more sealing in this process; new clips stay in
  the plain spool, as when the camera is not paired, so that they are not sealed for a
  pairing that can no longer deliver them. A live-only plan still takes the clips of
  doorbell presses (labelled "ring", rings.py): only those are sealed and uploaded, and
  one the server refuses (its hourly bound) is deferred. A live-only plan is checked
  again every `recheck_s`, and every upload resumes when it changes.

Stopping (`stop`) interrupts an upload between two requests, and gives up on a request
in flight after `timeout_s` (the thread is a daemon: the process may exit under it).
Nothing is lost: the server resumes from its offset at the next start. `finish` (for
`run --once`) delivers everything pending (but held clips, and deferred ones not yet
due), then stops.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import httpx
import structlog

from doorwarden.agent.capture.rtsp import Backoff
from doorwarden.agent.config.models import UploadConfig
from doorwarden.agent.delivery.health import HealthReporter
from doorwarden.agent.delivery.identity import DeviceIdentity, IdentityStore
from doorwarden.agent.delivery.outcomes import Outcome, OutcomeKind
from doorwarden.agent.delivery.rings import RingClips, is_ring_clip
from doorwarden.agent.delivery.sealer import SealedSpool, SealedSpoolError, SealRecovery
from doorwarden.agent.delivery.upload_status import UploadStatus, take_retry_request
from doorwarden.agent.delivery.uploader import (
    ServerRefused,
    Uploader,
    http_client,
)
from doorwarden.agent.recording.room import SpoolRoom
from doorwarden.agent.recording.spool import Spool
from doorwarden.fileio import is_disk_full

log = structlog.get_logger("doorwarden.agent.delivery.worker")

# An end-to-end camera verifies the server's signed member set before it seals, unless
# it did so this recently (docs/e2e.md, "Rotation"): clips last several seconds, so the
# set a clip is sealed to was fetched after the clip began, and a member removed before
# it began is not among its recipients. A burst of clips makes one request.
MEMBER_SET_MAX_AGE_S = 5.0
LIVE_ONLY_MESSAGE = "This household's plan stores no recordings (live view only)."
RINGS_ONLY_EFFECT = (
    "only doorbell clips (labelled ring) are sealed and uploaded; the others stay in the "
    "plain spool"
)


@dataclass(frozen=True)
class Backlog:
    plain: int  # clips not sealed yet
    sealed: int  # sealed clips waiting for upload
    held: int  # sealed clips refused for good (their own data at fault), kept on disk
    deferred: int  # sealed clips refused for now, offered again on their own backoff

    @property
    def refused(self) -> int:
        return self.held + self.deferred


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
        room: SpoolRoom | None = None,
        member_set_max_age_s: float = MEMBER_SET_MAX_AGE_S,
    ) -> None:
        identity = identity or store.load()
        if identity is None:
            raise ValueError(f"this agent is not paired ({store.identity_path} is missing)")
        self.spool = spool
        self.rings = RingClips(spool.directory)  # what a live-only plan still delivers
        self.store = store
        self.poll_s = poll_s
        self.recheck_s = recheck_s
        self.heartbeat_s = heartbeat_s
        self.member_set_max_age_s = member_set_max_age_s
        self._heartbeat_at = time.monotonic() + heartbeat_s
        self.sealed = SealedSpool(
            spool.directory, identity, store.signing_key(), max_bytes=upload.max_spool_bytes
        )
        # Without one from the app (tests, tools), a room that only answers full disks.
        attached = spool.room if isinstance(spool.room, SpoolRoom) else None
        self.room = room or attached or SpoolRoom(spool, min_free_bytes=0, state_dir=None)
        self._owns_client = client is None
        self.client = client or http_client(upload.timeout_s)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._draining = threading.Event()
        self._members_due = threading.Event()  # the server said the member set changed
        self.uploader = Uploader(
            identity, self.sealed, self.client, upload.part_bytes, store=store, stop=self._stop
        )
        self.status = UploadStatus.load(store.state_dir, identity.device_id)
        self.health = HealthReporter(self.uploader)
        self.backoff = Backoff(upload.backoff_initial_s, upload.backoff_max_s)
        self.delivered = 0  # clips the server verified during this run
        self.blocked: Outcome | None = None  # why uploading stopped, if it did
        self.drained = False  # finish() found nothing left to deliver
        self._sealing = True
        self._retry_at = 0.0
        self._recheck_at = 0.0
        self._quiet = False  # the last pass found nothing to seal or send
        self._reachable = True  # the server answered the last request (health reports)
        self._recovered: SealRecovery | None = None
        self._thread: threading.Thread | None = None

    @property
    def identity(self) -> DeviceIdentity:
        return self.uploader.identity

    @property
    def rings_only(self) -> bool:
        """A live-only plan: only the clips of doorbell presses are delivered."""
        return self.blocked is not None and self.blocked.kind is OutcomeKind.live_only

    # -- life cycle ----------------------------------------------------------------------

    def recover(self) -> SealRecovery:
        """Crash recovery of the sealed spool; before anything else (start does it)."""
        if self._recovered is None:
            self._recovered = self.sealed.recover(self.spool)
            self.room.sealed = self.sealed  # sealed clips may now be evicted for room
        return self._recovered

    def start(self) -> None:
        self.recover()
        self._thread = threading.Thread(target=self._run, name="doorwarden-delivery", daemon=True)
        self._thread.start()

    def notify(self, *_: object) -> None:
        """A clip was committed to the plain spool: seal and send it soon."""
        self._wake.set()

    def members_changed(self, *_: object) -> None:
        """The server's `member_set` message (devices/member_push.py): fetch the signed
        member set at the next pass, whatever its age, so that live sessions (which use
        the set this loop holds: agent/live/seal_live.py) follow a removal promptly too.
        The message itself changes nothing: only the set fetched and verified does."""
        self._members_due.set()
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
        held = sum(1 for s in pending if s in self.status.held)
        deferred = sum(1 for s in pending if s in self.status.deferred)
        return Backlog(len(self.spool.entries()), len(pending) - held - deferred, held, deferred)

    # -- the loop ------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._contact()
        except Exception:  # a bug (or a full disk) must not end deliveries for good
            log.exception("delivery.failed")
        while not self._stop.is_set():
            # Only a pass that began after the drain was asked may end it: one already
            # running may have looked at the spool before the last clip was committed.
            draining = self._draining.is_set()
            try:
                delay = self.step()
            except Exception:
                log.exception("delivery.failed")
                self._quiet = False
                delay = self.backoff.next_delay()
            stopped = self.blocked is not None and not self.rings_only
            if draining and (self._quiet or stopped):
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
            self._reachable = False
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
            held=backlog.held,
            deferred=backlog.deferred,
            uploading=self.blocked is None,
        )

    def step(self) -> float:
        """One pass: seal, evict, upload what is due. Seconds until the next pass."""
        self._quiet = True  # nothing left to do; anything pending or failing clears it
        progress = False
        self._take_retry_request()
        heartbeat = False
        if self.blocked is not None:
            self._recheck()
        else:
            heartbeat = self._heartbeat()
        if self._members_due.is_set() and self.blocked is None:
            self._members_due.clear()
            self._refresh_members(None)
        rings_only = self.rings_only
        if self._sealing and (self.blocked is None or rings_only):
            progress = self._seal()
        if heartbeat or self._reachable:
            # Not to a server that is down (it gets no extra connection): the heartbeat
            # tries it again.
            self._report(heartbeat=heartbeat)
        if self.blocked is not None and not rings_only:
            return min(self.poll_s, self.recheck_s)
        wait = self._retry_at - time.monotonic()
        if wait > 0:
            self._quiet = False
            return wait
        for paths in self.sealed.pending():
            if self.status.waiting(paths.sequence):
                continue  # held, or deferred and not due: the next clips go on
            if rings_only and not is_ring_clip(paths):
                continue  # sealed before the plan changed: kept for a recording plan
            if self._stop.is_set():
                return 0.0
            self._quiet = False
            outcome = self.uploader.upload_one(paths)
            if rings_only and outcome.kind is OutcomeKind.live_only:
                # Past the server's bound on ring clips: this one waits, later ones go on.
                outcome = replace(outcome, kind=OutcomeKind.deferred, sequence=paths.sequence)
            self._reachable = outcome.code != "network"
            self._note(outcome)
            if self.uploader.identity is not self.sealed.identity:
                self._adopt(self.uploader.identity)  # refreshed: a new household key
            if outcome.kind in (OutcomeKind.delivered, OutcomeKind.replayed):
                self.delivered += outcome.kind is OutcomeKind.delivered
                self.backoff.reset()
                self.room.wrote()  # a clip left the disk: it may no longer be full
            elif outcome.kind is OutcomeKind.retry:
                delay = self._retry_delay(outcome)
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
        self._report(heartbeat=False)
        return 0.0 if progress else self._idle_delay()

    def _retry_delay(self, outcome: Outcome) -> float:
        """The exponential backoff, at least the server's Retry-After, capped."""
        delay = self.backoff.next_delay()
        if outcome.retry_after is not None:
            delay = max(delay, outcome.retry_after)
        return min(delay, self.backoff.max_s)

    def _idle_delay(self) -> float:
        """Until the next poll, or sooner when a deferred clip falls due."""
        due = self.status.next_due()
        if due is None:
            return self.poll_s
        seconds = (due - datetime.now(UTC)).total_seconds()
        return max(0.0, min(self.poll_s, seconds))

    def _seal(self) -> bool:
        """Seal what the cameras committed; True if something was sealed."""
        try:
            plain = self.rings if self.rings_only else self.spool
            if not self._members_current(plain):
                return False
            try:
                sealed = self.sealed.seal_pending(plain)
            except OSError as exc:
                # A full disk: evict the oldest clips (never while holding the sealed
                # spool's lock: room.py) and try once more.
                if not self.room.failed_write(exc):
                    raise
                sealed = self.sealed.seal_pending(plain)
            evicted = self.sealed.enforce_limit()  # logs spool.evicted (a warning)
        except OSError:
            self._quiet = False  # logged by the sealer (spool.seal_failed); tried again later
            self._forget_gone()
            return False
        except SealedSpoolError as exc:
            log.error("delivery.sealing_stopped", error=str(exc))
            self._sealing = False
            return False
        if evicted:
            self.room.note_sealed_evicted(evicted, "spool_limit")
        if sealed:
            self.room.wrote()
        self._forget_gone()
        return bool(sealed)

    def _members_current(self, plain: Spool) -> bool:
        """Before sealing end-to-end clips: the member set, fetched and verified if the
        one held is older than `member_set_max_age_s`. A server that cannot be reached
        (or answers a set that does not verify) leaves the set held: the clips are sealed
        to it, never lost, and that is logged. False if the server has just refused this
        device or its plan changed to live-only (nothing is sealed in this pass)."""
        if self.identity.mode != "e2e" or not plain.entries():
            return True
        checked = self.uploader.members_checked_at
        age = None if checked is None else time.monotonic() - checked
        if age is not None and age <= self.member_set_max_age_s:
            return True
        return self._refresh_members(age)

    def _refresh_members(self, age: float | None) -> bool:
        """GET /api/v1/device, its signed member set adopted; False if the server has
        just refused this device or its plan is live-only now."""
        try:
            identity = self.uploader.refresh()
        except ServerRefused as refused:
            if refused.outcome.kind in (OutcomeKind.stopped, OutcomeKind.live_only):
                self._block(refused.outcome)
                return False  # the next pass seals what the new state allows
            self._stale_members(refused.outcome.code, age)
            return True
        except httpx.RequestError as exc:
            self._reachable = False
            self._stale_members(str(exc) or type(exc).__name__, age)
            return True
        self._reachable = True
        self._adopt(identity)
        return True

    def _stale_members(self, error: str, age: float | None) -> None:
        log.warning(
            "delivery.member_set_stale",
            error=error,
            age_s=None if age is None else round(age, 1),
            recipients=[k for k, _ in self.identity.recipients],
            effect="sealing to the last member set this camera verified",
        )

    def _forget_gone(self) -> None:
        """Held or deferred clips evicted since (for room or the limit): the room keeps
        the record of their eviction; the status lists only what is still on disk."""
        listed = set(self.status.refused)
        if not listed:
            return
        on_disk = {p.sequence for p in self.sealed.pending()}
        if self.status.forget(sorted(listed - on_disk)):
            self._save_status()

    def _take_retry_request(self) -> None:
        """`doorwarden agent retry`: offer held or deferred clips again now."""
        try:
            request = take_retry_request(self.store.state_dir)
        except OSError as exc:
            log.warning("delivery.retry_request_unreadable", error=str(exc))
            return
        if request is None:
            return
        everything, sequences = request
        released = self.status.release(None if everything else sequences)
        log.info("delivery.retry_requested", clips=released)
        if released:
            self._save_status()
            self._wake.set()

    def _report(self, *, heartbeat: bool) -> None:
        """The device health report, when it changed or with the heartbeat."""
        blocked = self.blocked
        if blocked is not None and blocked.kind is OutcomeKind.stopped:
            return  # the server does not take this device any more
        self.health.report_state(
            self.sealed.pending(),
            spool_dir=self.spool.directory,
            status=self.status,
            room=self.room,
            heartbeat=heartbeat,
        )

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
                effect=RINGS_ONLY_EFFECT,
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

    def _heartbeat(self) -> bool:
        """Now and then, even with nothing to upload: the server sees the camera is alive
        (its Cameras page), and the camera learns a changed plan, mode or recipients (a
        household switching to end-to-end) before it seals its next clip. True when it
        is time (the health report goes with it)."""
        if time.monotonic() < self._heartbeat_at:
            return False
        self._heartbeat_at = time.monotonic() + self.heartbeat_s
        try:
            identity = self.uploader.refresh()
        except ServerRefused as refused:
            if refused.outcome.kind in (OutcomeKind.stopped, OutcomeKind.live_only):
                self._block(refused.outcome)
            return True
        except httpx.RequestError as exc:
            log.info("delivery.heartbeat_failed", error=str(exc) or type(exc).__name__)
            return True
        self._reachable = True
        self._adopt(identity)
        if identity.plan.kind == "live_only":
            self._block(Outcome(OutcomeKind.live_only, code="live_only", message=LIVE_ONLY_MESSAGE))
        return True

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
        stopped = self.status.stopped
        changed = self.status.note(outcome)
        if self.rings_only and stopped is not None and self.status.stopped is None:
            self.status.stopped = stopped  # a ring clip delivered: still a live-only plan
        if changed:
            self._save_status()

    def _save_status(self) -> None:
        try:
            self.status.save(self.store.state_dir)
        except OSError as exc:
            # The spool's disk may be full: make room, and try once more. In memory the
            # status is right either way, and goes to the server in the health report.
            if is_disk_full(exc) and self.room.failed_write(exc):
                try:
                    self.status.save(self.store.state_dir)
                    return
                except OSError as again:
                    exc = again
            log.warning("delivery.status_unsaved", error=str(exc))
