"""The server's settings key on the camera box (agent/settings/key.py, identity.py): an
older pairing fetches it once from a real HTTP server on loopback, then keeps it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from doorwarden.agent.delivery.identity import DeviceIdentity, IdentityStore, Plan
from doorwarden.agent.settings.key import SettingsKey
from doorwarden.crypto.keys import SigningKey, b64e

TOKEN = "dwd_key-test-token"


class DeviceApi:
    def __init__(self, key: str | None) -> None:
        self.key = key
        self.requests: list[str] = []


@pytest.fixture
def api() -> Iterator[tuple[DeviceApi, str]]:
    state = DeviceApi(b64e(SigningKey.generate().public))

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            state.requests.append(f"{self.path} {self.headers.get('authorization')}")
            body = {"mode": "standard", "settings_key": state.key}
            data = json.dumps({k: v for k, v in body.items() if v is not None}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def identity(server: str, settings_key: bytes | None = None) -> DeviceIdentity:
    return DeviceIdentity(server, "device", "household", TOKEN, "standard", [],
                          Plan("recording", None), settings_key)  # fmt: skip


def test_an_older_pairing_fetches_the_key_once_and_keeps_it(
    api: tuple[DeviceApi, str], tmp_path: Path
) -> None:
    state, url = api
    store = IdentityStore(tmp_path)
    store.save(identity(url))
    key = SettingsKey(store.load(), store)
    first = key.get()
    assert first is not None and b64e(first) == state.key
    assert state.requests == [f"/api/v1/device Bearer {TOKEN}"]
    assert key.get() == first and len(state.requests) == 1  # once
    reloaded = store.load()
    assert reloaded is not None and reloaded.settings_key == first
    # The server offering another key later changes nothing: it is pinned.
    state.key = b64e(SigningKey.generate().public)
    assert SettingsKey(store.load(), store).get() == first and len(state.requests) == 1
    # A save without the key (the uploader refreshing the plan) keeps the pinned one.
    store.save(identity(url))
    assert store.load().settings_key == first  # type: ignore[union-attr]
    store.forget()
    assert store.load() is None


def test_no_key_from_the_server_means_none_and_a_retry_next_time(
    api: tuple[DeviceApi, str], tmp_path: Path
) -> None:
    state, url = api
    state.key = None
    key = SettingsKey(identity(url), IdentityStore(tmp_path))
    assert key.get() is None and key.error is not None
    state.key = b64e(b"\x01" * 32)
    assert key.get() == b"\x01" * 32
    assert len(state.requests) == 2


def test_a_bad_key_in_device_json_is_refused_with_its_field(tmp_path: Path) -> None:
    body = identity("https://dw.example.org").to_json() | {"settings_key": "short"}
    with pytest.raises(ValueError, match="settings_key"):
        DeviceIdentity.from_json(body)
    good = identity("https://dw.example.org", b"\x02" * 32)
    assert DeviceIdentity.from_json(good.to_json()) == good
