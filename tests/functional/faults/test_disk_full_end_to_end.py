"""Disks that fill, end to end: a real `doorwarden serve`, real agents, real tmpfs mounts.

* The server's data directory (clip store and staging) on a small tmpfs, filled to a few
  KiB and topped up (give or take a clip's size, so that writes are cut short at every
  stage of an upload) while two cameras upload, then released: afterwards every clip the
  cameras recorded is verified on the server exactly once, and no integrity alert was
  raised (a full disk is the server's fault, never the camera's).
* A camera's spool on a small tmpfs that fills while its server is unreachable: the agent
  keeps its newest clips (the evicted ones are the oldest, each recorded for the owner),
  says its disk is full, corrupts nothing, and once there is room and a server again,
  every clip it still holds is delivered exactly once.

Processes, counting and the filler come from bench/fault_rig.py, bench/fault_counts.py
(the fault benchmark's own) and tests/tmpfs.py. Mounting needs root: elsewhere the tests
are skipped with the reason, except in CI. Each takes about a minute; the figures are
printed (`pytest -s`).
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from bench.fault_counts import Ledger, Tally, camera_side, server_side
from bench.fault_rig import DOORWARDEN, Agent, Owner, Server, kept_full, make_scene, wait_until

from doorwarden.formats.clip_files import committed
from tests.tcp_proxy import TcpProxy
from tests.tmpfs import fill, free_bytes, small_tmpfs

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform != "linux", reason="tmpfs mounts and inotify"),
]

FEW_KIB = 4 * 1024  # what "full" leaves free
JITTER = 48 * 1024  # ... give or take a clip: its data may fit and its thumbnail not
FULL_S = 20.0  # how long the server's disk stays full while the cameras upload
RESERVE = 64 * 1024  # the camera's spool_min_free_bytes: about three small clips
CAMERA_ROOM = 160 * 1024  # free on the camera's disk before its own clips fill it
FULL_CAMERA_S = 10.0  # the camera's disk full for good: two or three clips' time


@contextmanager
def serving(root: Path, data_dir: Path) -> Iterator[tuple[Server, Owner]]:
    """A real server (SQLite outside `data_dir`, which may be the disk that fills) with
    an owner and a household."""
    server = Server(root, data_dir, f"sqlite+aiosqlite:///{root / 'doorwarden.db'}")
    server.migrate()
    server.start()
    owner = None
    try:
        owner = Owner(server.url)
        yield server, owner
    finally:
        if owner is not None:
            owner.close()
        server.stop()


@contextmanager
def running(agents: list[Agent]) -> Iterator[list[Agent]]:
    for agent in agents:
        agent.start()
    try:
        yield agents
    finally:
        for agent in agents:
            agent.close()


def _evidence(server: Server, agents: list[Agent], tally: Tally | None) -> str:
    """What to read when an assertion fails: the counts and the lines that matter."""
    words = ("error", "alert", "refused", "held", "deferred", "evicted", "disk_full", "Trace")
    lines = [f"tally: {tally}"]
    for name, log in [("server", server.log), *((a.name, a.log) for a in agents)]:
        text = log.read_text(errors="replace") if log.exists() else ""
        found = [line[:400] for line in text.splitlines() if any(w in line for w in words)]
        lines += [f"--- {name} ({len(found)} lines of note; the last 15)", *found[-15:]]
    return "\n".join(lines)


def test_a_full_server_disk_loses_no_clip_and_alerts_nobody(tmp_path: Path) -> None:
    data = tmp_path / "data"
    scene = make_scene(tmp_path / "scene.mp4")
    with small_tmpfs(data, 32 << 20), serving(tmp_path, data) as (server, owner):
        agents = [
            Agent(tmp_path / f"agent-{i}", f"cam-{i}", scene, tmp_path / f"agent-{i}" / "spool")
            for i in range(2)
        ]
        for agent in agents:
            agent.prepare(server.url, owner.pairing_code())
        ledger = Ledger(agents, server.database_url)
        with running(agents):
            wait_until(lambda: all(a.recorded() for a in agents), 60, "a clip from each camera")
            with kept_full(data, FEW_KIB, jitter_bytes=JITTER):
                before = sum(a.recorded() for a in agents)
                time.sleep(FULL_S)  # uploads run against the full disk meanwhile
                during = sum(a.recorded() for a in agents) - before
                free_when_full = free_bytes(data)
            final = ledger.tally(timeout_s=90)  # released: the backlogs go
            drained = ledger.quiet
        staging_left = _staging_of_verified(data / "staging", server, agents)
        store_debris = [p.name for p in (data / "clips").rglob(".tmp-*")]
    log = server.log.read_text(errors="replace")
    evidence = _evidence(server, agents, final)
    print(f"\nserver disk full: {final}, recorded while full: {during}")  # noqa: T201

    # The fault really happened: clips were recorded and offered while the disk was full.
    assert during >= 2, evidence
    assert free_when_full <= 64 * 1024, free_when_full
    # Every clip the cameras recorded is on the server, verified, once.
    assert drained, f"the cameras could not send their backlog\n{evidence}"
    assert final.recorded >= during
    assert final.verified == final.recorded, evidence
    assert (final.lost, final.duplicated, final.kept, final.evicted) == (0, 0, 0, 0), evidence
    assert final.rows == final.verified, evidence  # no clip left half-received
    # Nobody was told the camera tampered with anything. The server said it was out of
    # room (507 storage_full, decision 1), as one warning line each time, no traceback.
    assert final.alerts == 0, evidence
    assert "storage_full" in log, evidence
    assert "Traceback" not in log, evidence
    # Nothing left behind: staging of verified clips goes at once (decision 5), and failed
    # writes clean up after themselves.
    assert staging_left == [], staging_left
    assert store_debris == [], store_debris


def _staging_of_verified(staging: Path, server: Server, agents: list[Agent]) -> list[str]:
    """Staging files (`<device>/<sequence>.*`) of clips the server has verified. (An
    upload the agents' stop interrupted may legitimately leave a clip staged.)"""
    ids = [a.device_id for a in agents]
    verified = asyncio.run(server_side(server.database_url, ids))
    return [
        f"{path.parent.name}/{path.name}"
        for path in staging.rglob("*")
        if path.is_file()
        and path.name[:12].isdigit()
        and path.parent.name in verified
        and int(path.name[:12]) in verified[path.parent.name].verified_sequences
    ]


def _status_says_disk_full(agent: Agent) -> bool:
    """`doorwarden agent status` (what the owner reads on the camera box) says so."""
    shown = subprocess.run(
        [*DOORWARDEN, "agent", "status", "--config", str(agent.config)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    return "disk full" in shown.stdout.lower()


def _debris(sealed: Path) -> list[str]:
    """Files in the sealed spool that belong to no committed clip: what a write that
    failed half-way would leave (temporary files, a clip without its manifest, a
    manifest set aside as unreadable). Read twice, a second apart: a clip being sealed
    has its files before its manifest for a moment."""
    first = set(_orphans(sealed))
    time.sleep(1)
    return sorted(first & set(_orphans(sealed)))


def _orphans(sealed: Path) -> list[str]:
    kept = {paths.sequence for paths in committed(sealed)}
    return [
        path.name
        for path in sealed.iterdir()
        if path.name != "chain.json"
        and not (path.name[:12].isdigit() and int(path.name[:12]) in kept)
    ]


def _owner_sees(owner: Owner, device_id: str) -> dict[str, Any]:
    devices = owner.client.get(f"/api/v1/households/{owner.household}/devices")
    assert devices.status_code == 200, devices.text
    [device] = [d for d in devices.json() if d["id"] == device_id]
    health: dict[str, Any] = device.get("health") or {}
    return health


def test_a_full_camera_disk_keeps_the_newest_clips_and_delivers_the_rest_once(
    tmp_path: Path,
) -> None:
    scene = make_scene(tmp_path / "scene.mp4")
    root = tmp_path / "agent"
    spool = root / "spool"
    with (
        serving(tmp_path, tmp_path / "data") as (server, owner),
        TcpProxy("127.0.0.1", server.port) as network,
        small_tmpfs(spool, 2 << 20),
    ):
        agent = Agent(root, "cam", scene, spool, extra_config=f"spool_min_free_bytes: {RESERVE}")
        agent.prepare(f"http://127.0.0.1:{network.port}", owner.pairing_code())
        ledger = Ledger([agent], server.database_url)
        network.refuse()  # the server is unreachable: the clips stay on the camera
        with running([agent]):
            wait_until(lambda: agent.recorded() >= 1, 60, "the camera's first clip")
            fill(spool, CAMERA_ROOM)  # another program's files; the camera's clips fill the rest

            # 1. Its own clips fill the disk: the oldest go, the newest stay, each recorded.
            wait_until(
                lambda: len(camera_side(agent).evicted_reported) >= 2,
                90,
                "the agent to evict two sealed clips for room",
            )
            side = camera_side(agent)
            assert side.sealed, "every clip was evicted: none kept"
            assert min(side.sealed) > max(side.evicted_reported), side

            # 2. Full for good (topped up): the agent says so, on the box, and recordings
            # meet the full disk for a few clips' time.
            with kept_full(spool, FEW_KIB):
                wait_until(lambda: _status_says_disk_full(agent), 60, "`agent status`: disk full")
                time.sleep(FULL_CAMERA_S)
            # 3. Room again, the server still away: new clips are kept.
            recorded = agent.recorded()
            wait_until(lambda: agent.recorded() >= recorded + 2, 60, "two clips after release")
            on_camera = camera_side(agent)
            network.restore()
            final = ledger.tally(timeout_s=90)
            drained = ledger.quiet
            debris = _debris(spool / "sealed")
            # The owner is told what was evicted: the report that failed while the server
            # was away goes again with the next heartbeat (60 s, decision 4).
            with contextlib.suppress(TimeoutError):
                wait_until(
                    lambda: bool(_owner_sees(owner, agent.device_id).get("evicted")),
                    75,
                    "the owner to see the evictions",
                )
            health = _owner_sees(owner, agent.device_id)
    evidence = _evidence(server, [agent], final)
    print(f"\ncamera disk full: {final}; on the camera at restore: {on_camera}")  # noqa: T201

    assert drained, f"the camera could not send its backlog\n{evidence}"
    # What the camera kept through it all is newer than anything it evicted.
    if on_camera.sealed and on_camera.evicted_reported:
        assert min(on_camera.sealed) > max(on_camera.evicted_reported), on_camera
    # Every clip the camera still held when the server came back is delivered, once; the
    # only clips missing are those it evicted and recorded for the owner.
    assert final.verified + final.evicted_reported == final.recorded, evidence
    assert (final.lost, final.duplicated, final.kept) == (0, 0, 0), evidence
    assert final.evicted == final.evicted_reported, evidence  # no eviction unreported
    assert final.false_alerts == 0, evidence
    assert health.get("evicted"), f"the owner's camera page shows no eviction: {health}"
    # Nothing corrupt: no unreadable manifest set aside, no sealing refused, no debris.
    agent_log = agent.log.read_text(errors="replace")
    for bad in ("manifest_unreadable", "seal_invalid", "sealing_stopped", "Traceback"):
        assert bad not in agent_log, evidence
    assert debris == [], debris
