"""A camera's ONVIF events as triggers, beside the agent's own motion detection: one
PullPoint subscription per camera (agent/onvif/pullpoint.py), each message classified:

* motion (`tns1:VideoSource/MotionAlarm`, `tns1:RuleEngine/CellMotionDetector/Motion`
  IsMotion, ...): the camera records a clip labelled "onvif-motion" while the camera
  reports motion (re-triggered every second, so the clip runs on for post_roll_s after
  the camera's motion ends), when the household's mode records. The camera's detector
  sees what ours may miss (at night, through its own zones), and ours stays on: either
  starts a clip.
* tamper (`tns1:VideoSource/GlobalSceneChange/*`, `ImageTooDark`, `ImageTooBlurry`,
  `tns1:RuleEngine/TamperDetector`): a clip labelled "tamper" whatever the mode (a
  covered or turned camera is what an owner most needs to know about) and a warning.
* doorbell (as agent/ring/onvif.py): the doorbell's press, so the ring path (debounce,
  clip labelled ring, event to the server) is the same as for any other button.

`Initialized` messages (the state a camera reports when a subscription starts, again
after every resubscription) start nothing: only a change is an event. A message that
matches no topic, has no topic or cannot be read is ignored.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import structlog

from doorwarden.agent.capture.rtsp import Backoff
from doorwarden.agent.config.onvif import OnvifConfig
from doorwarden.agent.onvif.notification import (
    Notification,
    is_active_press,
    notification_of,
    state_of,
    topic_matches,
)
from doorwarden.agent.onvif.pullpoint import PULL_TIMEOUT_S, PullPoint

log = structlog.get_logger("doorwarden.agent.onvif.events")

MOTION_LABEL = "onvif-motion"
TAMPER_LABEL = "tamper"
RETRIGGER_S = 1.0  # while the camera reports motion: well inside any post-roll
MOTION_HOLD_MAX_S = 300.0  # a motion whose end was never heard (a lost message) ends here
EXTRA_HINT = "install the ONVIF extra: pip install 'doorwarden[agent-ring]'"

Kind = Literal["motion", "tamper", "doorbell"]
Trigger = Callable[[str], object]  # (label): record a clip now
Press = Callable[[str, str], object]  # (camera, source): the doorbell's press


@dataclass(frozen=True)
class OnvifEvent:
    kind: Kind
    active: bool  # motion/tamper started (True) or ended (False); a press is True
    initial: bool  # an `Initialized` state report, not a change
    note: Notification


def classify(note: Notification, config: OnvifConfig, *, doorbell: bool) -> OnvifEvent | None:
    """What a notification means for this camera, by its configured topics; None when
    it is none of motion, tamper or (with `doorbell`) a press."""
    events = config.events
    initial = note.operation == "Initialized"
    if doorbell and topic_matches(note, events.doorbell_topics):
        if is_active_press(note, events.doorbell_topics, events.input_token):
            return OnvifEvent("doorbell", True, False, note)
        return None  # a release, the initial state, another input
    for kind, on, topics in (
        ("tamper", events.tamper, events.tamper_topics),
        ("motion", events.motion, events.motion_topics),
    ):
        if on and topic_matches(note, topics):
            state = state_of(note)
            # No state item: the topic is the event itself (some cameras send a bare
            # "Tamper"); an unreadable state is not an event.
            active = state if state is not None else not note.data
            return OnvifEvent(kind, active, initial, note)  # type: ignore[arg-type]
    return None


class CameraEvents:
    """One camera's subscription and what its events do. `trigger(label)` records a
    clip (CameraJob.trigger); `recording()` says whether the mode records now (motion
    respects it; tamper does not); `press` is the doorbell's (None: presses ignored)."""

    def __init__(
        self,
        camera: str,
        config: OnvifConfig,
        *,
        trigger: Trigger,
        recording: Callable[[], bool] = lambda: True,
        press: Press | None = None,
        pull_timeout_s: float = PULL_TIMEOUT_S,
        retrigger_s: float = RETRIGGER_S,
    ) -> None:
        self.camera = camera
        self.config = config
        self.trigger = trigger
        self.recording = recording
        self.press = press
        self.retrigger_s = retrigger_s
        self.counts: dict[str, int] = {"motion": 0, "tamper": 0, "doorbell": 0, "ignored": 0}
        self.triggered: list[str] = []  # labels asked for, in order (status, tests)
        self.motion_active = False
        self._motion_since = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._hold: threading.Thread | None = None
        self.pull = PullPoint(
            camera, host=config.host, port=config.port, username=config.username,
            password=config.secret, handle=self.handle, event="onvif",
            backoff=Backoff(config.reconnect_initial_s, config.reconnect_max_s),
            pull_timeout_s=pull_timeout_s,
        )  # fmt: skip

    def start(self) -> None:
        """Subscribe (on a thread of its own); ImportError without onvif-zeep-async."""
        self.pull.start()
        self._hold = threading.Thread(
            target=self._hold_motion, name=f"doorwarden-onvif-hold-{self.camera}", daemon=True
        )
        self._hold.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self.pull.stop(timeout_s)
        if self._hold is not None:
            self._hold.join(timeout_s)

    def handle(self, messages: Iterable[Any]) -> list[OnvifEvent]:
        """PullMessages' NotificationMessages: each classified and acted on."""
        done = []
        for message in messages:
            try:
                note = notification_of(message)
            except (AttributeError, TypeError, ValueError):
                note = None  # a message zeep could not shape: not ours to crash on
            event = (
                classify(note, self.config, doorbell=self.press is not None)
                if note is not None
                else None
            )
            if event is None:
                self.counts["ignored"] += 1
                continue
            self._act(event)
            done.append(event)
        return done

    def _act(self, event: OnvifEvent) -> None:
        topic = event.note.topic
        if event.kind == "doorbell":
            self.counts["doorbell"] += 1
            log.info("onvif.press", camera=self.camera, topic=topic)
            if self.press is not None:
                self.press(self.camera, "onvif")
        elif event.kind == "tamper":
            if event.initial:
                if event.active:
                    log.warning("onvif.tamper_state", camera=self.camera, topic=topic,
                                note="the camera reports tampering at subscription")  # fmt: skip
                return
            if not event.active:
                log.info("onvif.tamper_cleared", camera=self.camera, topic=topic)
                return
            self.counts["tamper"] += 1
            log.warning(
                "onvif.tamper", camera=self.camera, topic=topic, data=event.note.data,
                effect="recording a clip labelled tamper",
            )  # fmt: skip
            self._trigger(TAMPER_LABEL)
        else:
            self._motion(event)

    def _motion(self, event: OnvifEvent) -> None:
        with self._lock:
            if not event.active:
                self.motion_active = False
                return
            if event.initial:
                return  # motion already going on when we subscribed: not a new event
            self.counts["motion"] += 1
            started = not self.motion_active
            self.motion_active, self._motion_since = True, time.monotonic()
        if started:
            log.info("onvif.motion", camera=self.camera, topic=event.note.topic)
        self._trigger_motion()

    def _trigger_motion(self) -> None:
        if self.recording():
            self._trigger(MOTION_LABEL)

    def _trigger(self, label: str) -> None:
        self.triggered.append(label)
        try:
            self.trigger(label)
        except Exception:
            log.exception("onvif.trigger_failed", camera=self.camera, label=label)

    def _hold_motion(self) -> None:
        """Keep the clip going while the camera reports motion (its end stops it)."""
        while not self._stop.wait(self.retrigger_s):
            with self._lock:
                if not self.motion_active:
                    continue
                if time.monotonic() - self._motion_since > MOTION_HOLD_MAX_S:
                    self.motion_active = False
                    log.info("onvif.motion_expired", camera=self.camera)
                    continue
            self._trigger_motion()


def camera_events(
    cameras: Sequence[Any],
    jobs: dict[str, Any],
    press: Press | None,
) -> list[CameraEvents]:
    """The subscriptions of the cameras with `onvif:` (CameraConfig), each triggering
    its camera's job; not started. A camera whose `ring.onvif` is set keeps its presses
    there (its own subscription), so they are not taken twice."""
    found = []
    for camera in cameras:
        if camera.onvif is None:
            continue
        job = jobs[camera.name]
        own_press = press if camera.onvif.events.doorbell and camera.ring.onvif is None else None
        found.append(
            CameraEvents(
                camera.name,
                camera.onvif,
                trigger=job.trigger,
                recording=_recording(job),
                press=own_press,
            )
        )
    return found


def _recording(job: Any) -> Callable[[], bool]:
    """Whether the household's mode records now (CameraJob.switches, read each time)."""
    return lambda: bool(job.switches.recording_enabled)


def start_all(events: Sequence[CameraEvents]) -> list[CameraEvents]:
    """Start each; one that cannot (the package missing) is logged and left out."""
    started = []
    for each in events:
        try:
            each.start()
        except ImportError as exc:
            log.error("onvif.unavailable", camera=each.camera, error=str(exc), hint=EXTRA_HINT)
            continue
        started.append(each)
    return started
