"""The server killed with SIGKILL in the middle of an upload: no partial clip is ever
visible, and after a restart the upload resumes from what the server durably holds."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from doorwarden.crypto.keys import SigningKey, b64d, b64e
from tests.factories import CHEAP_PASSWORDS_ENV
from tests.live_server import free_port
from tests.sealed_clips import seal_clip

PASSWORD = "a long test password"
PART = 256 * 1024


def _env(data_dir: Path, port: int, secret: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOORWARDEN_")}
    env.update(
        {
            "DOORWARDEN_SECRET_KEY": secret,
            "DOORWARDEN_DATA_DIR": str(data_dir),
            "DOORWARDEN_DATABASE_URL": f"sqlite+aiosqlite:///{data_dir / 'doorwarden.db'}",
            "DOORWARDEN_SIGNUP_MODE": "open",
            "DOORWARDEN_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            **CHEAP_PASSWORDS_ENV,
        }
    )
    return env


@contextmanager
def serving(env: dict[str, str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    command = [sys.executable, "-m", "doorwarden", "serve", "--port", str(port)]
    server = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, "doorwarden serve exited"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "doorwarden serve did not start"
            time.sleep(0.1)
        yield server
    finally:
        if server.poll() is None:
            server.kill()
        server.wait(timeout=10)


@pytest.mark.slow
def test_killed_server_mid_upload_shows_no_partial_clip_and_resumes(tmp_path: Path) -> None:
    port = free_port()
    env = _env(tmp_path, port, secrets.token_urlsafe(36))
    subprocess.run(
        [sys.executable, "-m", "doorwarden", "db", "upgrade"], env=env, check=True,
        capture_output=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    with (
        httpx.Client(base_url=base, timeout=30) as owner,
        httpx.Client(base_url=base, timeout=30) as camera,
    ):
        upload_across_a_server_kill(env, port, owner, camera)


def upload_across_a_server_kill(
    env: dict[str, str], port: int, owner: httpx.Client, camera: httpx.Client
) -> None:
    key = SigningKey.generate()
    with serving(env, port) as server:
        owner.post(
            "/api/v1/accounts",
            json={"email": "o@example.org", "display_name": "O", "password": PASSWORD},
        ).raise_for_status()
        session = owner.post(
            "/api/v1/session", json={"email": "o@example.org", "password": PASSWORD}
        )
        owner.headers["x-csrf-token"] = session.json()["csrf_token"]
        home = owner.post("/api/v1/households", json={"name": "Home"}).json()["id"]
        code = owner.post(f"/api/v1/households/{home}/pairing-codes", json={}).json()["code"]
        paired = camera.post(
            "/api/v1/devices/pair",
            json={"code": code, "name": "Door", "public_key": b64e(key.public)},
        ).json()
        camera.headers["authorization"] = f"Bearer {paired['token']}"
        recipients = [b64d(r["public_key"], what="k", length=32) for r in paired["recipients"]]
        sealed = seal_clip(paired["device_id"], key, recipients, 0, size=3 * 1024 * 1024)
        total = len(sealed.ciphertext)
        url = "/api/v1/device/clips/0"
        assert camera.put(url, content=sealed.manifest).status_code == 201
        for offset in range(0, 5 * PART, PART):
            part = sealed.ciphertext[offset : offset + PART]
            headers = {"content-range": f"bytes {offset}-{offset + len(part) - 1}/{total}"}
            assert camera.put(f"{url}/data", content=part, headers=headers).status_code == 200
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=10)

    with serving(env, port):
        assert owner.get(f"/api/v1/households/{home}/clips").json() == []  # nothing partial
        offered = camera.put(url, content=sealed.manifest)
        assert offered.status_code == 200
        received = offered.json()["received"]
        assert received % PART == 0 and received <= 5 * PART  # what the server durably has
        assert owner.get(f"/api/v1/households/{home}/clips").json() == []
        for offset in range(received, total, PART):
            part = sealed.ciphertext[offset : offset + PART]
            headers = {"content-range": f"bytes {offset}-{offset + len(part) - 1}/{total}"}
            assert camera.put(f"{url}/data", content=part, headers=headers).status_code == 200
        assert camera.put(f"{url}/thumbnail", content=sealed.thumbnail).status_code == 204
        done = camera.post(f"{url}/complete")
        assert done.json()["status"] == "verified", done.text
        [clip] = owner.get(f"/api/v1/households/{home}/clips").json()
        video = owner.get(f"/api/v1/households/{home}/clips/{clip['id']}/video")
        assert video.content == sealed.plaintext
        assert owner.get(f"/api/v1/households/{home}/integrity-alerts").json() == []
