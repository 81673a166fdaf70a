"""Profiles, stream URIs and device information through onvif-zeep-async against the
loopback SOAP camera (tests/onvif_responder.py); wrong credentials, silence, nothing
listening and hostile or broken XML each end in one clear error naming the camera."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest
import zeep.exceptions
from onvif.settings import DEFAULT_SETTINGS
from onvif.transport import ASYNC_TRANSPORT
from zeep.loader import parse_xml

from doorwarden.agent.onvif.device import DeviceReport, OnvifDeviceError, read_device
from tests.onvif_responder import MAIN, SUB, Profile, SoapCamera, envelope

ENTITY_BOMB = (
    b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "SECRETSECRETSECRET">'
    b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
    b'<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" '
    b'xmlns:tds="http://www.onvif.org/ver10/device/wsdl"><env:Body>'
    b"<tds:GetDeviceInformationResponse><tds:Manufacturer>&b;</tds:Manufacturer>"
    b"</tds:GetDeviceInformationResponse></env:Body></env:Envelope>"
)
EXTERNAL = ENTITY_BOMB.replace(
    b'<!ENTITY a "SECRETSECRETSECRET">', b'<!ENTITY a SYSTEM "file:///etc/hostname">'
)


@pytest.fixture
def camera() -> Iterator[SoapCamera]:
    cam = SoapCamera(profiles=[SUB, MAIN, Profile("audio", "AudioOnly", 0, 0, stream=False)])
    yield cam
    cam.close()


def read(cam: SoapCamera, password: str = "secret", **kw: object) -> DeviceReport:  # noqa: S107
    return asyncio.run(read_device(cam.host, cam.port, "admin", password, **kw))  # type: ignore[arg-type]


def test_profiles_uris_and_main_and_sub_streams(camera: SoapCamera) -> None:
    report = read(camera)
    assert report.info.manufacturer == "Acme" and report.info.model == "DB-1"
    assert report.info.serial == "SN0001"
    assert [p.token for p in report.profiles] == ["prof1", "prof0", "audio"]
    assert report.main is not None and report.main.token == "prof0"
    assert (report.main.width, report.main.height, report.main.fps) == (1920, 1080, 25.0)
    assert report.main.encoding == "H264"
    assert report.main.uri == "rtsp://127.0.0.1:554/Streaming/Channels/101"
    assert (
        report.sub is not None and report.sub.uri == "rtsp://127.0.0.1:554/Streaming/Channels/102"
    )
    assert report.profiles[2].uri is None  # no stream for the audio profile: not a candidate
    assert report.main.describe() == "MainStream 1920x1080 H264 25 fps"
    # What onvif-zeep-async asked for, on the wire (GetServices found the media service).
    assert camera.calls[:3] == ["GetSystemDateAndTime", "GetServices", "GetDeviceInformation"]
    assert camera.calls.count("GetStreamUri") == 3


def test_one_profile_is_main_and_there_is_no_sub() -> None:
    cam = SoapCamera(profiles=[MAIN])
    try:
        report = read(cam)
    finally:
        cam.close()
    assert report.main is not None and report.sub is None


def test_wrong_credentials_name_the_camera(camera: SoapCamera) -> None:
    with pytest.raises(OnvifDeviceError) as err:
        asyncio.run(read_device(camera.host, camera.port, "admin", "nope", label="camera 'porch'"))
    assert err.value.kind == "auth"
    assert "camera 'porch'" in str(err.value) and "user name or password" in str(err.value)
    assert camera.auth_failures >= 1


def test_a_camera_that_does_not_answer_times_out() -> None:
    with socket.socket() as mute:  # accepts connections (the backlog), never replies
        mute.bind(("127.0.0.1", 0))
        mute.listen(8)
        port = mute.getsockname()[1]
        with pytest.raises(OnvifDeviceError) as err:
            asyncio.run(read_device("127.0.0.1", port, "admin", "x", timeout_s=1.0))
    assert err.value.kind == "timeout"
    assert f"127.0.0.1:{port}" in str(err.value) and "within 1 s" in str(err.value)


def test_nothing_listening_is_unreachable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(OnvifDeviceError) as err:
        asyncio.run(read_device("127.0.0.1", port, "admin", "x", timeout_s=5.0))
    assert err.value.kind == "unreachable" and f"127.0.0.1:{port}" in str(err.value)


@pytest.mark.parametrize("body", [ENTITY_BOMB, EXTERNAL], ids=["entities", "external"])
def test_a_reply_with_entities_is_refused(camera: SoapCamera, body: bytes) -> None:
    camera.reply_override["GetDeviceInformation"] = body
    with pytest.raises(OnvifDeviceError) as err:
        read(camera)
    assert err.value.kind == "malformed"
    assert "SECRET" not in str(err.value)


def test_zeep_as_onvif_configures_it_refuses_entities() -> None:
    # The parser every reply goes through (zeep.loader.parse_xml with onvif's settings).
    with pytest.raises(zeep.exceptions.EntitiesForbidden):
        parse_xml(ENTITY_BOMB, ASYNC_TRANSPORT, settings=DEFAULT_SETTINGS)


@pytest.mark.parametrize(
    "reply",
    [
        b"<env:Envelope",  # truncated
        b"definitely not xml",
        envelope("<trt:GetProfilesResponse><trt:Profiles><tt:Name>no token</tt:Name>"
                 "</trt:Profiles></trt:GetProfilesResponse>"),
        envelope("<trt:GetProfilesResponse><trt:Profiles token='t'><tt:VideoEncoderConfiguration>"
                 "<tt:Resolution><tt:Width>-5</tt:Width><tt:Height>99999999</tt:Height>"
                 "</tt:Resolution></tt:VideoEncoderConfiguration></trt:Profiles>"
                 "</trt:GetProfilesResponse>"),
    ],
    ids=["truncated", "not-xml", "no-token", "absurd-size"],
)  # fmt: skip
def test_broken_profiles_give_an_error_or_nothing_usable(camera: SoapCamera, reply: bytes) -> None:
    camera.reply_override["GetProfiles"] = reply
    outcome: DeviceReport | OnvifDeviceError
    try:
        outcome = read(camera)
    except OnvifDeviceError as exc:
        outcome = exc
    if isinstance(outcome, OnvifDeviceError):
        assert outcome.kind in ("malformed", "fault")
    else:
        assert all(p.pixels == 0 for p in outcome.profiles)
        assert outcome.sub is None
