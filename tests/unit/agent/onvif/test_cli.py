"""`doorwarden agent discover` end to end, through typer's CliRunner: a real UDP probe
to the loopback discovery responder, real SOAP to the loopback camera it announces."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from doorwarden.agent.config.file import load_agent_config
from doorwarden.cli.app import app
from tests.onvif_responder import DiscoveryResponder, SoapCamera


@pytest.fixture
def lan() -> Iterator[tuple[DiscoveryResponder, SoapCamera]]:
    cam = SoapCamera()
    scopes = ["onvif://www.onvif.org/name/Porch", "onvif://www.onvif.org/hardware/DB-1"]
    responder = DiscoveryResponder(
        [("urn:uuid:porch", [f"{cam.base}/onvif/device_service"], scopes)], extra=[b"noise"]
    )
    yield responder, cam
    responder.close()
    cam.close()


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["agent", "discover", "--timeout", "0.5", *args])
    return result.exit_code, result.stdout, result.stderr


def secret(tmp_path: Path, password: str = "secret") -> str:  # noqa: S107 - the test camera's
    path = tmp_path / "pw"
    path.write_text(password + "\n")
    return str(path)


Lan = tuple[DiscoveryResponder, SoapCamera]


def test_without_credentials_it_lists_what_is_discoverable(lan: Lan) -> None:
    responder, cam = lan
    code, out, _ = run("--address", responder.address)
    assert code == 0
    assert "Porch" in out and f"127.0.0.1:{cam.port}" in out and "DB-1" in out
    assert "need the camera's credentials" in out
    assert cam.calls == []  # nothing asked of the camera without credentials


def test_with_credentials_it_prints_urls_and_writes_a_stub(
    lan: tuple[DiscoveryResponder, SoapCamera], tmp_path: Path
) -> None:
    responder, _ = lan
    stub = tmp_path / "agent.yaml"
    args = ("--address", responder.address, "--user", "admin", "--password-file", secret(tmp_path))
    code, out, err = run(*args, "--write", str(stub))
    assert code == 0, err
    assert "rtsp://127.0.0.1:554/Streaming/Channels/101" in out
    assert "rtsp://127.0.0.1:554/Streaming/Channels/102" in out
    assert "MainStream 1920x1080 H264 25 fps" in out
    assert f"wrote {stub}" in out
    [camera] = load_agent_config(stub).cameras
    assert camera.name == "porch" and camera.onvif is not None
    # Run again: the file is kept without --force, replaced with it.
    before = stub.read_text()
    code, _, err = run(*args, "--write", str(stub))
    assert code == 1 and "exists" in err and stub.read_text() == before
    code, _, err = run(*args, "--write", str(stub), "--force")
    assert code == 0, err


def test_wrong_credentials_name_the_camera(
    lan: tuple[DiscoveryResponder, SoapCamera], tmp_path: Path
) -> None:
    responder, cam = lan
    code, _, err = run("--address", responder.address, "--user", "admin",
                       "--password-file", secret(tmp_path, "wrong"))  # fmt: skip
    assert code == 1
    assert f"camera 'Porch' at 127.0.0.1:{cam.port} refused the user name or password" in err


def test_nobody_answers(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        code, _, err = run("--address", f"127.0.0.1:{silent.getsockname()[1]}")
    assert code == 1 and "no ONVIF camera answered" in err


@pytest.mark.parametrize(
    "args",
    [
        ["--user", "admin"],
        ["--write", "x.yaml"],
        ["--password-file", "/nonexistent", "--user", "u"],
    ],
)
def test_usage_errors(args: list[str]) -> None:
    code, _, err = run("--address", "127.0.0.1:9", *args)
    assert code == 2 and "error:" in err
