"""kill -9, again and again: every clip the agent recorded reaches the server exactly once.

The agent runs as a real process (`python -m doorwarden agent run --config ...`) on a paced
synthetic camera that produces a clip every half second, paired to a real server on
loopback. It is killed with SIGKILL at least ITERATIONS times and restarted each time;
the kills are spread over everything the agent does:

* `random`: after a random delay (seeded), landing during start-up and recovery, during
  recording (the clip in progress is lost: it was never recorded, never committed), and
  wherever else the agent happened to be;
* `sealing`: the sealer's own test hook (DOORWARDEN_TEST_CRASH_AT) kills the process at
  each step of sealing in turn, from a half-written sealed clip to just after the plain
  entry's removal;
* `upload`: as soon as the server has staged part of a clip (its staging file exists),
  i.e. between the first data part and `complete`.

A last run with `--once` on a finite scene delivers what is left. Then, on the server:
as many clips as the agent committed to its plain spool (counted by the kernel, below),
sequence numbers 0..n-1 without a hole, every one verified, one chain without forks or
broken links, no integrity alert, no two clips made from the same recording; and on the
agent: nothing left in either spool.

Which clips were recorded is observed independently of the agent's code: an inotify
watch on the plain spool directory sees every sidecar renamed into place (the commit
point, spool.py). The kernel queues the event even when the entry is sealed and removed
a millisecond later, or the process dies right after the rename.

About two minutes on a 2-core machine; DOORWARDEN_CRASH_LOOP_ITERATIONS=N changes the
number of kills (50 by default) when hunting a rare interleaving. The figures (kills,
clips, where the kills landed, how restarts recovered) are printed (`pytest -s`).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from doorwarden.agent.delivery.identity import DeviceIdentity
from doorwarden.agent.delivery.sealer import CRASH_ENV, CRASH_STEPS
from doorwarden.clips.models import Clip, ClipStatus
from doorwarden.config import Settings
from doorwarden.crypto.keys import b64d
from doorwarden.crypto.manifest import SignedManifest, check_chain
from doorwarden.devices.models import Device
from tests.factories import Factory
from tests.functional.devices.test_agent_pairing import LiveHousehold, live_household, paired_state
from tests.spool_commits import Commits

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="counts commits with inotify")

ITERATIONS = int(os.environ.get("DOORWARDEN_CRASH_LOOP_ITERATIONS", "50"))
SEED = 20261125
RANDOM_DELAY_S = (0.5, 5.0)
WAIT_S = 8.0  # the longest a `sealing` or `upload` iteration waits for its moment

CAMERA = """\
spool_dir: {root}/spool
state_dir: {root}/state
upload: {{part_bytes: 1024, backoff_initial_s: 0.1, backoff_max_s: 1}}
cameras:
  - name: door
    source: {{kind: synthetic, scene: object, enter_at_s: 0, duration_s: {duration},
              width: 160, height: 96, fps: 10, pace: {pace}}}
    motion: {{analysis_width: 160}}
    record: {{pre_roll_s: 0, post_roll_s: 0.3, min_clip_s: 0.3, max_clip_s: 0.5, cooldown_s: 0}}
    detect: {{kind: none}}
"""

RECOVERY_MARKERS = (
    "upload.resumed",  # an upload continued from the server's offset
    "upload.resync",  # a part that landed after all: continued from the server's offset
    "already_verified=True",  # verified on the server before the kill: only removed locally
    "spool.sealed_recovered",  # sealing debris cleared, or a plain entry already sealed
    "spool_recovered",  # a recording in progress discarded
)


@dataclass
class Loop:
    root: Path
    staging: Path  # the server's staging directory for this device
    rng: random.Random = field(default_factory=lambda: random.Random(SEED))
    kinds: Counter[str] = field(default_factory=Counter)
    landed: Counter[str] = field(default_factory=Counter)  # what was going on at the kill
    hooks: Counter[str] = field(default_factory=Counter)

    @property
    def spool(self) -> Path:
        return self.root / "spool"

    def agent(self, config: Path, *, crash_at: str | None = None, once: bool = False) -> Any:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop(CRASH_ENV, None)
        if crash_at is not None:
            env[CRASH_ENV] = crash_at
        command = [sys.executable, "-m", "doorwarden", "agent", "run", "--config", str(config)]
        log = (self.root / "agent.log").open("a")
        log.write(f"\n=== {' '.join(command[4:])} {crash_at or ''}\n")
        log.flush()
        try:
            return subprocess.Popen(
                [*command, "--once"] if once else command,
                cwd=self.root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        finally:
            log.close()

    def snapshot(self, log_from: int) -> None:
        """What the agent was in the middle of, as seen from outside, just before a kill.

        Once a run logged its first clip, the next one is being recorded (clips of one
        event follow each other without a gap), so a kill then loses a clip in progress.
        """
        log = (self.root / "agent.log").read_text()[log_from:]
        if "clip_finished" in log:
            self.landed["recording"] += 1
        elif "delivery.started" in log:
            self.landed["camera starting"] += 1
        else:
            self.landed["process starting"] += 1
        if list(self.spool.glob("*.json")):
            self.landed["plain clip waiting"] += 1
        if list((self.spool / "sealed").glob("*.manifest.json")):
            self.landed["sealed clip waiting"] += 1
        if list(self.staging.glob("*.clip.part")):
            self.landed["upload in progress"] += 1

    def iteration(self, index: int, config: Path) -> None:
        kind = ("random", "sealing", "random", "upload")[index % 4]
        self.kinds[kind] += 1
        crash_at = None
        if kind == "sealing":
            crash_at = CRASH_STEPS[self.hooks.total() % len(CRASH_STEPS)]
            self.hooks[crash_at] += 1
        log_from = len((self.root / "agent.log").read_text()) if index else 0
        agent = self.agent(config, crash_at=crash_at)
        try:
            started = time.monotonic()
            if kind == "random":
                time.sleep(self.rng.uniform(*RANDOM_DELAY_S))
            else:
                while time.monotonic() - started < WAIT_S and agent.poll() is None:
                    if kind == "upload" and list(self.staging.glob("*.clip.part")):
                        break
                    time.sleep(0.002)
            if agent.poll() is None:
                self.snapshot(log_from)
                agent.send_signal(signal.SIGKILL)
            elif kind == "sealing":
                self.landed[f"sealing ({crash_at})"] += 1
        finally:
            agent.kill()
            agent.wait(30)
        assert agent.returncode == -signal.SIGKILL, f"the agent exited by itself: {self.tail()}"

    def tail(self) -> str:
        return (self.root / "agent.log").read_text()[-3000:]


def _run_loop(loop: Loop, paced: Path, final: Path, commits: Commits) -> dict[str, Any]:
    started = time.monotonic()
    for index in range(ITERATIONS):
        loop.iteration(index, paced)
        commits.read()
    last = loop.agent(final, once=True)
    try:
        last.wait(120)
    finally:
        last.kill()
    assert last.returncode == 0, loop.tail()
    log = (loop.root / "agent.log").read_text()
    return {
        "seconds": round(time.monotonic() - started, 1),
        "recorded": len(commits.read()),
        # How the restarts picked up the pieces, from the agents' own logs:
        "recovery": {marker: log.count(marker) for marker in RECOVERY_MARKERS},
    }


async def _server_clips(app: FastAPI, device_id: str) -> list[Clip]:
    async with app.state.sessionmaker() as db:
        rows = await db.scalars(
            select(Clip).where(Clip.device_id == uuid.UUID(device_id)).order_by(Clip.sequence)
        )
        return list(rows)


async def _device_key(app: FastAPI, device_id: str) -> bytes:
    async with app.state.sessionmaker() as db:
        device = await db.get(Device, uuid.UUID(device_id))
        assert device is not None
        return b64d(device.public_key, what="device key", length=32)


@pytest.fixture
async def home(settings: Settings, factory: Factory) -> Any:
    async with live_household(settings, factory) as live:
        yield live


@pytest.mark.slow
async def test_every_recorded_clip_arrives_exactly_once_through_kill_9(
    home: LiveHousehold, app: FastAPI, settings: Settings, tmp_path: Path
) -> None:
    root = tmp_path / "agent"
    (root / "spool").mkdir(parents=True)
    identity: DeviceIdentity = paired_state(home, root / "state")
    paced = root / "camera.yaml"
    paced.write_text(CAMERA.format(root=root, duration=600, pace="true"))
    final = root / "final.yaml"
    final.write_text(CAMERA.format(root=root, duration=3, pace="false"))
    loop = Loop(root, settings.data_dir / "staging" / identity.device_id)
    commits = Commits(root / "spool")
    try:
        figures = await asyncio.to_thread(_run_loop, loop, paced, final, commits)
    finally:
        commits.close()
    recorded = commits.names

    # On the server: exactly the recorded clips, each once, verified, in one chain.
    rows = await _server_clips(app, identity.device_id)
    summary = {**figures, "kills": dict(loop.kinds), "landed": dict(loop.landed)}
    print(f"\nkill -9 loop: {summary}")  # noqa: T201 - the figures the test is about
    assert len(recorded) >= ITERATIONS // 2, summary  # the loop really recorded clips
    assert [r.sequence for r in rows] == list(range(len(rows))), summary
    assert len(rows) == len(recorded), summary
    assert all(r.status is ClipStatus.verified for r in rows)
    public = await _device_key(app, identity.device_id)
    manifests = [SignedManifest.parse(json.loads(r.manifest)).verify(public) for r in rows]
    assert check_chain(manifests) == []
    assert len({(m.start_utc, m.sha256) for m in manifests}) == len(manifests)  # no clip twice
    assert len(home.clips()) == len(rows)
    assert home.alerts() == []

    # On the agent: nothing left behind.
    spool = root / "spool"
    assert not list(spool.glob("*.json")) and not list(spool.glob("*.mp4"))
    assert not list((spool / "sealed").glob("*.manifest.json"))
    assert not list((spool / "sealed").glob("*.dws"))
    assert not list(loop.staging.glob("*.part"))
    # And the loop did hit every phase it was meant to.
    assert loop.landed["upload in progress"] >= 1, summary
    assert loop.landed["recording"] >= 1, summary
