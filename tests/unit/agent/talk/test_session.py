"""Talk sessions and their control, with an output that records: states and messages for
the resident, one talker per camera, closing on silence and on talk_stop, floods bounded,
and a failure (or a bug) that ends only the talk."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

import av
import pytest

from doorwarden.agent.config.models import CameraConfig
from doorwarden.agent.talk.backchannel import Backchannel
from doorwarden.agent.talk.control import (
    BUSY,
    NOT_CONFIGURED,
    TALK_AUDIO,
    TalkControl,
    output_for,
)
from doorwarden.agent.talk.output import Pacer, TalkError, TalkOutput
from doorwarden.agent.talk.session import INTERNAL, QUEUE_ITEMS
from doorwarden.agent.talk.speaker import Speaker
from tests.unit.agent.talk.fakes import FakeOutput
from tests.unit.agent.talk.rig import chunks, opus_packets, webm_stream

SESSION, OTHER = "a" * 32, "b" * 32


def camera(
    name: str, talk: dict[str, object] | None, url: str = "rtsp://u:p@cam/s"
) -> CameraConfig:
    return CameraConfig.model_validate(
        {"name": name, "source": {"kind": "rtsp", "url": url}, "talk": talk}
    )


CAMERAS = [camera("front", {"kind": "backchannel"}), camera("back", None)]


class Wire:
    """The link's side: what the control sends, and the talk audio it is given."""

    def __init__(self, output: Callable[[], TalkOutput] | None = None, idle_s: float = 1.0) -> None:
        self.sent: list[dict[str, str]] = []
        self.outputs: list[TalkOutput] = []
        self.changed = threading.Condition()
        factory = output or FakeOutput

        def make(_camera: CameraConfig) -> TalkOutput:
            out = factory()
            self.outputs.append(out)
            return out

        self.control = TalkControl(CAMERAS, self.send, make_output=make, idle_s=idle_s)

    def send(self, text: str) -> bool:
        with self.changed:
            self.sent.append(json.loads(text))
            self.changed.notify_all()
        return True

    def state(self, index: int, timeout_s: float = 5.0) -> dict[str, str]:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.sent) > index, timeout_s), self.sent
            return self.sent[index]

    def start(self, codec: str = "opus", camera: str = "front", session: str = SESSION) -> None:
        self.control.on_start(
            {"type": "talk_start", "camera": camera, "session": session, "codec": codec}
        )

    def audio(self, payload: bytes, index: int = 0) -> None:
        self.control.on_audio(bytes([TALK_AUDIO, index]) + payload)


def test_opus_plays_out_and_silence_closes_the_output_within_a_second() -> None:
    wire = Wire()
    wire.start()
    assert wire.state(0) == {
        "type": "talk_state", "camera": "front", "session": SESSION, "state": "open", "message": "",
    }  # fmt: skip
    for packet in opus_packets(0.5):
        wire.audio(packet)
        time.sleep(0.02)
    last = time.monotonic()
    closed = wire.state(1)
    took = time.monotonic() - last
    assert closed["state"] == "closed"
    assert "no talk audio came for 1 s" in closed["message"]
    assert 0.9 < took < 1.5
    [output] = wire.outputs
    assert isinstance(output, FakeOutput)
    assert output.closed_at is not None and output.closed_at - last < 1.3
    assert output.samples == pytest.approx(4000, abs=160)  # 0.5 s at 8 kHz
    assert wire.control.active("front") is None


def test_talk_stop_closes_at_once() -> None:
    wire = Wire()
    wire.start()
    assert wire.state(0)["state"] == "open"
    wire.audio(opus_packets(0.1)[0])
    wire.control.on_stop({"type": "talk_stop", "camera": "front", "session": OTHER})  # not it
    time.sleep(0.1)
    assert wire.control.active("front") is not None
    stopped = time.monotonic()
    wire.control.on_stop({"type": "talk_stop", "camera": "front", "session": SESSION})
    assert wire.state(1) == {
        "type": "talk_state", "camera": "front", "session": SESSION, "state": "closed",
        "message": "talk ended",
    }  # fmt: skip
    assert time.monotonic() - stopped < 0.2


def test_a_second_talker_is_busy_and_the_first_goes_on() -> None:
    wire = Wire()
    wire.start()
    assert wire.state(0)["state"] == "open"
    wire.start(session=OTHER)
    busy = wire.state(1)
    assert (busy["session"], busy["state"], busy["message"]) == (OTHER, "failed", BUSY)
    wire.start()  # the same session again: nothing new
    time.sleep(0.1)
    assert len(wire.sent) == 2
    assert len(wire.outputs) == 1
    session = wire.control.active("front")
    assert session is not None and session.session == SESSION
    wire.control.stop()
    assert wire.state(2)["state"] == "closed"


def test_a_camera_without_talk_and_bad_starts_are_answered_clearly() -> None:
    wire = Wire()
    wire.start(camera="back")
    assert wire.state(0) == {
        "type": "talk_state", "camera": "back", "session": SESSION, "state": "failed",
        "message": NOT_CONFIGURED,
    }  # fmt: skip
    wire.start(camera="garage")
    assert "no camera named 'garage'" in wire.state(1)["message"]
    wire.start(codec="mp3")
    assert wire.state(2)["message"] == "unknown talk audio format 'mp3'"
    # Without a session to answer to, nothing is sent (the server would not know whose).
    wire.control.on_start({"type": "talk_start", "camera": "front", "session": "x"})
    wire.control.on_start({"type": "talk_start", "camera": 3, "session": SESSION})
    time.sleep(0.1)
    assert len(wire.sent) == 3
    assert wire.outputs == []


def test_an_output_that_fails_to_open_says_why() -> None:
    wire = Wire(
        lambda: FakeOutput(fail="the camera refused SETUP for talk (454 Session Not Found)")
    )
    wire.start()
    failed = wire.state(0)
    assert failed["state"] == "failed"
    assert failed["message"] == "the camera refused SETUP for talk (454 Session Not Found)"
    assert wire.control.active("front") is None
    wire.start(session=OTHER)  # the camera is free again
    assert wire.state(1)["session"] == OTHER


@pytest.mark.parametrize("where", ["open", "write"])
def test_a_bug_ends_only_the_talk(where: str) -> None:
    make = (
        (lambda: FakeOutput(bug=True))
        if where == "open"
        else (lambda: FakeOutput(write_bug_after=1))
    )
    wire = Wire(make)
    wire.start()
    if where == "write":
        assert wire.state(0)["state"] == "open"
        for packet in opus_packets(0.2):
            wire.audio(packet)
    failed = wire.state(1 if where == "write" else 0)
    assert (failed["state"], failed["message"]) == ("failed", INTERNAL)
    assert wire.outputs[0].closed_at is not None  # type: ignore[attr-defined]


def test_an_opus_flood_is_dropped_to_a_bound_and_stale_audio_is_not_played() -> None:
    gate = threading.Event()
    wire = Wire(lambda: FakeOutput(gate=gate))
    wire.start()
    packets = opus_packets(0.5)
    for _ in range(40):  # 20 s of audio at once, while the camera is still answering
        for packet in packets:
            wire.audio(packet)
    session = wire.control.active("front")
    assert session is not None
    assert session.dropped == 40 * len(packets) - QUEUE_ITEMS
    time.sleep(0.3)  # what waited is now older than the output may be late
    gate.set()
    assert wire.state(0)["state"] == "open"
    fresh = time.monotonic()
    for packet in packets[:10]:
        wire.audio(packet)
    assert wire.state(1, timeout_s=3)["state"] == "closed"
    output = wire.outputs[0]
    assert isinstance(output, FakeOutput)
    assert output.samples == pytest.approx(10 * 160, abs=160)  # the fresh 0.2 s only
    assert output.last_write is not None and output.last_write >= fresh


def test_oversized_and_stray_audio_is_ignored() -> None:
    wire = Wire()
    wire.audio(opus_packets(0.1)[0])  # nobody talks
    wire.start()
    assert wire.state(0)["state"] == "open"
    wire.audio(b"\x00" * 4001)  # larger than an Opus packet from a browser
    wire.audio(b"", index=0)
    wire.audio(opus_packets(0.1)[0], index=7)  # no such camera
    assert wire.control.ignored == 4
    session = wire.control.active("front")
    assert session is not None and session.received_bytes == 0
    wire.control.stop()


def test_a_webm_stream_plays_and_a_webm_flood_ends_the_talk() -> None:
    wire = Wire()
    wire.start(codec="webm")
    assert wire.state(0)["state"] == "open"
    for chunk in chunks(webm_stream(0.6), 400):
        wire.audio(chunk)
        time.sleep(0.01)
    assert wire.state(1)["state"] == "closed"
    output = wire.outputs[0]
    assert isinstance(output, FakeOutput)
    assert output.samples == pytest.approx(0.6 * 8000, abs=400)

    gate = threading.Event()
    flooded = Wire(lambda: FakeOutput(gate=gate))
    flooded.start(codec="webm")
    for chunk in chunks(webm_stream(5.0), 200):
        flooded.audio(chunk)
    gate.set()
    assert flooded.state(0)["state"] == "open"
    failed = flooded.state(1)
    assert (failed["state"], failed["message"]) == (
        "failed", "the talk audio came faster than it can be played",
    )  # fmt: skip


def test_the_output_comes_from_the_cameras_configuration() -> None:
    output = output_for(camera("front", {"kind": "backchannel"}, "rtsp://u:p@192.0.2.7/s1"))
    assert isinstance(output, Backchannel)
    assert output.rtsp.url == "rtsp://192.0.2.7:554/s1"
    assert (output.rtsp.user, output.rtsp.password) == ("u", "p")
    own = output_for(
        camera(
            "front",
            {"kind": "backchannel", "url": "rtsp://192.0.2.8:8554/talk", "codecs": ["aac"]},
        )
    )
    assert isinstance(own, Backchannel)
    assert (own.rtsp.url, own.codecs) == ("rtsp://192.0.2.8:8554/talk", ["aac"])
    speaker = output_for(camera("front", {"kind": "speaker", "device": "hw:1"}))
    assert isinstance(speaker, Speaker) and speaker.device == "hw:1"
    with pytest.raises(TalkError, match=r"needs an rtsp:// URL: set talk\.url"):
        output_for(camera("front", {"kind": "backchannel"}, "rtsps://u:p@cam/s"))
    with pytest.raises(TalkError, match="no talk output"):
        output_for(camera("front", None))


class PacedOutput(FakeOutput):
    """Plays at real time, as a camera does: the backchannel's own Pacer sets the pace."""

    def __init__(self) -> None:
        super().__init__()
        self.pacer = Pacer(8000, stop=threading.Event())
        self.written_at: list[float] = []

    def write(self, frame: av.AudioFrame) -> None:
        self.pacer.next(frame.samples)
        super().write(frame)
        self.written_at.append(time.monotonic())


def test_a_backlog_after_a_stalled_uplink_is_dropped_and_the_voice_catches_up() -> None:
    """The browser sends without pause: 0.4 s held up on the way and then delivered at
    once must not stay 0.4 s behind for the rest of the talk."""
    wire = Wire(PacedOutput)
    wire.start()
    assert wire.state(0)["state"] == "open"
    packets = opus_packets(2.0)

    def speak(batch: list[bytes]) -> None:
        for packet in batch:
            wire.audio(packet)
            time.sleep(0.02)

    speak(packets[:25])  # 0.5 s as it is spoken
    time.sleep(0.4)  # the uplink stalls...
    for packet in packets[25:45]:  # ...and delivers the 0.4 s it held, at once
        wire.audio(packet)
    speak(packets[45:])  # then 1.1 s more as it is spoken
    last_sent = time.monotonic()
    assert wire.state(1, timeout_s=5)["state"] == "closed"  # silence closes it
    output = wire.outputs[0]
    assert isinstance(output, PacedOutput)
    session_dropped = output.samples < len(packets) * 160
    assert session_dropped, "the backlog was played whole"
    # Played out no later than a little behind the resident: the lead, the last packet's
    # 20 ms and scheduling, not the 0.4 s stall.
    assert output.written_at[-1] - last_sent < 0.2, output.written_at[-1] - last_sent
