"""`doorwarden agent pair` and `agent status` against a real server on loopback.

Also home of the helpers the other agent tests share: a household on a live server with
its owner signed in (`live_household`), and pairing an agent's state directory to it.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import stat
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from doorwarden.agent.delivery.identity import DeviceIdentity, IdentityStore
from doorwarden.agent.delivery.pairing import PairingError, pair, server_url
from doorwarden.cli.app import app
from doorwarden.config import Settings
from tests.factories import PASSWORD, Factory
from tests.live_server import free_port, running_server, self_signed_certificate


@dataclass
class LiveHousehold:
    """A household on a real server (uvicorn on loopback), and its owner's client."""

    url: str
    id: str
    owner: httpx.Client

    def pairing_code(self) -> str:
        response = self.owner.post(f"/api/v1/households/{self.id}/pairing-codes")
        assert response.status_code == 201, response.text
        return str(response.json()["code"])

    def devices(self) -> list[dict[str, Any]]:
        return self._get(f"/api/v1/households/{self.id}/devices")

    def clips(self) -> list[dict[str, Any]]:
        return self._get(f"/api/v1/households/{self.id}/clips", limit=500)

    def alerts(self) -> list[dict[str, Any]]:
        return self._get(f"/api/v1/households/{self.id}/integrity-alerts", limit=500)

    def revoke(self, device_id: str) -> None:
        response = self.owner.delete(f"/api/v1/households/{self.id}/devices/{device_id}")
        assert response.status_code == 204, response.text

    def set_plan(self, kind: str) -> None:
        body = {"kind": kind, "retention_days": 30}
        response = self.owner.put(f"/api/v1/households/{self.id}/plan", json=body)
        assert response.status_code == 200, response.text

    def delete_clip(self, clip_id: str) -> None:
        response = self.owner.delete(f"/api/v1/households/{self.id}/clips/{clip_id}")
        assert response.status_code == 204, response.text

    def _get(self, path: str, **params: Any) -> list[dict[str, Any]]:
        response = self.owner.get(path, params=params)
        assert response.status_code == 200, response.text
        body: list[dict[str, Any]] = response.json()
        return body


def _signed_in(url: str, email: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=30)
    login = client.post("/api/v1/session", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    client.headers["x-csrf-token"] = login.json()["csrf_token"]
    return client


@contextlib.asynccontextmanager
async def live_household(settings: Settings, factory: Factory) -> AsyncIterator[LiveHousehold]:
    owner = await factory.user()
    home = await factory.household(owner)
    with running_server(settings) as url:
        client = _signed_in(url, owner.email)
        try:
            yield LiveHousehold(url, str(home), client)
        finally:
            client.close()


def paired_state(home: LiveHousehold, state: Path, name: str = "Front door") -> DeviceIdentity:
    """Pair a state directory to the household, as `agent pair` does."""
    return pair(IdentityStore(state), server=home.url, code=home.pairing_code(), name=name)


def agent_cli(*args: str) -> Result:
    return CliRunner().invoke(app, ["agent", *args])


def pair_cli(server: str, code: str, state: Path, *more: str) -> Result:
    return agent_cli("pair", "--server", server, "--code", code, "--state", str(state), *more)


@pytest.fixture
async def home(settings: Settings, factory: Factory) -> AsyncIterator[LiveHousehold]:
    async with live_household(settings, factory) as live:
        yield live


def test_pair_with_the_cli_then_status(home: LiveHousehold, tmp_path: Path) -> None:
    state = tmp_path / "state"
    result = pair_cli(home.url, home.pairing_code(), state, "--name", "Front door")
    assert result.exit_code == 0, result.output
    identity = IdentityStore(state).load()
    assert identity is not None
    assert identity.server == home.url and identity.household_id == home.id
    assert identity.token.startswith("dwd_") and identity.token not in result.output
    assert identity.plan.kind == "recording" and identity.mode == "standard"
    assert [d["name"] for d in home.devices()] == ["Front door"]
    assert [d["id"] for d in home.devices()] == [identity.device_id]
    for secret in ("device.key", "device.json"):
        assert stat.S_IMODE((state / secret).stat().st_mode) == 0o600
    # The key registered is the key on disk: the device can call the API with its token.
    device = httpx.get(
        f"{home.url}/api/v1/device", headers={"authorization": f"Bearer {identity.token}"}
    )
    assert device.status_code == 200 and device.json()["device_id"] == identity.device_id

    status = agent_cli("status", "--state", str(state), "--spool", str(tmp_path / "spool"))
    assert status.exit_code == 0, status.output
    assert identity.token not in status.output
    for fact in (home.url, identity.device_id, home.id, "recording", "uploads:    ok"):
        assert fact in status.output
    assert "sealed, waiting: 0 clip(s)" in status.output


def test_pairing_again_makes_a_new_key_and_a_wrong_code_keeps_the_pairing(
    home: LiveHousehold, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    first = paired_state(home, state)
    first_key = (state / "device.key").read_bytes()
    # A typo must not cost the camera its working pairing.
    result = pair_cli(home.url, "AAAA-BBBB-CCCC", state)
    assert result.exit_code == 1
    assert IdentityStore(state).load() == first
    assert (state / "device.key").read_bytes() == first_key

    second = paired_state(home, state, name="Porch")
    assert second.device_id != first.device_id
    assert (state / "device.key").read_bytes() != first_key
    assert IdentityStore(state).load() == second


def test_a_wrong_or_used_code_is_refused_with_the_servers_message(
    home: LiveHousehold, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    wrong = pair_cli(home.url, "WXYZ-2345-6789", state)
    assert wrong.exit_code == 1
    assert "error: This pairing code is not valid" in wrong.output
    assert "Traceback" not in wrong.output
    assert IdentityStore(state).load() is None

    code = home.pairing_code()
    assert pair_cli(home.url, code, state).exit_code == 0
    again = pair_cli(home.url, code, tmp_path / "other")
    assert again.exit_code == 1 and "already used" in again.output
    assert len(home.devices()) == 1


def test_an_unreachable_server_is_reported(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = pair_cli(url, "ABCD-EFGH-JKMN", tmp_path)
    assert result.exit_code == 1
    assert f"error: cannot reach the server at {url}" in result.output
    assert not (tmp_path / "device.json").exists()


def test_plain_http_is_refused_off_this_machine(tmp_path: Path) -> None:
    result = pair_cli("http://cameras.example.org", "ABCD", tmp_path)
    assert result.exit_code == 1
    assert "refusing plain http to cameras.example.org" in result.output
    assert "--insecure-http" in result.output
    # Loopback is this machine; an operator may accept the risk elsewhere.
    assert server_url("http://localhost:8000/") == "http://localhost:8000"
    assert server_url("http://[::1]:8000") == "http://[::1]:8000"
    assert server_url("http://10.0.0.5", insecure_http=True) == "http://10.0.0.5"
    with_path = "https://cams.example.org/doorwarden"
    assert server_url(with_path + "/") == with_path
    for bad in ("ftp://example.org", "example.org", "https://u:p@example.org", "https://x/?a=1"):
        with pytest.raises(PairingError):
            server_url(bad)


@contextlib.contextmanager
def _self_signed_tls_server(tmp_path: Path) -> Iterator[int]:
    """A TLS listener with a certificate nobody trusts; it only does handshakes."""
    cert, key = self_signed_certificate(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            # The client refuses our certificate mid-handshake: what the test wants.
            with conn, contextlib.suppress(ssl.SSLError, OSError):
                context.wrap_socket(conn, server_side=True).close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        done.set()
        thread.join(5)
        listener.close()


def test_an_untrusted_certificate_is_reported_as_a_tls_error(tmp_path: Path) -> None:
    with _self_signed_tls_server(tmp_path) as port:
        url = f"https://127.0.0.1:{port}"
        result = pair_cli(url, "ABCD", tmp_path / "s")
    assert result.exit_code == 1
    assert f"error: TLS error talking to {url}" in result.output
    assert "certificate" in result.output and "SSL_CERT_FILE" in result.output


def test_status_of_an_agent_that_is_not_paired(tmp_path: Path) -> None:
    result = agent_cli("status", "--state", str(tmp_path / "state"), "--spool", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "not paired" in result.output and "doorwarden agent pair" in result.output


def test_pair_uses_the_state_dir_of_the_configuration(home: LiveHousehold, tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text("state_dir: camstate\ncameras:\n  - name: c\n    source: {kind: synthetic}\n")
    code = home.pairing_code()
    result = agent_cli("pair", "--server", home.url, "--code", code, "--config", str(config))
    assert result.exit_code == 0, result.output
    assert IdentityStore(tmp_path / "camstate").load() is not None
    status = agent_cli("status", "--config", str(config))
    assert status.exit_code == 0 and home.id in status.output
