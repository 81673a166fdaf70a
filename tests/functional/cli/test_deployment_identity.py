"""Two server instances with different secret keys (or log origins) on one database: the
second is refused at start (audit/deployment.py, `doorwarden serve`), since it would split
the log, and sessions, sealed keys and push keys would not carry across instances."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from doorwarden.audit.deployment import LogOriginMismatch, SecretKeyMismatch, claim, fingerprint
from doorwarden.db import create_engine, create_sessionmaker
from tests.factories import CHEAP_PASSWORDS_ENV
from tests.live_server import free_port

KEY_A = "first-deployment-key-" + "a" * 40
KEY_B = "second-deployment-key-" + "b" * 40
REFUSAL = "every instance must share one secret key"
SITE = "https://doors.example.org"  # every instance's, behind one balancer
ORIGIN = "doors.example.org/log"


async def test_the_first_key_is_recorded_and_another_refused(db_url: str) -> None:
    """On the configured backend's fresh database (a SQLite file, or PostgreSQL)."""
    engine = create_engine(db_url)
    sessions = create_sessionmaker(engine)
    try:
        assert await claim(sessions, KEY_A, ORIGIN)  # the first instance records its key
        assert not await claim(sessions, KEY_A, ORIGIN)  # the same: accepted, nothing new
        with pytest.raises(SecretKeyMismatch, match=REFUSAL):
            await claim(sessions, KEY_B, ORIGIN)
        # The same key with another origin signs another log (main.log_signer).
        with pytest.raises(LogOriginMismatch, match=r"DOORWARDEN_LOG_ORIGIN to 'doors\.example"):
            await claim(sessions, KEY_A, "door-2.example.org/log")
        async with engine.connect() as conn:
            stored = (await conn.execute(text("SELECT * FROM deployment_identity"))).all()
    finally:
        await engine.dispose()
    # One row, holding a fingerprint: never the key, nor anything else made from it.
    assert len(stored) == 1
    assert stored[0].secret_fingerprint == fingerprint(KEY_A) != fingerprint(KEY_B)
    assert stored[0].log_origin == ORIGIN
    assert KEY_A not in repr(stored)
    assert len(fingerprint(KEY_A)) == 64


async def test_two_first_instances_at_once_agree_on_one(db_url: str) -> None:
    """A race between two first starts: one records, the other reads what it recorded."""
    engines = [create_engine(db_url), create_engine(db_url)]
    try:
        results = await asyncio.gather(
            claim(create_sessionmaker(engines[0]), KEY_A, ORIGIN),
            claim(create_sessionmaker(engines[1]), KEY_B, ORIGIN),
            return_exceptions=True,
        )
    finally:
        for engine in engines:
            await engine.dispose()
    assert sorted(type(r).__name__ for r in results) == ["SecretKeyMismatch", "bool"]
    assert True in results


def _env(data_dir: Path, db_url: str, secret: str, site: str = SITE) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOORWARDEN_")}
    env.update(
        {
            "DOORWARDEN_SECRET_KEY": secret,
            "DOORWARDEN_DATA_DIR": str(data_dir),
            "DOORWARDEN_DATABASE_URL": db_url,
            "DOORWARDEN_PUBLIC_BASE_URL": site,
            **CHEAP_PASSWORDS_ENV,
        }
    )
    return env


def _serve(env: dict[str, str], port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "doorwarden", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _stop(server: subprocess.Popen[str]) -> None:
    if server.poll() is None:
        server.kill()
    server.communicate(timeout=10)  # reaps it and closes its pipe


def _serves(server: subprocess.Popen[str], port: int) -> bool:
    deadline = time.monotonic() + 30
    while server.poll() is None and time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    return False


def test_serve_with_another_key_is_refused_with_why(db_url: str, tmp_path: Path) -> None:
    """`doorwarden serve` itself: the first start records its key and serves; a second
    instance with another key (or the same key and another site) exits non-zero, saying
    why, before it listens; the first key still starts."""
    port = free_port()
    first = _serve(_env(tmp_path / "a", db_url, KEY_A), port)
    try:
        assert _serves(first, port), "the first instance did not start"
    finally:
        _stop(first)

    other_port = free_port()
    second = _serve(_env(tmp_path / "b", db_url, KEY_B), other_port)
    try:
        _out, err = second.communicate(timeout=60)
    finally:
        _stop(second)
    assert second.returncode == 1
    assert "Refusing to start" in err and REFUSAL in err and "split" in err
    assert KEY_A not in err and KEY_B not in err
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{other_port}/healthz", timeout=1)

    elsewhere = _serve(_env(tmp_path / "b", db_url, KEY_A, "https://door-2.example.org"), port)
    try:
        _out, err = elsewhere.communicate(timeout=60)
    finally:
        _stop(elsewhere)
    assert elsewhere.returncode == 1
    assert "signed as origin 'doors.example.org/log'" in err and "split" in err

    again = _serve(_env(tmp_path / "a", db_url, KEY_A), port)
    try:
        assert _serves(again, port), "the recorded key no longer starts"
    finally:
        _stop(again)
