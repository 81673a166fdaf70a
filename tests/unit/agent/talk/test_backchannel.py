"""The ONVIF backchannel client against a real ONVIF RTSP server (GStreamer's
GstRTSPOnvifServer, onvif_rtsp_server.py) that decodes and records what it hears: a tone
sent in each codec arrives as that tone; auth; refusals and failures in clear words,
without the credentials."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from structlog.testing import capture_logs

from doorwarden.agent.talk.backchannel import Backchannel
from doorwarden.agent.talk.decode import Resampler
from doorwarden.agent.talk.output import TalkError
from tests.unit.agent.talk.rig import PASSWORD, Camera, Tone, free_port, need_gst_onvif, peak_hz


@pytest.fixture(scope="module", autouse=True)
def _need_gst() -> None:
    need_gst_onvif()


@pytest.fixture
def cameras(tmp_path: Path) -> Iterator[list[Camera]]:
    started: list[Camera] = []
    yield started
    for camera in started:
        camera.kill()


def start(cameras: list[Camera], tmp_path: Path, *args: str) -> Camera:
    camera = Camera(tmp_path / f"cam{len(cameras)}", *args)
    cameras.append(camera)
    return camera


def talk(backchannel: Backchannel, seconds: float, hz: float = 1000.0) -> float:
    """Send a tone as the session would; how long it took."""
    resample = Resampler(backchannel.audio_format)
    started = time.monotonic()
    for frame in Tone(hz=hz).frames(seconds):
        for out in resample(frame):
            backchannel.write(out)
    return time.monotonic() - started


def heard(camera: Camera, seconds: float, timeout_s: float = 3.0) -> tuple[np.ndarray, int]:
    deadline = time.monotonic() + timeout_s
    while True:
        audio, rate = camera.audio()
        if (rate and len(audio) >= rate * seconds) or time.monotonic() > deadline:
            return audio, rate
        time.sleep(0.05)


@pytest.mark.parametrize(("codec", "rate"), [("pcmu", 8000), ("pcma", 8000), ("aac", 16000)])
def test_a_tone_sent_in_each_codec_is_the_tone_the_camera_hears(
    cameras: list[Camera], tmp_path: Path, codec: str, rate: int
) -> None:
    camera = start(cameras, tmp_path, "--codec", codec)
    backchannel = Backchannel(camera.url())
    backchannel.open()
    assert backchannel.codec == codec
    took = talk(backchannel, 1.0, hz=1000)
    backchannel.close()
    # Paced by the audio clock (a camera's buffer is small), not sent in one burst
    # (AAC's encoder holds 0.13 s back until the close flushes it).
    assert 0.75 < took < 1.5
    audio, heard_rate = heard(camera, 0.8)
    assert heard_rate == rate
    assert len(audio) / rate == pytest.approx(1.0, abs=0.15)
    middle = audio[len(audio) // 4 : len(audio) * 3 // 4]
    assert peak_hz(middle, rate) == pytest.approx(1000, abs=15)
    assert np.sqrt(np.mean(middle**2)) > 0.15  # the tone at its level, not noise
    time.sleep(0.2)
    assert camera.methods()[:5] == ["OPTIONS", "DESCRIBE", "SETUP", "PLAY", "TEARDOWN"]


@pytest.mark.parametrize("auth", ["basic", "digest"])
def test_the_camera_asks_for_credentials_and_gets_them(
    cameras: list[Camera], tmp_path: Path, auth: str
) -> None:
    camera = start(cameras, tmp_path, "--auth", auth, "--password", PASSWORD)
    with capture_logs() as logs:
        backchannel = Backchannel(camera.url())
        backchannel.open()
        talk(backchannel, 0.5, hz=600)
        backchannel.close()
    audio, rate = heard(camera, 0.4)
    assert peak_hz(audio, rate) == pytest.approx(600, abs=15)
    assert PASSWORD not in repr(logs)


@pytest.mark.parametrize("auth", ["basic", "digest"])
def test_a_wrong_password_is_a_clear_failure_that_does_not_repeat_it(
    cameras: list[Camera], tmp_path: Path, auth: str
) -> None:
    camera = start(cameras, tmp_path, "--auth", auth, "--password", PASSWORD)
    with capture_logs() as logs, pytest.raises(TalkError) as failure:
        Backchannel(camera.url(password="wrong-Secret-42")).open()
    assert "refused the user name or password" in str(failure.value)
    assert "401" in str(failure.value)
    assert "wrong-Secret-42" not in str(failure.value) + repr(logs)


def test_a_camera_without_a_backchannel_refuses_the_onvif_requirement(
    cameras: list[Camera], tmp_path: Path
) -> None:
    camera = start(cameras, tmp_path, "--mode", "refuse")
    with pytest.raises(TalkError, match=r"does not support the ONVIF audio backchannel \(551"):
        Backchannel(camera.url()).open()


def test_a_camera_that_offers_no_speaker_in_its_sdp_says_so(
    cameras: list[Camera], tmp_path: Path
) -> None:
    camera = start(cameras, tmp_path, "--mode", "no-backchannel")
    with pytest.raises(TalkError, match="offers no audio backchannel"):
        Backchannel(camera.url()).open()


def test_a_speaker_in_a_codec_we_are_told_not_to_send_is_named(
    cameras: list[Camera], tmp_path: Path
) -> None:
    camera = start(cameras, tmp_path, "--codec", "aac")
    with pytest.raises(TalkError, match=r"takes MPEG4-GENERIC, none of which .*\(PCMU\)"):
        Backchannel(camera.url(), codecs=["pcmu"]).open()


def test_no_camera_listening_is_a_clear_failure() -> None:
    url = f"rtsp://doorcam:{PASSWORD}@127.0.0.1:{free_port()}/cam"
    with pytest.raises(TalkError, match=r"cannot reach the camera at 127\.0\.0\.1") as failure:
        Backchannel(url).open()
    assert PASSWORD not in str(failure.value)


def test_a_camera_that_dies_mid_talk_ends_it_with_a_clear_error(
    cameras: list[Camera], tmp_path: Path
) -> None:
    camera = start(cameras, tmp_path)
    backchannel = Backchannel(camera.url(), timeout_s=2.0)
    backchannel.open()
    talk(backchannel, 0.3)
    camera.kill()
    started = time.monotonic()
    with pytest.raises(TalkError, match=r"camera closed the connection|connection to the camera"):
        talk(backchannel, 3.0)
    assert time.monotonic() - started < 1.0
    backchannel.close()  # after the camera died: quick, and no error


def test_keep_alives_hold_a_session_longer_than_its_timeout(
    cameras: list[Camera], tmp_path: Path
) -> None:
    camera = start(cameras, tmp_path, "--session-timeout", "2")
    backchannel = Backchannel(camera.url())
    backchannel.open()
    talk(backchannel, 3.5)
    backchannel.close()
    time.sleep(0.2)
    methods = camera.methods()
    assert methods.count("GET_PARAMETER") >= 2
    assert methods[-2:] == ["TEARDOWN", "closed"]  # the session lived to be torn down
    audio, rate = heard(camera, 3.3)
    assert len(audio) / rate == pytest.approx(3.5, abs=0.2)  # and heard until the end
