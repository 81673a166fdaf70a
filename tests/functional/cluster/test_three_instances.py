"""Three real `doorwarden serve` processes of one deployment (PostgreSQL, NATS, moto's S3)
behind an ordered failover balancer, and instance A killed with SIGKILL in the middle of
everything (issue 20).

A real agent (`doorwarden agent run` playing vtest.avi) is paired through A and streams
through the balancer, so it lands on A; the owner watches it live through B and through
C. A second, scripted camera uploads sealed clips whose parts alternate between A, B and
C. Then A is killed in the middle of one upload and of the live session:

* the agent reconnects through the balancer (to B) within its backoff, and both viewers,
  still connected to B and C, see a new init segment and fragments after it;
* the interrupted upload completes through B and C; the scripted camera's clips are
  listed exactly once each, sequences 0..n-1, the interrupted one byte for byte;
* every counted job ran once per interval across the three instances (the `job.run`
  lines of all three logs): never two runs closer than half an interval, and after A
  died the next run within two intervals.

The bad-input tests: a NATS that cannot be reached at start stops a PostgreSQL instance
with a clear message; an instance with another secret key is refused at start.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

from doorwarden.accounts.sessions import SESSION_COOKIE
from doorwarden.crypto.keys import SigningKey, b64d, b64e
from doorwarden.crypto.manifest import GENESIS
from tests.cluster import Cluster, Instance, base_env, in_thread
from tests.paths import VTEST
from tests.sealed_clips import PART, Sealed, seal_clip

pytestmark = [
    pytest.mark.db,
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning:websockets"),
]

PASSWORD = "a long test password"
INTERVAL_S = 2.0
JOBS = {"legal.deadlines": "legal_interval_s", "modes.schedule": "modes_interval_s"}
CLIPS = 6  # scripted clips; the one in flight when A dies is KILLED_IN
KILLED_IN = 3
CLIP_BYTES = 4 * PART + 1000  # five parts: A, B, C, A, B ...
RESUME_S = 20.0  # agent backoff (1 s) + handshake + the camera's next keyframe, with slack

AGENT_CONFIG = """\
spool_dir: {root}/spool
state_dir: {root}/state
upload: {{backoff_initial_s: 0.2, backoff_max_s: 1}}
cameras:
  - name: door
    source: {{kind: file, path: {video}, pace: true, loop: true}}
    detect: {{kind: none}}
    record: {{pre_roll_s: 0, post_roll_s: 0.5, min_clip_s: 0.5, max_clip_s: 3, cooldown_s: 0}}
"""


@dataclass
class Owner:
    client: httpx.Client  # signed in through A
    home: str
    cookie: str


@dataclass
class Camera:
    device_id: str
    key: SigningKey
    token: str
    recipients: list[bytes]


@dataclass
class Watcher:
    """A viewer's WebSocket on one instance, read in the background: when each init and
    each fragment arrived."""

    name: str
    ws: ClientConnection
    inits: list[float] = field(default_factory=list)
    fragments: list[float] = field(default_factory=list)
    states: list[tuple[float, str]] = field(default_factory=list)
    closed: str | None = None

    async def read(self) -> None:
        try:
            async for message in self.ws:
                now = time.time()
                if isinstance(message, bytes):
                    self.fragments.append(now)
                    continue
                body = json.loads(message)
                if body.get("type") == "init":
                    self.inits.append(now)
                elif body.get("type") == "state":
                    self.states.append((now, str(body.get("state"))))
        except ConnectionClosed as exc:
            self.closed = f"closed: {exc}"

    def resumed_after(self, moment: float, fragments: int = 3) -> bool:
        return any(t > moment for t in self.inits) and (
            sum(t > moment for t in self.fragments) >= fragments
        )


def sign_up(instance: Instance) -> Owner:
    client = httpx.Client(base_url=instance.url, timeout=30)
    email = "owner@cluster.example"
    client.post(
        "/api/v1/accounts", json={"email": email, "display_name": "O", "password": PASSWORD}
    ).raise_for_status()
    session = client.post("/api/v1/session", json={"email": email, "password": PASSWORD})
    session.raise_for_status()
    client.headers["x-csrf-token"] = session.json()["csrf_token"]
    home = client.post("/api/v1/households", json={"name": "Home"}).json()["id"]
    return Owner(client, home, f"{SESSION_COOKIE}={session.cookies[SESSION_COOKIE]}")


def pairing_code(owner: Owner) -> str:
    response = owner.client.post(f"/api/v1/households/{owner.home}/pairing-codes", json={})
    response.raise_for_status()
    return str(response.json()["code"])


def pair_scripted(instance: Instance, owner: Owner) -> Camera:
    key = SigningKey.generate()
    paired = httpx.post(
        f"{instance.url}/api/v1/devices/pair",
        json={"code": pairing_code(owner), "name": "Scripted", "public_key": b64e(key.public)},
        timeout=30,
    )
    paired.raise_for_status()
    body = paired.json()
    recipients = [b64d(r["public_key"], what="k", length=32) for r in body["recipients"]]
    return Camera(body["device_id"], key, body["token"], recipients)


def start_agent(cluster: Cluster, owner: Owner, root: Path) -> tuple[subprocess.Popen[bytes], Any]:
    """Pair a real agent through the balancer (so through A) and run it."""
    root.mkdir()
    config = root / "agent.yaml"
    config.write_text(AGENT_CONFIG.format(root=root, video=VTEST))
    env = base_env()
    command = [sys.executable, "-m", "doorwarden", "agent"]
    code = pairing_code(owner)
    subprocess.run(
        [*command, "pair", "--server", cluster.url, "--code", code, "--config", str(config)],
        env=env, check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    log = (root / "agent.log").open("wb")
    process = subprocess.Popen(
        [*command, "run", "--config", str(config)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    return process, log


@asynccontextmanager
async def watching(
    cluster: Cluster, instance: Instance, owner: Owner, device: str
) -> AsyncIterator[Watcher]:
    path = f"/api/v1/households/{owner.home}/devices/{device}/live?camera=door"
    ws = await connect(
        instance.url.replace("http://", "ws://") + path,
        additional_headers={"Cookie": owner.cookie},
        origin=Origin(cluster.url),
        open_timeout=20,
    )
    watcher = Watcher(instance.name, ws)
    reader = asyncio.create_task(watcher.read())
    try:
        yield watcher
    finally:
        await ws.close()
        await asyncio.wait_for(reader, 10)


async def until(check: Any, within_s: float, what: str) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline, f"not within {within_s} s: {what}"
        await asyncio.sleep(0.1)


def device_client(instance: Instance, camera: Camera) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=instance.url, timeout=30, headers={"authorization": f"Bearer {camera.token}"}
    )


async def put_part(client: httpx.AsyncClient, sealed: Sealed, offset: int) -> httpx.Response:
    total = len(sealed.ciphertext)
    part = sealed.ciphertext[offset : offset + PART]
    return await client.put(
        f"/api/v1/device/clips/{sealed.sequence}/data",
        content=part,
        headers={"content-range": f"bytes {offset}-{offset + len(part) - 1}/{total}"},
    )


async def upload_alternating(
    clients: list[httpx.AsyncClient],
    sealed: Sealed,
    *,
    first: int = 0,
    stop_after: int | None = None,
) -> int:
    """Manifest, parts, thumbnail and complete, each step to the next instance in turn
    (round robin over `clients` from `first`). With `stop_after`, stop once that many
    parts are sent and return the offset reached; otherwise complete, return the total."""
    turn = first
    base = f"/api/v1/device/clips/{sealed.sequence}"

    def nxt() -> httpx.AsyncClient:
        nonlocal turn
        client = clients[turn % len(clients)]
        turn += 1
        return client

    client = nxt()
    offered = await client.put(base, content=sealed.manifest)
    assert offered.status_code in (200, 201), f"{client.base_url}: {offered.text}"
    offset = int(offered.json()["received"])
    sent = 0
    while offset < len(sealed.ciphertext):
        if stop_after is not None and sent == stop_after:
            return offset
        client = nxt()
        response = await put_part(client, sealed, offset)
        assert response.status_code == 200, (
            f"clip {sealed.sequence} part at {offset} to {client.base_url}: "
            f"{response.status_code} {response.text}"
        )
        offset += PART
        sent += 1
    thumb = await nxt().put(f"{base}/thumbnail", content=sealed.thumbnail)
    assert thumb.status_code == 204, thumb.text
    client = nxt()
    done = await client.post(f"{base}/complete")
    assert done.status_code == 200 and done.json()["status"] == "verified", (
        f"clip {sealed.sequence} complete at {client.base_url}: {done.status_code} {done.text}"
    )
    return offset


def chain(camera: Camera, n: int) -> list[Sealed]:
    out: list[Sealed] = []
    previous = GENESIS
    for sequence in range(n):
        keys = (camera.key, camera.recipients)
        clip = seal_clip(camera.device_id, *keys, sequence, previous, size=CLIP_BYTES)
        out.append(clip)
        previous = out[-1].digest
    return out


def check_jobs(cluster: Cluster, killed_at: float, started: float, ended: float) -> None:
    runs = cluster.job_runs()
    for job in JOBS:
        times = [t for t, _ in runs.get(job, []) if t >= started]
        assert times, f"no job.run line for {job} in any instance's log"
        gaps = [b - a for a, b in itertools.pairwise(times)]
        close = [round(g, 2) for g in gaps if g < 0.5 * INTERVAL_S]
        assert not close, f"{job} ran twice within half an interval: gaps {close} ({runs[job]})"
        late = [round(g, 2) for g in gaps if g > 2 * INTERVAL_S + 0.5]
        assert not late, f"{job} missed intervals: gaps {late}"
        after = [t for t in times if t > killed_at]
        wait = after[0] - killed_at if after else None
        assert wait is not None and wait <= 2 * INTERVAL_S + 0.5, (
            f"{job}: the first run after A died came {wait} s later"
        )
        expected = (ended - started) / INTERVAL_S
        assert len(times) <= expected + 2, (
            f"{job} ran {len(times)} times in {expected:.1f} intervals"
        )


def clips_of(owner: Owner, instance: Instance, device: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{instance.url}/api/v1/households/{owner.home}/clips",
        params={"device_id": device, "limit": 500},
        headers={"cookie": owner.cookie},
        timeout=30,
    )
    response.raise_for_status()
    clips: list[dict[str, Any]] = response.json()
    return clips


def test_three_instances_survive_the_death_of_one(tmp_path: Path) -> None:
    jobs = dict.fromkeys(JOBS.values(), INTERVAL_S)
    with Cluster(tmp_path, instances_wanted=3, jobs=jobs) as cluster:
        started = time.time()
        a, b, c = cluster.instances
        owner = sign_up(a)
        scripted = pair_scripted(a, owner)
        sealed = chain(scripted, CLIPS)
        agent, agent_log = start_agent(cluster, owner, tmp_path / "agent")
        try:
            devices = owner.client.get(f"/api/v1/households/{owner.home}/devices").json()
            door = next(d["id"] for d in devices if d["id"] != scripted.device_id)
            # In a thread of its own: its event loop is not pytest-asyncio's.
            in_thread(scenario(cluster, owner, scripted, sealed, door))
            ended = time.time()
        finally:
            agent.terminate()
            agent.wait(timeout=30)
            agent_log.close()
            owner.client.close()
        assert a.killed_at is not None
        listed = clips_of(owner, c, scripted.device_id)
        assert sorted(clip["sequence"] for clip in listed) == list(range(CLIPS)), listed
        clip = next(x for x in listed if x["sequence"] == KILLED_IN)
        video = httpx.get(
            f"{b.url}/api/v1/households/{owner.home}/clips/{clip['id']}/video",
            headers={"cookie": owner.cookie},
            timeout=30,
        )
        assert video.content == sealed[KILLED_IN].plaintext
        check_jobs(cluster, a.killed_at, started, ended)
        # The agent's own clips (motion in vtest.avi), through A then B: each once.
        agent_clips = [clip["sequence"] for clip in clips_of(owner, b, door)]
        assert len(agent_clips) == len(set(agent_clips)), sorted(agent_clips)


async def scenario(
    cluster: Cluster, owner: Owner, scripted: Camera, sealed: list[Sealed], door: str
) -> None:
    a, b, c = cluster.instances
    clients = [device_client(i, scripted) for i in (a, b, c)]
    try:
        async with (
            watching(cluster, b, owner, door) as on_b,
            watching(cluster, c, owner, door) as on_c,
        ):
            # The agent is on A; B and C relay it over NATS.
            for viewer in (on_b, on_c):
                await until(lambda v=viewer: v.resumed_after(0), RESUME_S, f"live on {viewer.name}")
            for clip in sealed[:KILLED_IN]:
                await upload_alternating(clients, clip)
            interrupted = sealed[KILLED_IN]
            await upload_alternating(clients, interrupted, stop_after=3)  # parts on A, B, C
            placed = len(cluster.balancer.placements) if cluster.balancer else 0
            a.kill()
            # The agent reconnects through the balancer, now to B; the viewers resume.
            for viewer in (on_b, on_c):
                await until(
                    lambda v=viewer: v.resumed_after(a.killed_at or 0),
                    RESUME_S,
                    f"live on {viewer.name} after A died (states {viewer.states}, {viewer.closed})",
                )
            assert cluster.balancer is not None
            assert 1 in cluster.balancer.placements[placed:], "the agent never reached B"
            # The interrupted upload ends through B and C; the rest alternate B, C.
            await upload_alternating(clients[1:], interrupted)
            for clip in sealed[KILLED_IN + 1 :]:
                await upload_alternating(clients[1:], clip)
            await asyncio.sleep(3 * INTERVAL_S)  # jobs run on after A's death
    finally:
        for client in clients:
            await client.aclose()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def one_instance(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with Cluster(tmp_path_factory.mktemp("cluster-one"), instances_wanted=1) as cluster:
        yield cluster


def test_an_unreachable_nats_stops_a_postgresql_instance_at_start(one_instance: Cluster) -> None:
    url = f"nats://127.0.0.1:{closed_port()}"
    result = one_instance.serve_once(30, DOORWARDEN_NATS_URL=url)
    assert result.returncode not in (0, -9), "it served without NATS"
    said = result.stderr[-2000:]
    assert url in said or url.removeprefix("nats://") in said, said
    assert "Traceback" not in result.stderr, result.stderr[-2000:]


def test_an_instance_with_another_secret_key_is_refused(one_instance: Cluster) -> None:
    other = "another-secret-key-" + "x" * 40
    result = one_instance.serve_once(30, DOORWARDEN_SECRET_KEY=other)
    assert result.returncode not in (0, -9), "it served with another secret key"
    assert "secret key" in result.stderr.lower(), result.stderr[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    # The first instance still serves.
    assert httpx.get(f"{one_instance.instances[0].url}/healthz", timeout=5).status_code == 200
