"""ONVIF events as triggers: messages classified (motion, tamper, doorbell, none), and a
real subscription (onvif-zeep-async against tests/onvif_responder.py) whose events make
a real CameraJob on a synthetic source record labelled clips; a camera that goes away
mid-subscription is resubscribed with backoff; broken replies never end the loop."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from lxml import etree

from doorwarden.agent.capture.sources import open_source
from doorwarden.agent.config.models import CameraConfig
from doorwarden.agent.config.onvif import OnvifConfig
from doorwarden.agent.live.mode import CameraSwitches
from doorwarden.agent.onvif.events import CameraEvents, camera_events, classify
from doorwarden.agent.onvif.notification import WSNT, notification_of
from doorwarden.agent.pipeline import CameraJob
from doorwarden.agent.recording.spool import Spool
from doorwarden.agent.ring.doorbell import Doorbell
from tests.onvif_responder import NS, SoapCamera, envelope, notification
from tests.unit.agent.samples import decode_clip
from tests.unit.agent.test_pipeline import camera, synthetic

RECORD = {"pre_roll_s": 1, "post_roll_s": 1, "min_clip_s": 1, "cooldown_s": 30}
MOTION = "tns1:RuleEngine/CellMotionDetector/Motion"
ALARM = "tns1:VideoSource/MotionAlarm"
SCENE = "tns1:VideoSource/GlobalSceneChange/ImagingService"
RULE = "tns1:RuleEngine/MyMotionDetectorRule"
DARK = "tns1:VideoSource/ImageTooDark/AnalyticsService"
BLUR = "tns1:VideoSource/ImageTooBlurry/ImagingService"
TAMPERED = "tns1:RuleEngine/TamperDetector/Tamper"
VISITOR = "tns1:RuleEngine/MyRuleDetector/Visitor"
ON = ("motion", True, False)


def note(xml: str):  # type: ignore[no-untyped-def]
    element = etree.fromstring(f'<r xmlns:wsnt="{WSNT}" xmlns:tt="{NS["tt"]}">{xml}</r>')[0]
    return notification_of(element)


def config(cam: SoapCamera | None = None, **events: object) -> OnvifConfig:
    return OnvifConfig.model_validate(
        {"host": "127.0.0.1", "port": cam.port if cam else 80, "username": "admin",
         "password": "secret", "reconnect_initial_s": 0.1, "reconnect_max_s": 0.8,
         "events": events})  # fmt: skip


@pytest.mark.parametrize(
    ("topic", "data", "op", "doorbell", "expected"),
    [
        (MOTION, {"IsMotion": "true"}, "Changed", False, ("motion", True, False)),
        (MOTION, {"IsMotion": "false"}, "Changed", False, ("motion", False, False)),
        (ALARM, {"State": "true"}, "Initialized", False, ("motion", True, True)),
        (RULE, {"State": "1"}, "Changed", False, ON),
        (SCENE, {"State": "true"}, "Changed", False, ("tamper", True, False)),
        (DARK, {"State": "true"}, "Changed", False, ("tamper", True, False)),
        (BLUR, {"State": "false"}, "Changed", False, ("tamper", False, False)),
        (TAMPERED, {"IsTamper": "true"}, "Changed", False, ("tamper", True, False)),
        (VISITOR, {"State": "true"}, "Changed", True, ("doorbell", True, False)),
        (VISITOR, {"State": "true"}, "Changed", False, None),
        (VISITOR, {"State": "false"}, "Changed", True, None),
        ("tns1:Device/Trigger/DigitalInput", {"LogicalState": "true"}, "Initialized", True, None),
        ("tns1:Monitoring/ProcessorUsage", {"Value": "12"}, "Changed", True, None),
        (MOTION, {"IsMotion": "maybe"}, "Changed", False, ("motion", False, False)),
    ],
)  # fmt: skip
def test_classify(
    topic: str, data: dict[str, str], op: str, doorbell: bool, expected: tuple[object, ...] | None
) -> None:
    n = note(notification(topic, data, operation=op))
    assert n is not None
    event = classify(n, config(), doorbell=doorbell)
    assert (None if event is None else (event.kind, event.active, event.initial)) == expected


def test_topics_are_configurable_and_kinds_can_be_off() -> None:
    n = note(notification("tns1:RuleEngine/tnsacme:Loitering", {"State": "true"}))
    assert n is not None
    assert classify(n, config(), doorbell=False) is None
    event = classify(n, config(motion_topics=["RuleEngine/Loitering"]), doorbell=False)
    assert event is not None and event.kind == "motion"
    scene = note(notification(SCENE, {"State": "true"}))
    assert scene is not None and classify(scene, config(tamper=False), doorbell=False) is None


# -- a real subscription ------------------------------------------------------------------


@pytest.fixture
def cam() -> Iterator[SoapCamera]:
    c = SoapCamera(max_pull_wait_s=1.0)
    yield c
    c.close()


def wait_for(check: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return False


def run_camera(job: CameraJob, at_s: float, act: Callable[[], None], duration_s: float) -> None:
    """Feed a synthetic scene where nothing moves; at `at_s` (media time) call `act` (the
    camera's event goes out on the wire) and hold the stream until it has been handled."""
    cfg = synthetic(scene="static", duration_s=duration_s)
    with open_source(cfg) as source:
        job.opened(source)
        done = False
        for sample in source.samples():
            if not done and sample.time >= at_s:
                act()
                done = True
            job.handle(sample)
    job.closed()


def events_for(cam: SoapCamera, job: CameraJob, **kw: object) -> CameraEvents:
    ev = CameraEvents(
        "door", config(cam, **kw), trigger=job.trigger,
        recording=lambda: job.switches.recording_enabled, pull_timeout_s=1.0,
    )  # fmt: skip
    ev.start()
    assert cam.wait_subscribed(), "no subscription"
    return ev


def test_the_cameras_motion_records_a_clip_where_ours_sees_nothing(
    cam: SoapCamera, tmp_path: Path
) -> None:
    job = CameraJob(camera(synthetic(), record=RECORD), Spool(tmp_path))
    ev = events_for(cam, job)
    try:

        def motion() -> None:
            cam.push(notification(MOTION, {"IsMotion": "true"}))
            assert wait_for(lambda: ev.triggered == ["onvif-motion"])
            cam.push(notification(MOTION, {"IsMotion": "false"}))
            assert wait_for(lambda: not ev.motion_active)

        run_camera(job, 3.0, motion, 7.0)
    finally:
        ev.stop()
    [clip] = job.clips
    assert clip.metadata["labels"] == ["onvif-motion"]
    assert clip.metadata["trigger"] >= 3.0 and clip.start <= 2.5  # with pre-roll
    assert decode_clip(clip.entry.clip).frames
    assert ev.counts["motion"] == 1 and cam.unsubscribed == 1


def test_tamper_records_whatever_the_mode_motion_respects_it(
    cam: SoapCamera, tmp_path: Path
) -> None:
    switches = CameraSwitches()
    switches.recording_enabled = False  # a mode that records nothing
    job = CameraJob(camera(synthetic(), record=RECORD), Spool(tmp_path), switches=switches)
    ev = events_for(cam, job)
    try:

        def events() -> None:
            cam.push(notification(MOTION, {"IsMotion": "true"}),
                     notification(SCENE, {"State": "true"}))  # fmt: skip
            assert wait_for(lambda: ev.counts["tamper"] == 1 and ev.counts["motion"] == 1)

        run_camera(job, 2.0, events, 6.0)
    finally:
        ev.stop()
    assert ev.triggered == ["tamper"]  # motion was heard, but the mode records nothing
    assert [c.metadata["labels"] for c in job.clips] == [["tamper"]]


def test_a_press_rings_the_doorbell(cam: SoapCamera, tmp_path: Path) -> None:
    cfg = CameraConfig.model_validate(
        {"name": "door", "source": {"kind": "synthetic"},
         "onvif": {"host": "127.0.0.1", "port": cam.port, "username": "admin",
                   "password": "secret", "events": {"doorbell": True}}}
    )  # fmt: skip
    job = CameraJob(cfg, Spool(tmp_path / "spool"))
    rang: list[tuple[str, str]] = []
    bell = Doorbell([cfg], tmp_path, trigger=lambda camera, reason: rang.append((camera, reason)))
    [ev] = camera_events([cfg], {"door": job}, bell.press)
    ev.pull.pull_timeout_s = 1.0
    ev.start()
    try:
        assert cam.wait_subscribed()
        cam.push(notification(VISITOR, {"State": "true"}))
        assert wait_for(lambda: bool(bell.queue.pending()))
    finally:
        ev.stop()
    assert [e.source for e in bell.queue.pending()] == ["onvif"]
    assert rang == [("door", "ring")]
    # With ring.onvif set, that subscription takes the presses: this one does not.
    both = cfg.model_copy(update={"ring": cfg.ring.model_copy(update={"onvif": {"host": "x",
        "username": "u", "password": "p"}})})  # fmt: skip
    assert camera_events([both], {"door": job}, bell.press)[0].press is None


def test_a_camera_that_goes_away_is_resubscribed_with_backoff(
    cam: SoapCamera, tmp_path: Path
) -> None:
    got: list[str] = []
    ev = CameraEvents("door", config(cam), trigger=got.append, pull_timeout_s=1.0)
    ev.start()
    try:
        assert cam.wait_subscribed()
        cam.go_down()  # mid-pull: the connection drops, then nothing listens
        assert wait_for(lambda: len(ev.pull.delays) >= 4)
        assert ev.pull.delays[:4] == [0.1, 0.2, 0.4, 0.8]  # doubling to the cap
        assert not ev.pull.subscribed.is_set()
        cam.come_back()  # rebooted: it knows no subscription
        assert cam.wait_subscribed(1)
        assert wait_for(lambda: ev.pull.subscriptions == 2)
        cam.push(notification(SCENE, {"State": "true"}))
        assert wait_for(lambda: got == ["tamper"])
    finally:
        ev.stop()
    assert (ev.pull.last_error or "").startswith("cannot connect to camera 'door'")


def test_a_lost_subscription_is_replaced(cam: SoapCamera) -> None:
    ev = CameraEvents("door", config(cam), trigger=lambda _label: None, pull_timeout_s=1.0)
    ev.start()
    try:
        assert cam.wait_subscribed()
        cam.subscriptions.clear()  # the camera forgot it (a firmware restart of its service)
        assert wait_for(lambda: ev.pull.subscriptions == 2)
    finally:
        ev.stop()
    assert cam.created == 2 and "subscription" in (ev.pull.last_error or "")


@pytest.mark.parametrize(
    "reply",
    [
        b"<env:Envelope><env:Body><tev:PullMessagesResp",
        b"\x00\x01 binary",
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "AAAA"><!ENTITY b "&a;&a;&a;&a;">]>'
        b'<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body>&b;'
        b"</env:Body></env:Envelope>",
        envelope("<tev:PullMessagesResponse><wsnt:NotificationMessage><wsnt:Topic/>"
                 "</wsnt:NotificationMessage><wsnt:NotificationMessage><wsnt:Message>"
                 "<tt:Message><tt:Data><tt:SimpleItem/></tt:Data></tt:Message></wsnt:Message>"
                 "</wsnt:NotificationMessage></tev:PullMessagesResponse>"),
    ],
    ids=["truncated", "binary", "entities", "no-topics"],
)  # fmt: skip
def test_malformed_pull_replies_are_refused_and_the_loop_goes_on(
    cam: SoapCamera, reply: bytes
) -> None:
    got: list[str] = []
    ev = CameraEvents("door", config(cam), trigger=got.append, pull_timeout_s=1.0)
    cam.reply_override["PullMessages"] = reply
    ev.start()
    try:
        assert wait_for(lambda: cam.calls.count("PullMessages") >= 2)
        assert got == []
        del cam.reply_override["PullMessages"]
        cam.push(notification(SCENE, {"State": "true"}))
        assert wait_for(lambda: got == ["tamper"])
    finally:
        ev.stop()
    assert ev.pull._thread is not None and not ev.pull._thread.is_alive()


def test_wrong_credentials_are_retried_and_reported(cam: SoapCamera) -> None:
    bad = config(cam).model_copy(update={"password": "wrong"})
    ev = CameraEvents("door", bad, trigger=lambda _label: None, pull_timeout_s=1.0)
    ev.start()
    try:
        assert wait_for(lambda: len(ev.pull.delays) >= 2)
    finally:
        ev.stop()
    assert cam.created == 0
    assert ev.pull.last_error is not None
    assert ev.pull.last_error.startswith(f"camera 'door' at 127.0.0.1:{cam.port} refused the user")


def test_a_password_file_is_read_at_subscription(cam: SoapCamera, tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("wrong\n")
    cfg = config(cam).model_copy(update={"password": None, "password_file": secret})
    ev = CameraEvents("door", cfg, trigger=lambda _label: None, pull_timeout_s=1.0)
    ev.start()
    try:
        assert wait_for(lambda: len(ev.pull.delays) >= 1)
        secret.write_text("secret\n")  # fixed: the next try reads it
        assert cam.wait_subscribed()
    finally:
        ev.stop()


def test_stop_is_prompt_during_a_pull_and_unsubscribes(cam: SoapCamera) -> None:
    ev = CameraEvents("door", config(cam), trigger=lambda _label: None, pull_timeout_s=30.0)
    cam.max_pull_wait_s = 30.0
    ev.start()
    assert cam.wait_subscribed()
    time.sleep(0.3)  # a pull is in flight, held by the camera
    started = time.monotonic()
    ev.stop()
    assert time.monotonic() - started < 3.0
    assert cam.unsubscribed == 1
