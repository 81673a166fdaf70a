"""From a ring to a push on the member's phone, and how many pushes one server sends.

Real processes and real protocols, on loopback:

    agent link (WebSocket /api/v1/device/live, the device's token, hello, then the
    `event` message a camera sends for a ring) -> `doorwarden serve` (records the event,
    commits, acks, wakes notify) -> notify's dispatch (outbox, RFC 8291 encryption, VAPID)
    -> tests/push_service.py (an RFC 8030 push service: checks the JWT, decrypts the body)

(a) Latency, over --rings rings (200): for each, the time from sending the ring message
    to the push request arriving at the push service (decrypted, its payload's `at` the
    ring's), against the time from the same send to the server's `event_ack` (the
    agent's control message alone: the baseline, in the same run). One member with one
    subscription. The cameras take turns (a camera may ring 6 times a minute), one ring
    at a time: this is the latency of a ring, not of a queue.
(b) Throughput: the household gets 50 members with 20 subscriptions each (1,000, the
    most the API allows per member), then --bursts rings; for each, the time from the
    ring to the 1,000th push arriving, as pushes per second. The first burst includes
    opening the server's 64 parallel connections to the push service; later bursts reuse
    them (keep-alive), as a running server does. The push service runs in this process
    (Python threads decrypting every message): on a small machine it shares the CPUs
    with the server, so the figure is a lower bound for the server alone.

Not included: `doorwarden agent ring` reaching the running agent over its unix socket
(the agent's own hop, a local socket write), and the phone's push service itself.

Run: .venv/bin/python bench/bench_ring_to_push.py [--rings 200] [--cameras 40]
     [--gap 0.3] [--bursts 3] [--database-url postgresql+asyncpg://.../empty_db]
Prints figures; asserts nothing about times.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # `python bench/x.py` puts only bench/ on the path

from bench.fault_rig import PASSWORD, Owner, Server  # noqa: E402
from tests.push_service import PushService  # noqa: E402

from doorwarden.agent.delivery.identity import IdentityStore  # noqa: E402
from doorwarden.agent.delivery.pairing import pair  # noqa: E402

# The loopback push service is a stdlib ThreadingHTTPServer, whose listen backlog is 5:
# the server opening its 64 parallel connections at once would overflow it, and each
# dropped SYN is retried a second or more later (the first burst took 20 s instead of 3).
# A real push service's backlog is large; so is this one's here.
ThreadingHTTPServer.request_queue_size = 1024

CAMERA = "front"
MEMBERS = 50
PER_MEMBER = 20  # notify.subscriptions' limit per user


class DevServer(Server):
    """`doorwarden serve` in development mode: plain ws:// for the agent link and loopback
    http push endpoints (outside development both are refused)."""

    def env(self) -> dict[str, str]:
        return {**super().env(), "DOORWARDEN_DEVELOPMENT": "true"}


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


@dataclass
class Link:
    """One camera's control connection, as the agent holds it."""

    device_id: str
    ws: ClientConnection
    acks: dict[str, asyncio.Future[tuple[float, dict[str, Any]]]] = field(default_factory=dict)
    reader: asyncio.Task[None] | None = None

    async def read(self) -> None:
        async for raw in self.ws:
            if not isinstance(raw, str):
                continue
            message = json.loads(raw)
            if message.get("type") == "event_ack":
                waiting = self.acks.pop(message.get("id"), None)
                if waiting is not None and not waiting.done():
                    waiting.set_result((time.monotonic(), message))

    async def ring(self, at: datetime) -> tuple[float, asyncio.Future[Any]]:
        agent_id = uuid.uuid4().hex
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.acks[agent_id] = done
        message = {
            "type": "event",
            "id": agent_id,
            "camera": CAMERA,
            "kind": "ring",
            "at": at.isoformat(timespec="milliseconds"),
            "source": "cli",
        }
        sent = time.monotonic()
        await self.ws.send(json.dumps(message))
        return sent, done


async def open_link(server: Server, device_id: str, token: str) -> Link:
    ws = await connect(
        f"ws://127.0.0.1:{server.port}/api/v1/device/live",
        additional_headers={"Authorization": f"Bearer {token}"},
        max_size=1 << 20,
    )
    await ws.send(json.dumps({"type": "hello", "cameras": [CAMERA]}))
    link = Link(device_id, ws)
    link.reader = asyncio.create_task(link.read())
    return link


def subscribe(client: httpx.Client, push: PushService, label: str) -> None:
    sub = push.subscribe()
    made = client.post("/api/v1/account/push-subscriptions", json=sub.to_json(label))
    if made.status_code != 201:
        raise RuntimeError(f"subscribe: {made.status_code} {made.text}")


def member(server: Server, owner: Owner, n: int) -> httpx.Client:
    email = f"member{n}@bench.example"
    client = httpx.Client(base_url=server.url, timeout=30)
    body = {"email": email, "display_name": f"Member {n}", "password": PASSWORD}
    Owner._ok(client.post("/api/v1/accounts", json=body))
    session = Owner._ok(client.post("/api/v1/session", json={"email": email, "password": PASSWORD}))
    client.headers["x-csrf-token"] = session.json()["csrf_token"]
    Owner._ok(
        owner.client.post(f"/api/v1/households/{owner.household}/members", json={"email": email})
    )
    return client


async def wait_pushes(push: PushService, count: int, timeout_s: float) -> float | None:
    """The monotonic time the `count`th push arrived, or None after the timeout."""
    # In a thread, on the service's condition: polling here would take the GIL from the
    # push service's threads (the arrival time is the service's own clock reading).
    arrived = await asyncio.to_thread(push.wait_for, count, timeout_s)
    return arrived[count - 1].at if len(arrived) >= count else None


async def latency(args: argparse.Namespace, links: list[Link], push: PushService) -> None:
    to_ack: list[float] = []
    to_push: list[float] = []
    lost = refused = 0
    next_at = time.monotonic()
    for n in range(args.rings):
        link = links[n % len(links)]
        before = len(push.received)
        at = datetime.now(UTC)
        sent, acked = await link.ring(at)
        ack_at, ack = await asyncio.wait_for(acked, 10)
        if "refused" in ack:
            refused += 1
            print(f"  ring {n} refused: {ack}")
            continue
        arrived = await wait_pushes(push, before + 1, 10)
        if arrived is None:
            lost += 1
            continue
        payload = push.received[before].json()
        skew = abs((datetime.fromisoformat(payload["at"]) - at).total_seconds())
        if payload["kind"] != "ring" or skew > 0.001:
            raise RuntimeError(f"push {before} is not ring {n}: {payload}")
        to_ack.append(ack_at - sent)
        to_push.append(arrived - sent)
        next_at += args.gap
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    print(f"\n(a) ring -> push, {len(to_push)} rings over {len(links)} camera links")
    print(f"    {'':28}{'p50':>10}{'p95':>10}{'max':>10}{'mean':>10}")
    for name, values in (
        ("ring -> event_ack (baseline)", to_ack),
        ("ring -> push received", to_push),
    ):
        print(
            f"    {name:28}{ms(quantile(values, 0.5))}{ms(quantile(values, 0.95))}"
            f"{ms(max(values))}{ms(statistics.fmean(values))}"
        )
    extra = [p - a for p, a in zip(to_push, to_ack, strict=True)]
    print(
        f"    {'ack -> push (notify adds)':28}{ms(quantile(extra, 0.5))}"
        f"{ms(quantile(extra, 0.95))}{ms(max(extra))}{ms(statistics.fmean(extra))}"
    )
    print(f"    lost (no push in 10 s): {lost}   refused: {refused}")


def members_with_subscriptions(server: Server, owner: Owner, push: PushService) -> None:
    for _ in range(PER_MEMBER - 1):  # the owner has one already
        subscribe(owner.client, push, "owner device")
    for n in range(1, MEMBERS):
        client = member(server, owner, n)
        for k in range(PER_MEMBER):
            subscribe(client, push, f"device {k}")
        client.close()


async def throughput(
    args: argparse.Namespace, server: Server, owner: Owner, links: list[Link], push: PushService
) -> None:
    started = time.monotonic()
    # In a thread: the links keep answering the server's pings meanwhile.
    await asyncio.to_thread(members_with_subscriptions, server, owner, push)
    listed = owner.client.get("/api/v1/account/push-subscriptions").json()
    subscriptions = MEMBERS * PER_MEMBER
    print(
        f"\n(b) {subscriptions} subscriptions ({MEMBERS} members x {PER_MEMBER}; owner lists "
        f"{len(listed)}), made in {time.monotonic() - started:.1f} s"
    )
    rates = []
    for burst in range(args.bursts):
        before = len(push.received)
        link = links[(burst * 7) % len(links)]
        sent, acked = await link.ring(datetime.now(UTC))
        await asyncio.wait_for(acked, 10)
        first = await wait_pushes(push, before + 1, 30)
        last = await wait_pushes(push, before + subscriptions, 120)
        if first is None or last is None:
            print(f"    burst {burst}: only {len(push.received) - before} pushes in 120 s")
            continue
        rate = subscriptions / (last - sent)
        rates.append(rate)
        print(
            f"    burst {burst}: ring -> first push {ms(first - sent)}, -> push "
            f"{subscriptions} {last - sent:6.2f} s = {rate:6.0f} pushes/s"
        )
        await asyncio.sleep(2)
    if rates:
        print(f"    median {statistics.median(rates):.0f} pushes/s (one server process)")
    print(f"    refused by the push service: {len(push.refused)}")


async def run(args: argparse.Namespace, work: Path) -> None:
    with PushService() as push:
        database_url = args.database_url or f"sqlite+aiosqlite:///{work / 'doorwarden.db'}"
        server = DevServer(work, work / "data", database_url)
        server.migrate()
        server.start()
        owner = Owner(server.url, "owner@bench.example")
        links: list[Link] = []
        try:
            subscribe(owner.client, push, "owner phone")
            started = time.monotonic()
            identities = []
            for n in range(args.cameras):
                identity = pair(
                    IdentityStore(work / f"cam{n}"),
                    server=server.url,
                    code=owner.pairing_code(),
                    name=f"Camera {n}",
                )
                identities.append(identity)
            for identity in identities:
                links.append(await open_link(server, identity.device_id, identity.token))
            await asyncio.sleep(1)  # hellos taken, mode messages sent
            print(f"paired and linked {len(links)} cameras in {time.monotonic() - started:.1f} s")
            await latency(args, links, push)
            await throughput(args, server, owner, links, push)
        finally:
            for link in links:
                await link.ws.close()
                if link.reader is not None:
                    link.reader.cancel()
            owner.close()
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rings", type=int, default=200)
    parser.add_argument("--cameras", type=int, default=40)
    parser.add_argument("--gap", type=float, default=0.3, help="seconds between two rings")
    parser.add_argument("--bursts", type=int, default=3)
    parser.add_argument("--database-url", help="an empty database (default: SQLite file)")
    args = parser.parse_args()
    per_camera_s = args.gap * args.cameras
    if per_camera_s < 60 / 6 + 1:
        parser.error("--gap x --cameras must leave a camera 11 s between rings (6 a minute)")
    print(
        f"bench_ring_to_push: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, database "
        f"{'PostgreSQL' if args.database_url else 'SQLite'}"
    )
    with tempfile.TemporaryDirectory(prefix="dw-ring-push-") as tmp:
        asyncio.run(run(args, Path(tmp)))


if __name__ == "__main__":
    main()
