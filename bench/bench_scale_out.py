"""Scale-out: what several `doorwarden serve` instances of one deployment carry, against
one instance in the same run (issue 20).

The deployment is the three-instance test's (tests/cluster.py): real server processes on
a fresh PostgreSQL database, NATS, moto's S3 server (a process of its own), each instance
with its own data directory. Two measures, each beside its baseline:

* Live relay. CAMERAS scripted agents (device tokens, the live protocol of
  docs/live-view.md) connect to instance A and stream opaque fragments of FRAGMENT_BYTES
  at FPS (a keyframe each second: the relay forwards bytes and never decodes them); the
  same VIEWERS per camera watch, spread over 1, 2 or 3 instances (round robin: with 1 all
  on A, the same-instance path; with 2 or 3, some on B and C, relayed over NATS). Per
  step: fragments per second delivered by each instance, the fragments lost, delivery lag
  (arrival minus the agent's send time, one clock) p50 / p95 for viewers on A and on the
  others, and each instance's CPU seconds per fragment it delivered (/proc/PID/stat).
  The extra hop's cost per fragment is the remote viewers' lag and CPU per fragment
  against the same-instance viewers' in the same step.
* Ingest. CLIPS sealed clips of CLIP_MIB from PARALLEL scripted cameras, each clip's
  whole upload (manifest, parts, thumbnail, complete) to one instance, the clips round
  robin over 1 or 2 instances: clips per second and MiB/s, and the ratio against a
  plain copy of the same bytes into the same bucket (boto3 put_object, same parallelism).

Every process of the run shares this machine's cores (`nproc` is printed): on a machine
with fewer cores than instances, more instances cannot be faster; the figures then show
the cost of the hop, not the gain of the spread.

    .venv/bin/python bench/bench_scale_out.py [--cameras 4] [--viewers 6] [--seconds 8]
        [--clips 24] [--clip-mib 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import struct
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

from doorwarden.accounts.sessions import SESSION_COOKIE
from doorwarden.crypto.keys import SigningKey, b64d, b64e
from doorwarden.crypto.manifest import GENESIS

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # `python bench/x.py` puts only bench/ on the path
from tests.cluster import PG_URL_ENV, S3_KEY_ID, S3_SECRET, Cluster, Instance  # noqa: E402
from tests.sealed_clips import PART, Sealed, seal_clip  # noqa: E402

os.environ.setdefault(PG_URL_ENV, "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
FPS = 25
FRAGMENT_BYTES = 12_000  # ~2.4 Mbit/s at 25 fps: a 720p doorbell
PASSWORD = "bench password, long enough"
MIME = 'video/mp4; codecs="avc1.42c01f"'


@dataclass
class Home:
    home: str
    cookie: str
    owner: httpx.AsyncClient


@dataclass
class Cam:
    device_id: str
    token: str
    key: SigningKey
    recipients: list[bytes]


@dataclass
class Viewer:
    instance: str
    lags: list[float] = field(default_factory=list)
    seen: set[int] = field(default_factory=set)


def cpu_s(instance: Instance) -> float:
    assert instance.process is not None
    fields = Path(f"/proc/{instance.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def make_home(a: Instance, cameras: int) -> tuple[Home, list[Cam]]:
    owner = httpx.AsyncClient(base_url=a.url, timeout=60)
    email = "owner@scale.example"
    body = {"email": email, "display_name": "O", "password": PASSWORD}
    (await owner.post("/api/v1/accounts", json=body)).raise_for_status()
    session = await owner.post("/api/v1/session", json={"email": email, "password": PASSWORD})
    owner.headers["x-csrf-token"] = session.json()["csrf_token"]
    home = (await owner.post("/api/v1/households", json={"name": "Bench"})).json()["id"]
    cams = await pair_cameras(owner, home, cameras, "live")
    return Home(home, f"{SESSION_COOKIE}={session.cookies[SESSION_COOKIE]}", owner), cams


# -- live -------------------------------------------------------------------------------


async def agent(a: Instance, cam: Cam, seconds: float, ready: asyncio.Event) -> int:
    """Stream FPS fragments a second for `seconds` once every viewer is in; the count."""
    ws_url = a.url.replace("http://", "ws://") + "/api/v1/device/live"
    headers = {"Authorization": f"Bearer {cam.token}"}
    async with connect(ws_url, additional_headers=headers, compression=None) as ws:
        await ws.send(json.dumps({"type": "hello", "cameras": ["front"], "version": 1}))
        while True:  # mode, settings...: wait for the first viewer's start
            message = json.loads(await asyncio.wait_for(ws.recv(), 60))
            if message.get("type") == "start":
                break
        await ws.send(json.dumps({"type": "init", "camera": "front", "mime": MIME}))
        await ws.send(b"\x00\x00ftyp-and-moov")
        await ready.wait()
        pad = bytes(FRAGMENT_BYTES - 16)
        start = time.monotonic()
        n = 0
        while (due := start + n / FPS) < start + seconds:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            head = bytes((1 if n % FPS == 0 else 2, 0))
            await ws.send(head + struct.pack(">qd", n, time.time()) + pad)
            n += 1
        return n


async def viewer(
    instance: Instance, home: Home, cam: Cam, origin: str, out: Viewer, joined: asyncio.Event
) -> None:
    path = f"/api/v1/households/{home.home}/devices/{cam.device_id}/live?camera=front"
    ws: ClientConnection
    async with connect(
        instance.url.replace("http://", "ws://") + path,
        additional_headers={"Cookie": home.cookie},
        origin=Origin(origin),
        open_timeout=30,
        max_size=None,
    ) as ws:
        joined.set()
        try:
            async for message in ws:
                if isinstance(message, bytes) and len(message) >= 16:
                    n, sent = struct.unpack(">qd", message[:16])
                    out.seen.add(n)
                    out.lags.append(time.time() - sent)
        except ConnectionClosed:
            return


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def live_step(
    cluster: Cluster, home: Home, cams: list[Cam], spread: int, per_cam: int, seconds: float
) -> None:
    used = cluster.instances[:spread]
    ready = asyncio.Event()
    viewers: list[Viewer] = []
    tasks = []
    joins = []
    for cam in cams:
        for v in range(per_cam):
            instance = used[v % spread]
            out = Viewer(instance.name)
            viewers.append(out)
            joined = asyncio.Event()
            joins.append(joined)
            tasks.append(asyncio.create_task(viewer(instance, home, cam, cluster.url, out, joined)))
    agents = [asyncio.create_task(agent(cluster.instances[0], c, seconds, ready)) for c in cams]
    await asyncio.wait_for(asyncio.gather(*(j.wait() for j in joins)), 60)
    await asyncio.sleep(1.0)  # the remote instances' interest reaches A; inits reach viewers
    before = {i.name: cpu_s(i) for i in used}
    ready.set()
    sent = await asyncio.gather(*agents)
    await asyncio.sleep(1.5)  # the last fragments arrive
    spent = {i.name: cpu_s(i) - before[i.name] for i in used}
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    expected = sent[0] * per_cam * len(cams)
    got = sum(len(v.seen) for v in viewers)
    print(
        f"  {spread} instance(s): {len(viewers)} viewers, sent {sum(sent)} fragments, "
        f"delivered {got}/{expected} ({expected - got} lost)"
    )
    for i in used:
        mine = [v for v in viewers if v.instance == i.name]
        delivered = sum(len(v.seen) for v in mine)
        lags = [lag for v in mine for lag in v.lags]
        per = spent[i.name] / delivered * 1e6 if delivered else float("nan")
        role = "agents + viewers" if i.name == "A" else "remote viewers "
        print(
            f"    {i.name} ({role}) {delivered / seconds:>7.0f} fragments/s  lag p50 "
            f"{pct(lags, 0.5) * 1e3:>6.1f} ms p95 {pct(lags, 0.95) * 1e3:>6.1f} ms  "
            f"cpu {spent[i.name] / seconds:>5.2f} core  {per:>6.0f} us/fragment"
        )


# -- ingest -----------------------------------------------------------------------------


def bearer(cam: Cam) -> dict[str, str]:
    return {"authorization": f"Bearer {cam.token}"}


def chain(cam: Cam, n: int, size: int) -> list[Sealed]:
    out, previous = [], GENESIS
    for seq in range(n):
        out.append(seal_clip(cam.device_id, cam.key, cam.recipients, seq, previous, size=size))
        previous = out[-1].digest
    return out


async def upload(client: httpx.AsyncClient, sealed: Sealed) -> None:
    base = f"/api/v1/device/clips/{sealed.sequence}"
    total = len(sealed.ciphertext)
    (await client.put(base, content=sealed.manifest)).raise_for_status()
    for offset in range(0, total, PART):
        part = sealed.ciphertext[offset : offset + PART]
        headers = {"content-range": f"bytes {offset}-{offset + len(part) - 1}/{total}"}
        (await client.put(f"{base}/data", content=part, headers=headers)).raise_for_status()
    (await client.put(f"{base}/thumbnail", content=sealed.thumbnail)).raise_for_status()
    done = await client.post(f"{base}/complete")
    assert done.json().get("status") == "verified", done.text


async def ingest_step(
    cluster: Cluster, cams: list[Cam], clips: list[list[Sealed]], spread: int
) -> float:
    """Seconds to ingest every camera's chain, clip k of each camera to instance k % spread."""
    used = cluster.instances[:spread]
    clients = [
        [httpx.AsyncClient(base_url=i.url, timeout=120, headers=bearer(c)) for i in used]
        for c in cams
    ]

    async def one_camera(n: int) -> None:
        for k, sealed in enumerate(clips[n]):  # in order: a camera's chain is sequential
            await upload(clients[n][k % spread], sealed)

    start = time.perf_counter()
    await asyncio.gather(*(one_camera(n) for n in range(len(cams))))
    took = time.perf_counter() - start
    for row in clients:
        for client in row:
            await client.aclose()
    return took


def plain_copy(cluster: Cluster, blobs: list[bytes], parallel: int) -> float:
    import boto3  # noqa: PLC0415 - a test dependency

    s3 = boto3.client(
        "s3",
        endpoint_url=cluster.s3_url,
        region_name="us-east-1",
        aws_access_key_id=S3_KEY_ID,
        aws_secret_access_key=S3_SECRET,
    )

    def put(n: int) -> None:
        s3.put_object(Bucket=cluster.bucket, Key=f"copy/{n}", Body=blobs[n])

    start = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        list(pool.map(put, range(len(blobs))))
    return time.perf_counter() - start


async def run(args: argparse.Namespace, cluster: Cluster) -> None:
    home, cams = await make_home(cluster.instances[0], args.cameras)
    print(
        f"\nLive relay: {args.cameras} cameras on A, {args.viewers} viewers each, "
        f"{FPS} fps x {FRAGMENT_BYTES} B, {args.seconds:.0f} s per step"
    )
    for spread in (1, 2, 3):
        await live_step(cluster, home, cams, spread, args.viewers, args.seconds)
    size = int(args.clip_mib * 1024 * 1024)
    per_cam = max(1, args.clips // args.cameras)
    print(
        f"\nIngest: {per_cam * args.cameras} clips of {args.clip_mib} MiB, "
        f"{args.cameras} cameras in parallel"
    )
    total_mib = per_cam * args.cameras * args.clip_mib
    results = {}
    for spread in (1, 2):
        # Fresh cameras per step: each chain starts at sequence 0.
        fresh = await pair_cameras(home.owner, home.home, args.cameras, f"ingest{spread}-")
        clips = [chain(c, per_cam, size) for c in fresh]
        took = await ingest_step(cluster, fresh, clips, spread)
        results[spread] = took
    blobs = [os.urandom(size) for _ in range(per_cam * args.cameras)]
    copy = plain_copy(cluster, blobs, args.cameras)
    print(f"  {'case':<36} {'clips/s':>8} {'MiB/s':>8} {'vs copy':>8}")
    print(
        f"  {'plain copy to the bucket (boto3)':<36} {len(blobs) / copy:>8.1f} "
        f"{total_mib / copy:>8.1f} {1.0:>8.2f}"
    )
    for spread, took in results.items():
        name = f"ingest, {spread} instance(s)"
        print(
            f"  {name:<36} {per_cam * args.cameras / took:>8.1f} {total_mib / took:>8.1f} "
            f"{copy / took:>8.2f}"
        )
    await home.owner.aclose()


async def pair_cameras(owner: httpx.AsyncClient, home: str, n: int, name: str) -> list[Cam]:
    cams = []
    for k in range(n):
        code = (await owner.post(f"/api/v1/households/{home}/pairing-codes", json={})).json()
        key = SigningKey.generate()
        body = {"code": code["code"], "name": f"{name}{k}", "public_key": b64e(key.public)}
        paired = await owner.post("/api/v1/devices/pair", json=body)
        paired.raise_for_status()
        p = paired.json()
        keys = [b64d(r["public_key"], what="k", length=32) for r in p["recipients"]]
        cams.append(Cam(p["device_id"], p["token"], key, keys))
    return cams


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--viewers", type=int, default=6, help="per camera")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--clip-mib", type=float, default=1.0)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores; 3 instances + PostgreSQL + NATS + moto + this")
    with tempfile.TemporaryDirectory() as root, Cluster(Path(root), instances_wanted=3) as cl:
        asyncio.run(run(args, cl))


if __name__ == "__main__":
    main()
