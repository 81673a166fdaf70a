"""The server holds no plaintext of an end-to-end household's video (issue 21): a real
agent seals and uploads a clip (its own delivery code path, tests/functional/devices/
e2e_agent.py) to a real server with a local clip store; then every file under the
server's data directory (clip store, staging, everything), the database file (SQLite,
with its journal files) or a pg_dump of the test database (PostgreSQL) is searched for
the clip's known plaintext: 64-byte windows of the MP4's mdat, and of the thumbnail JPEG.

The scanner is tested on its own first: it must find a plaintext copy planted in the
scanned directory, or a clean scan would prove nothing."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from doorwarden.config import Settings
from tests.factories import Factory
from tests.functional.devices.e2e_agent import (
    Plain,
    deliver,
    e2e_household,
    paired_delivery,
    record,
    signed_in,
)
from tests.live_server import running_server

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:websockets")
WINDOW = 64


def needles(plain: Plain) -> dict[str, bytes]:
    """Windows of the clip's plaintext that cannot occur by chance (random bytes)."""
    mdat = plain.mp4.index(b"mdat") + 4
    body = plain.mp4[mdat:]
    found = {
        f"mdat@{offset}": body[offset : offset + WINDOW]
        for offset in (0, len(body) // 3, len(body) // 2, len(body) - WINDOW)
    }
    jpeg = plain.jpeg
    found |= {f"jpeg@{offset}": jpeg[offset : offset + WINDOW] for offset in (16, len(jpeg) // 2)}
    return found


def scan(paths: Iterable[Path], wanted: dict[str, bytes]) -> list[tuple[str, str]]:
    """(file, needle) for every needle found in every regular file under `paths`."""
    hits = []
    for root in paths:
        files = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
        for path in files:
            data = path.read_bytes()
            hits += [(str(path), name) for name, needle in wanted.items() if needle in data]
    return hits


def database_copies(settings: Settings, out: Path) -> list[Path]:
    """The database as bytes on disk: the SQLite file and its journals, or a pg_dump."""
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        main = Path(url.database or "")
        assert main.is_file(), main
        return [p for p in main.parent.glob(main.name + "*") if p.is_file()]
    dump = out / "dump.sql"
    libpq = url.set(drivername="postgresql").render_as_string(hide_password=False)
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        pytest.skip("pg_dump is not installed: the PostgreSQL database cannot be scanned")
    done = subprocess.run(
        [pg_dump, "--data-only", "--file", str(dump), libpq], capture_output=True, check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    return [dump]


def test_the_scanner_finds_a_plaintext_copy(tmp_path: Path) -> None:
    mdat = os.urandom(5000)
    plain = Plain(b"\x00\x00\x00\x18ftypisom" + b"mdat" + mdat, b"\xff\xd8" + os.urandom(500))
    wanted = needles(plain)
    store = tmp_path / "store" / "a" / "b"
    store.mkdir(parents=True)
    (store / "sealed.dws").write_bytes(os.urandom(20_000))
    assert scan([tmp_path], wanted) == []
    # A plaintext copy somewhere deep, with bytes around it; and a thumbnail apart.
    (store / "leak.bin").write_bytes(os.urandom(33) + plain.mp4 + os.urandom(7))
    (tmp_path / "thumb.jpg").write_bytes(plain.jpeg)
    hits = scan([tmp_path], wanted)
    assert {name for _, name in hits} == set(wanted)
    assert {Path(f).name for f, _ in hits} == {"leak.bin", "thumb.jpg"}


async def test_the_server_holds_no_plaintext_of_an_end_to_end_clip(
    settings: Settings, factory: Factory, tmp_path_factory: pytest.TempPathFactory
) -> None:
    home, users, _keys = await e2e_household(factory, members=2)
    agent_root = tmp_path_factory.mktemp("agent")  # the camera's disk, not the server's
    live = settings.model_copy(update={"development": True})
    with running_server(live) as url:
        owner = await asyncio.to_thread(signed_in, url, users[0].email)

        def run() -> list[Plain]:
            delivery = paired_delivery(url, owner, home, agent_root)
            try:
                clips = [record(delivery), record(delivery, size=400_000)]
                deliver(delivery, 2)
                return clips
            finally:
                delivery.stop()

        clips = await asyncio.to_thread(run)
        listed = await asyncio.to_thread(owner.get, f"/api/v1/households/{home}/clips")
        assert len(listed.json()) == 2, listed.text
        await asyncio.to_thread(owner.close)

    stored = [p for p in settings.data_dir.rglob("*") if p.is_file()]
    sizes = sum(p.stat().st_size for p in stored)
    assert sizes > sum(len(c.mp4) for c in clips), "the clips are not in the scanned store"
    out = tmp_path_factory.mktemp("dump")
    scanned = [settings.data_dir, *database_copies(settings, out)]
    wanted = {f"clip{i}:{k}": v for i, c in enumerate(clips) for k, v in needles(c).items()}
    assert scan(scanned, wanted) == []
