"""The configuration stub: written from a real device report, valid for `agent run`'s
loader, the ONVIF password referenced by file, never replacing a file without force."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import pytest

from doorwarden.agent.config.file import load_agent_config
from doorwarden.agent.onvif.device import DeviceInfo, DeviceReport, read_device
from doorwarden.agent.onvif.discovery import Discovered
from doorwarden.agent.onvif.stub import (
    StubCamera,
    StubError,
    camera_name,
    render,
    with_credentials,
    write_stub,
)
from tests.onvif_responder import SoapCamera

PASSWORD = "s3cr:t@/x"  # characters a URL must escape


def report() -> DeviceReport:
    cam = SoapCamera(password=PASSWORD)
    try:
        return asyncio.run(read_device(cam.host, cam.port, "admin", PASSWORD))
    finally:
        cam.close()


def stub_text(tmp_path: Path) -> tuple[str, Path]:
    secret = tmp_path / "onvif-password"
    secret.write_text(PASSWORD + "\n")
    found = Discovered("urn:uuid:1", scopes=["onvif://www.onvif.org/name/Front%20Door"])
    cams = [StubCamera(camera_name(found, report(), set()), found, report())]
    return render(cams, username="admin", password=PASSWORD, password_file=secret), secret


def test_the_stub_is_a_valid_configuration(tmp_path: Path) -> None:
    text, secret = stub_text(tmp_path)
    path = tmp_path / "agent.yaml"
    write_stub(path, text)
    config = load_agent_config(path)
    [cam] = config.cameras
    assert cam.name == "front-door"
    assert cam.source.kind == "rtsp"
    assert cam.source.url == "rtsp://admin:s3cr%3At%40%2Fx@127.0.0.1:554/Streaming/Channels/101"
    # The sub profile is the camera's substream: detection runs on it.
    assert cam.substream is not None and cam.substream.kind == "rtsp"
    assert cam.substream.url == "rtsp://admin:s3cr%3At%40%2Fx@127.0.0.1:554/Streaming/Channels/102"
    assert "sub-stream: SubStream 640x360 H264 15 fps" in text
    assert cam.onvif is not None
    assert cam.onvif.password is None and cam.onvif.password_file == secret
    assert cam.onvif.secret() == PASSWORD
    assert cam.onvif.events.motion and cam.onvif.events.tamper and not cam.onvif.events.doorbell
    # The password is in the RTSP URL only (escaped), nowhere in clear.
    assert PASSWORD not in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_an_existing_file_is_kept_without_force(tmp_path: Path) -> None:
    text, _ = stub_text(tmp_path)
    path = tmp_path / "agent.yaml"
    path.write_text("# mine\n")
    with pytest.raises(StubError, match="exists"):
        write_stub(path, text)
    assert path.read_text() == "# mine\n"
    write_stub(path, text, force=True)
    assert load_agent_config(path).cameras[0].name == "front-door"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".discover-")] == []


def test_an_invalid_stub_is_not_written(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    with pytest.raises(StubError, match="does not validate"):
        write_stub(path, "cameras: []\n")
    assert not path.exists()
    with pytest.raises(StubError, match="YAML"):
        write_stub(tmp_path / "agent.toml", "x")


def test_nothing_to_write() -> None:
    empty = DeviceReport("127.0.0.1", 80, DeviceInfo())
    with pytest.raises(StubError, match="no camera"):
        render([StubCamera("x", None, empty)], username="u", password="p", password_file=None)


def test_names_are_valid_and_unique() -> None:
    rep = DeviceReport("192.0.2.7", 80, DeviceInfo(model="DS-2CD/2143 (B)"))
    taken: set[str] = set()
    weird = Discovered("u", scopes=["onvif://www.onvif.org/name/%E2%98%83%20!!"])
    names = [camera_name(None, rep, taken), camera_name(None, rep, taken),
             camera_name(weird, DeviceReport("::1", 80, DeviceInfo()), taken)]  # fmt: skip
    assert names == ["ds-2cd-2143-b", "ds-2cd-2143-b-2", "1"]


def test_credentials_replace_what_the_uri_had() -> None:
    assert with_credentials("rtsp://old:pw@10.0.0.2:554/a?b=1", "new", "p w") == (
        "rtsp://new:p%20w@10.0.0.2:554/a?b=1"
    )
    assert with_credentials("rtsp://[fe80::2]/a", "u", None) == "rtsp://u@[fe80::2]/a"
