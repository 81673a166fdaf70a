"""The agent's composition root: the one place that builds a running agent from a
validated configuration. `doorwarden agent run` (cli/agent.py) and the demo's in-process
cameras (demo/cameras.py) both start an `AgentApp`, so the two cannot wire the parts
differently.

What `from_config` builds, in this order (nothing runs until `start`):

* the spool, recovered before any camera commits (a killed run's work in progress), and
  its room keeper, which evicts the oldest clips when the spool's disk fills;
* the delivery (sealing and upload) when the agent is paired; otherwise clips stay in
  the spool, and `identity` is None so the caller can say how to pair;
* the settings set from the web (agent/settings/), loaded from the state directory and
  laid over each camera's YAML, so a restart starts with them before the link is up;
* one `CameraJob` per camera (this loads each detector model, the slow part);
* the live-view link, for a paired agent that runs until stopped (not `once`); when the
  server's address would carry the device token in clear it is left off, `live_off`
  saying why; the settings handler answers its `settings` and `snapshot` messages;
* `observers` (agent/observe.py): what the cameras, the doorbell, the mode and the
  settings tell listeners on the box (the MQTT bridge adds itself);
* the doorbell (agent/ring/), for an agent that runs until stopped: its sources, the
  `agent ring` socket and the sender of queued rings (over the link, or HTTP when paired
  without one); a press makes its camera record a clip labelled "ring";
* the ONVIF event triggers (agent/onvif/events.py) of the cameras with `onvif:`, for an
  agent that runs until stopped: the camera's motion and tamper events record clips,
  its presses (when `onvif.events.doorbell`) ring the doorbell;
* the camera threads (`CameraRunner`): each camera's samples go to the live link first
  (a viewer should not wait for detection), then to its job; without `once` a camera
  whose source fails is restarted with backoff.

Stopping finishes each camera's clip in progress, so it is kept (and delivered, when
there is time to drain).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av

from doorwarden.agent.analysis.detection import DetectorError
from doorwarden.agent.analysis.privacy import PrivacyMask
from doorwarden.agent.cameras import CameraRunner, CameraState, CameraStatus, Handler
from doorwarden.agent.capture.media import Sample
from doorwarden.agent.capture.source import VideoSource
from doorwarden.agent.config.models import AgentConfig, CameraConfig, FileSource
from doorwarden.agent.delivery.identity import DeviceIdentity, IdentityError, IdentityStore
from doorwarden.agent.delivery.worker import Delivery
from doorwarden.agent.live.link import LiveLink, LiveLinkError
from doorwarden.agent.live.mode import ModeState
from doorwarden.agent.mqtt.bridge import MqttBridge
from doorwarden.agent.mqtt.setup import MqttSetupError
from doorwarden.agent.observe import Observers
from doorwarden.agent.onvif.events import CameraEvents, camera_events, start_all
from doorwarden.agent.pipeline import CameraJob
from doorwarden.agent.recording.recorder import FinishedClip
from doorwarden.agent.recording.room import SpoolRoom
from doorwarden.agent.recording.spool import Spool
from doorwarden.agent.ring.doorbell import Doorbell
from doorwarden.agent.ring.queue import EventQueue
from doorwarden.agent.ring.sender import EventSender
from doorwarden.agent.settings.handler import SettingsHandler
from doorwarden.agent.settings.wiring import load_settings
from doorwarden.agent.talk.control import TALK_AUDIO, TalkControl

CAMERAS_STOP_S = 60.0  # flushing a re-encoded clip in progress takes a moment
LIVE_STOP_S = 5.0
DELIVERY_STOP_S = 10.0  # the request in flight, then it is abandoned


class BuildError(Exception):
    """The agent cannot be built: its spool, a detector model or the pairing state is
    unusable. The message is the cause's, for one `error:` line."""


@dataclass(frozen=True)
class Stopped:
    delivered: int  # clips the server verified during this run
    waiting: int  # clips kept in the spool for the next start (none when all went)


def file_config(source: Path, *, spool_dir: Path, state_dir: Path) -> AgentConfig:
    """One video file with default settings (`doorwarden agent run --source FILE`),
    read as fast as it decodes: a file is not a live camera."""
    camera = CameraConfig(
        name="file", source=FileSource(kind="file", path=source.resolve(), pace=False)
    )
    return AgentConfig(spool_dir=spool_dir, state_dir=state_dir, cameras=[camera])


def unpaced(camera: CameraConfig) -> CameraConfig:
    """File and synthetic sources at full speed rather than at their frame rate (the
    sub-stream too: it must keep pace with the main stream, config/substream.py)."""
    update = {}
    for field in ("source", "substream"):
        src = getattr(camera, field)
        if src is not None and src.kind in ("file", "synthetic"):
            update[field] = src.model_copy(update={"pace": False})
    return camera.model_copy(update=update) if update else camera


class AgentApp:
    """A camera agent built from its configuration: `start`, then `stop` (or `run_until`
    for a caller that waits on the cameras, as `agent run` does)."""

    def __init__(
        self,
        config: AgentConfig,
        *,
        jobs: dict[str, CameraJob],
        runner: CameraRunner,
        delivery: Delivery | None,
        link: LiveLink | None,
        live_off: str | None,
        doorbell: Doorbell | None = None,
        talk: TalkControl | None = None,
        observers: Observers | None = None,
        settings: SettingsHandler | None = None,
        onvif: list[CameraEvents] | None = None,
        mqtt: MqttBridge | None = None,
    ) -> None:
        self.mqtt = mqtt  # the home broker's bridge (agent/mqtt/), when `mqtt:` is set
        self.onvif = onvif or []  # ONVIF event subscriptions (not with `once`)
        self.config = config
        self.observers = observers if observers is not None else Observers()
        self.settings = settings  # applies the web's camera settings (None: none kept)
        self.doorbell = doorbell  # None with `once`
        self.talk = talk  # None without the live link (talk comes over it)
        self.delivery = delivery
        self.live_off = live_off  # why live view is off for a paired agent, if it is
        self._jobs = jobs
        self._runner = runner
        self._link = link

    @classmethod
    def from_config(
        cls, config: AgentConfig, *, once: bool = False, identity: DeviceIdentity | None = None
    ) -> AgentApp:
        """Build the agent of `config` (see the module's docstring); BuildError if it
        cannot be. `once`: sources at full speed, a failed camera stays failed, no live
        view. `identity` replaces the pairing read from the state directory (the demo
        passes the one it just checked against its in-process server)."""
        if once:
            config = config.model_copy(update={"cameras": [unpaced(c) for c in config.cameras]})
        delivery: Delivery | None = None
        try:
            spool = Spool(config.spool_dir, max_bytes=config.spool_max_bytes)
            spool.recover()  # before any camera commits: a killed run's work in progress
            # Evicts the oldest clips when the spool's disk fills (recording/room.py).
            room = SpoolRoom(
                spool, min_free_bytes=config.spool_min_free_bytes, state_dir=config.state_dir
            )
            store = IdentityStore(config.state_dir)
            identity = identity or store.load()
            delivery = (
                Delivery(spool, store, config.upload, identity=identity, room=room)
                if identity is not None
                else None
            )
            on_clip = delivery.notify if delivery is not None else None
            observers = Observers()
            # The household's mode as last heard (agent/live/mode.py); not for `once` runs.
            mode = ModeState(
                None if once else config.state_dir, [c.name for c in config.cameras],
                observers=observers,
            )  # fmt: skip
            loaded = load_settings(config, identity, store)  # before any camera is built
            cameras = [loaded.camera(cam.name) for cam in config.cameras]
            jobs = {
                cam.name: CameraJob(
                    cam,
                    spool,
                    on_clip=on_clip,
                    switches=mode.for_camera(cam.name),
                    observers=observers,
                    detection_enabled=loaded.detection_enabled(cam.name),
                )
                for cam in cameras
            }
            settings = SettingsHandler(loaded.state, loaded.key.get, jobs, observers=observers)
            # The home broker (agent/mqtt/): a listener like any other, not for `once` runs.
            mqtt = None
            if config.mqtt is not None and not once:
                mqtt = MqttBridge.build(
                    config.mqtt, cameras=[c.name for c in config.cameras], identity=identity,
                    mode=mode.mode,
                    detection={c.name: loaded.detection_enabled(c.name) for c in config.cameras},
                )  # fmt: skip
                observers.add(mqtt)
        except (OSError, DetectorError, IdentityError, MqttSetupError) as exc:
            if delivery is not None:
                delivery.stop()  # not started: this only closes its HTTP client
            raise BuildError(str(exc)) from exc
        link, live_off = None, None
        if identity is not None and not once:  # live view needs a pairing and a live agent
            try:
                link = _live_link(cameras, identity)  # masks: the web's zones included
                # End-to-end households: each stream is sealed to the members' keys as the
                # delivery last heard them, and signed by this device (agent/live/seal_live.py).
                link.seals.signing_key = store.signing_key()
                if delivery is not None:
                    current = delivery
                    link.seals.identity_of = lambda: current.identity
                    # The server's nudge: fetch the signed member set now (docs/e2e.md).
                    link.handlers["member_set"] = current.members_changed
                link.handlers["mode"] = mode.on_message  # the server's `mode` message
                settings.attach(link)  # `settings` and `snapshot`
            except LiveLinkError as exc:
                live_off = str(exc)
        doorbell = None if once else _doorbell(config, jobs, link, identity, observers)
        press = doorbell.press if doorbell is not None else None
        onvif = [] if once else camera_events(config.cameras, jobs, press)
        talk = _talk(config, link) if link is not None else None
        runner = CameraRunner(
            [(cam.name, cam.source, _handler(jobs[cam.name], link)) for cam in config.cameras],
            restart=not once,
            on_open=lambda name, source: _opened(jobs[name], link, name, source),
            on_close=lambda name: _closed(jobs[name], link, name),
            audio=frozenset(cam.name for cam in config.cameras if cam.audio),
            decode={cam.name: cam.decode for cam in config.cameras},
        )
        return cls(
            config, jobs=jobs, runner=runner, delivery=delivery, link=link, live_off=live_off,
            doorbell=doorbell, talk=talk, observers=observers, settings=settings, onvif=onvif,
            mqtt=mqtt,
        )  # fmt: skip

    @property
    def identity(self) -> DeviceIdentity | None:
        """The pairing this agent delivers for; None when it is not paired."""
        return self.delivery.identity if self.delivery is not None else None

    # -- life cycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Start delivering, the live link, then the cameras (each on its own thread)."""
        if self.mqtt is not None:
            self.mqtt.start()  # first: the cameras' first states go out as they happen
        if self.delivery is not None:
            self.delivery.start()
        if self._link is not None:
            self._link.start()
        if self.doorbell is not None:
            self.doorbell.start()
        self.onvif = start_all(self.onvif)  # one without its package is logged, left out
        self._runner.start()

    def run_until(self, stop: threading.Event, tick: Callable[[], None] | None = None) -> None:
        """Start, then wait until every camera is done (finished or failed) or `stop` is
        set (Ctrl-C sets it too), calling `tick` every 0.1 s; then stop the cameras."""
        try:
            self.start()
            while not self._runner.done() and not stop.wait(0.1):
                if tick is not None:
                    tick()
        except KeyboardInterrupt:
            stop.set()
        finally:
            self.stop_cameras()

    def stop_cameras(self) -> None:
        """Stop the camera threads; each clip in progress is finished and kept."""
        self._runner.stop(timeout_s=CAMERAS_STOP_S)

    def stop(self, *, drain_s: float | None = None) -> Stopped:
        """Stop the cameras, the live link and delivery. With `drain_s`, first keep
        delivering what is pending for up to that long; what cannot go in time stays in
        the spool for the next start. Safe to call again."""
        self.stop_cameras()
        if self.doorbell is not None:
            self.doorbell.stop()  # what is not acknowledged stays queued for the next start
        for events in self.onvif:
            events.stop()  # unsubscribes when the camera still answers
        if self.talk is not None:
            self.talk.stop()  # each camera's backchannel torn down, not left to time out
        if self._link is not None:
            self._link.stop(timeout_s=LIVE_STOP_S)
        if self.settings is not None:
            self.settings.close()
        if self.mqtt is not None:
            self.mqtt.stop()  # "offline", retained: the cameras are not watching any more
        delivery = self.delivery
        if delivery is None:
            return Stopped(0, 0)
        if drain_s is not None:
            delivery.finish(drain_s)
        else:
            delivery.stop(timeout_s=DELIVERY_STOP_S)
        backlog = delivery.backlog()
        return Stopped(delivery.delivered, backlog.plain + backlog.sealed)

    # -- what it did ---------------------------------------------------------------------

    def done(self) -> bool:
        """Whether every camera has finished, failed or stopped."""
        return self._runner.done()

    def running(self) -> bool:
        """Whether any camera is running now (its source open)."""
        return any(s.state is CameraState.running for s in self._runner.status().values())

    def status(self) -> dict[str, CameraStatus]:
        return self._runner.status()

    def failed(self) -> list[CameraStatus]:
        """The cameras that failed for good (with `once`: nothing restarts them)."""
        return [s for s in self._runner.status().values() if s.state is CameraState.failed]

    def media_time(self, camera: str) -> float:
        """How far into its stream the camera is (seconds): for a progress display."""
        return self._jobs[camera].media_time

    def length_s(self, camera: str) -> float | None:
        """How long the camera's source lasts (seconds), when it is a file that ends or
        a synthetic scene; None for a live or looped source, or a file not readable."""
        return _length_s(self._jobs[camera].camera)

    @property
    def clips(self) -> list[FinishedClip]:
        """The clips kept during this run, by camera, then start."""
        clips = [clip for job in self._jobs.values() for clip in job.clips]
        return sorted(clips, key=lambda c: (c.metadata["camera"], c.start))


def _length_s(camera: CameraConfig) -> float | None:
    src = camera.source
    if src.kind == "synthetic":
        return src.duration_s
    if src.kind != "file" or src.loop:
        return None
    try:
        with av.open(str(src.path)) as container:
            stream = container.streams.video[0]
            if stream.duration is not None and stream.time_base is not None:
                return float(stream.duration * stream.time_base)
            return container.duration / 1_000_000 if container.duration else None
    except (av.FFmpegError, OSError, IndexError):
        return None  # the camera's own thread reports what is wrong with the file


def _live_link(cameras: list[CameraConfig], identity: DeviceIdentity) -> LiveLink:
    # Sized lazily: the stream's size is known when its source opens.
    masks = {cam.name: PrivacyMask(cam.privacy_zones, 0, 0) for cam in cameras}
    return LiveLink(identity, [cam.name for cam in cameras], masks=masks)


def _doorbell(
    config: AgentConfig,
    jobs: dict[str, CameraJob],
    link: LiveLink | None,
    identity: DeviceIdentity | None,
    observers: Observers | None = None,
) -> Doorbell:
    sender = (
        EventSender(EventQueue(config.state_dir), link=link, identity=identity)
        if identity is not None
        else None  # not paired: rings stay queued until it is
    )
    if sender is not None and link is not None:
        link.handlers["event_ack"] = sender.acked
    return Doorbell(
        config.cameras,
        config.state_dir,
        sender=sender,
        trigger=lambda camera, reason: jobs[camera].trigger(reason),
        observers=observers,
    )


def _talk(config: AgentConfig, link: LiveLink) -> TalkControl:
    """Two-way talk (agent/talk/) over the live link: the server's talk_start/talk_stop
    and its 0x10 audio; a camera without `talk:` answers each start `failed`."""
    talk = TalkControl(config.cameras, link.send_text)
    link.handlers["talk_start"] = talk.on_start
    link.handlers["talk_stop"] = talk.on_stop
    link.binary_handlers[TALK_AUDIO] = talk.on_audio
    return talk


def _handler(job: CameraJob, link: LiveLink | None) -> Handler:
    if link is None:
        return lambda _name, sample: job.handle(sample)

    def handle(name: str, sample: Sample) -> None:
        # Live first: detection on this sample can take a while, a viewer should not wait.
        link.feed(name, sample)
        job.handle(sample)

    return handle


def _opened(job: CameraJob, link: LiveLink | None, name: str, source: VideoSource) -> None:
    job.opened(source)
    if link is not None:
        link.opened(name, source)


def _closed(job: CameraJob, link: LiveLink | None, name: str) -> None:
    if link is not None:
        link.closed(name)
    job.closed()  # the clip in progress is finished and kept
