"""The control connection's `settings` and `snapshot` messages (docs/camera-settings.md,
"On the camera box"; the wire format is docs/live-view.md's).

`settings`: the server's signed document for one camera. It is applied only when it
verifies against the pinned settings key, names this device and that camera, and is
newer than the version applied (the same version sent again, as after every reconnect,
is acknowledged without being applied twice). It is merged over the YAML and validated
whole; then the camera's job takes it at its next sample, live view's mask changes, it is
saved, and `settings_applied` reports the effective value and source of every field. A
message that fails any of this changes nothing and is answered ok=false with the reason.

`snapshot`: the camera's newest decoded frame, privacy zones black, as a JPEG of at most
2 MiB, sent as binary `[0x20][camera index][16-byte id][JPEG]`, or `snapshot_error`.

The link calls handlers on its own thread, which must keep reading; both are done in
order on one worker thread of their own (a new detector model, a JPEG, an fsync).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import structlog

from doorwarden.agent.analysis.detection import DetectorError
from doorwarden.agent.analysis.privacy import PrivacyMask
from doorwarden.agent.live.tap import LiveTap
from doorwarden.agent.observe import Observers
from doorwarden.agent.pipeline import CameraJob
from doorwarden.agent.settings.merge import Effective
from doorwarden.agent.settings.snapshot import SnapshotError, snapshot_jpeg
from doorwarden.agent.settings.state import CameraSettingsState, Refused

log = structlog.get_logger("doorwarden.agent.settings.handler")

SNAPSHOT = 0x20  # the first byte of a snapshot's binary message
MAX_REPLY_BYTES = 16 * 1024
POLYGON_FIELDS = ("privacy_zones", "motion.zones", "motion.ignore")
Handler = Callable[[dict[str, object]], None]


class Link(Protocol):
    """What the handler needs of live/link.py's LiveLink."""

    @property
    def cameras(self) -> list[str]: ...
    @property
    def taps(self) -> Mapping[str, LiveTap]: ...
    @property
    def handlers(self) -> dict[str, Handler]: ...

    def send_text(self, text: str) -> bool: ...
    def send_binary(self, data: bytes) -> bool: ...


class SettingsHandler:
    def __init__(
        self,
        state: CameraSettingsState,
        key: Callable[[], bytes | None],
        jobs: Mapping[str, CameraJob],
        *,
        observers: Observers | None = None,
    ) -> None:
        self.state = state
        self.key = key
        self.jobs = jobs
        self.observers = observers
        self.link: Link | None = None
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dw-settings")

    def attach(self, link: Link) -> None:
        self.link = link
        link.handlers["settings"] = lambda message: self._submit(self._settings, message)
        link.handlers["snapshot"] = lambda message: self._submit(self._snapshot, message)

    def close(self) -> None:
        self._worker.shutdown(wait=False, cancel_futures=True)

    # -- settings --------------------------------------------------------------------------

    def apply(self, message: Mapping[str, Any]) -> dict[str, Any]:
        """Check and apply one `settings` message; the `settings_applied` reply."""
        camera = message.get("camera")
        try:
            key = self.key()
            if key is None:
                raise Refused("this agent has not got the server's settings key yet")
            checked = self.state.check(
                key, camera, message.get("document"), message.get("signature")
            )
            assert isinstance(camera, str)  # noqa: S101 - check() refuses anything else
            if not checked.same:
                self._run(camera, checked.effective)
        except Refused as exc:
            log.warning("settings.refused", camera=camera, error=str(exc))
            return self._reply(camera, _version_of(message.get("document")), str(exc))
        unsaved = self.state.commit(camera, checked)
        log.info("settings.applied", camera=camera, version=checked.document.version,
                 fields=sorted(checked.document.settings), again=checked.same)  # fmt: skip
        if self.observers is not None and not checked.same:
            self.observers.settings(camera, checked.effective.values)
        error = f"applied, but not saved on the camera box: {unsaved}" if unsaved else None
        return self._reply(camera, checked.document.version, error, ok=True)

    def _run(self, camera: str, effective: Effective) -> None:
        """The running camera takes `effective`: its job at the next sample, live view's
        mask from the next frame a viewer gets. Refused when its detector cannot load."""
        job = self.jobs.get(camera)
        if job is not None:
            try:
                job.reconfigure(effective.config, detection_enabled=effective.detection_enabled)
            except DetectorError as exc:
                raise Refused(f"detect.person: {exc}") from None
        tap = self.link.taps.get(camera) if self.link is not None else None
        if tap is not None:
            tap.set_mask(PrivacyMask(effective.config.privacy_zones, 0, 0))

    def _reply(
        self, camera: object, version: int, error: str | None, *, ok: bool = False
    ) -> dict[str, Any]:
        effective = self.state.effective.get(camera) if isinstance(camera, str) else None
        reply: dict[str, Any] = {
            "type": "settings_applied", "camera": camera, "version": version, "ok": ok,
            "error": error, "effective": dict(effective.values) if effective else {},
            "sources": dict(effective.sources) if effective else {},
        }  # fmt: skip
        return _fit(reply)

    def _settings(self, message: Mapping[str, Any]) -> None:
        reply = self.apply(message)
        if self.link is not None and not self.link.send_text(json.dumps(reply)):
            log.info("settings.reply_lost", camera=reply["camera"])  # sent again on reconnect

    # -- snapshot --------------------------------------------------------------------------

    def snapshot(self, message: Mapping[str, Any]) -> bytes | dict[str, Any]:
        """The binary snapshot message, or the `snapshot_error` reply."""
        camera, ident = message.get("camera"), message.get("id")
        try:
            raw_id = _snapshot_id(ident)
            cameras = self.link.cameras if self.link is not None else list(self.jobs)
            job = self.jobs.get(camera) if isinstance(camera, str) else None
            if job is None or camera not in cameras:
                raise SnapshotError(f"no camera {camera!r} on this agent")
            frame = job.latest_frame
            if frame is None:
                raise SnapshotError("the camera has no picture now (its stream is down)")
            zones = job.newest_config.privacy_zones
            mask = PrivacyMask(zones, frame.width, frame.height) if zones else PrivacyMask.none()
            jpeg = snapshot_jpeg(frame, mask)
        except SnapshotError as exc:
            log.info("snapshot.failed", camera=camera, error=str(exc))
            return {"type": "snapshot_error", "camera": camera, "id": ident, "message": str(exc)}
        log.info("snapshot.sent", camera=camera, bytes=len(jpeg))
        return bytes([SNAPSHOT, cameras.index(camera)]) + raw_id + jpeg

    def _snapshot(self, message: Mapping[str, Any]) -> None:
        out = self.snapshot(message)
        if self.link is None:
            return
        sent = (
            self.link.send_binary(out) if isinstance(out, bytes)
            else self.link.send_text(json.dumps(out))
        )  # fmt: skip
        if not sent:
            log.info("snapshot.lost", camera=message.get("camera"))

    def _submit(
        self, work: Callable[[Mapping[str, Any]], None], message: Mapping[str, Any]
    ) -> None:
        def run() -> None:
            try:
                work(message)
            except Exception:  # a bug here must not stop the next message's handling
                log.exception("settings.handler_failed", type=message.get("type"))

        with contextlib.suppress(RuntimeError):  # shut down: the agent is stopping
            self._worker.submit(run)


def _snapshot_id(ident: object) -> bytes:
    if not isinstance(ident, str) or len(ident) != 32:
        raise SnapshotError("id must be 32 hex digits")
    try:
        return bytes.fromhex(ident)
    except ValueError:
        raise SnapshotError("id must be 32 hex digits") from None


def _version_of(text: object) -> int:
    """The version a refused document claims (unverified: only to say which one failed)."""
    try:
        version = json.loads(text)["version"] if isinstance(text, str) else 0
    except (ValueError, TypeError, KeyError):
        return 0
    return version if isinstance(version, int) and not isinstance(version, bool) else 0


def _fit(reply: dict[str, Any]) -> dict[str, Any]:
    """At most MAX_REPLY_BYTES: large polygon values go first, the web's (which the server
    holds) before the file's, each left as null."""
    order = sorted(POLYGON_FIELDS, key=lambda name: reply["sources"].get(name) != "web")
    for name in order:
        if len(json.dumps(reply)) <= MAX_REPLY_BYTES:
            break
        if reply["effective"].get(name) is not None:
            reply["effective"][name] = None
    if len(json.dumps(reply)) > MAX_REPLY_BYTES:
        reply["error"] = (reply["error"] or "")[:1000]
    return reply
