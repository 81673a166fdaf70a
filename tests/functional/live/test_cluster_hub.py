"""Live view across instances at the hub's level: two (or three) LiveHubs in this process,
each on its own real NATS connection, as separate server processes would be. The agent
is an AgentLink whose socket is a list of what it was sent; the viewers are the relay's
own Viewer queues. (The same through real apps and WebSockets: test_cluster_apps.py.)"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import structlog

from doorwarden.bus import NatsBus
from doorwarden.live import cluster as cluster_module
from doorwarden.live.relay import FRAGMENT, INIT, KEYFRAME, AgentLink, LiveHub, Out, Viewer
from doorwarden.live.snapshots import SNAPSHOT
from tests.nats import NatsServer, shared_nats, unique_prefix

LINGER_S = 0.2


class Agent:
    """A camera's control connection, as the hub sees it."""

    def __init__(self, device: uuid.UUID, cameras: list[str]) -> None:
        self.device, self.cameras = device, cameras
        self.sent: list[dict[str, object]] = []
        self.closed = False
        self.link = AgentLink(device, self._send, self._close)

    async def _send(self, text: str) -> None:
        self.sent.append(json.loads(text))

    async def _close(self) -> None:
        self.closed = True

    def kinds(self) -> list[str]:
        return [str(m["type"]) for m in self.sent]

    def stream(self, hub: LiveHub, camera: int = 0) -> None:
        name = self.cameras[camera]
        hub.agent_text(self.link, {"type": "init", "camera": name, "mime": "video/mp4; x"})
        hub.agent_binary(self.link, bytes((INIT, camera)) + b"SEGMENT")

    def frame(self, hub: LiveHub, data: bytes, *, keyframe: bool = False) -> None:
        hub.agent_binary(self.link, bytes((KEYFRAME if keyframe else FRAGMENT, 0)) + data)


async def wait_for(check: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def drain(viewer: Viewer) -> list[Out]:
    out = list(viewer._pending)
    viewer._pending.clear()
    return out


def states(outs: list[Out]) -> list[str]:
    return [json.loads(o.data)["state"] for o in outs if isinstance(o.data, str)
            and json.loads(o.data).get("type") == "state"]  # fmt: skip


def media(outs: list[Out]) -> list[bytes]:
    return [o.data for o in outs if isinstance(o.data, bytes)]


@contextlib.asynccontextmanager
async def hubs(url: str, n: int = 2) -> AsyncIterator[list[LiveHub]]:
    prefix = unique_prefix()
    made: list[tuple[LiveHub, NatsBus]] = []
    try:
        for _ in range(n):
            bus = await NatsBus.connect([url], prefix)
            hub = LiveHub(linger_s=LINGER_S, max_viewer_fragments=100)
            await hub.use_bus(bus)
            made.append((hub, bus))
        yield [h for h, _ in made]
    finally:
        for hub, bus in made:
            await hub.aclose()
            await bus.close()


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    """Leases and heartbeats 5x quicker, so that expiries show within a test's patience."""
    monkeypatch.setattr(cluster_module, "TICK_S", 0.2)
    monkeypatch.setattr(cluster_module, "LEASE_S", 0.6)
    monkeypatch.setattr(cluster_module, "INSTANCE_TIMEOUT_S", 0.6)


async def test_watch_across_instances_and_stop_after_linger(tmp_path: Path, fast: None) -> None:
    with shared_nats(tmp_path) as url:
        async with hubs(url) as (a, b):
            device = uuid.uuid4()
            agent = Agent(device, ["front", "back"])
            await a.attach(agent.link, agent.cameras)
            await wait_for(lambda: device in b.agents, "B hearing of the agent")
            assert b.agents[device].cameras == ["front", "back"]

            viewer = Viewer(None, 100)
            channel = await b.join(device, "", viewer)  # "the camera": its first
            await wait_for(lambda: "start" in agent.kinds(), "the agent told to start")
            assert agent.sent[-1] == {"type": "start", "camera": "front"}
            agent.stream(a)
            agent.frame(a, b"K1", keyframe=True)
            agent.frame(a, b"F1")
            await wait_for(lambda: len(viewer._pending) >= 5, "the stream at B")
            outs = drain(viewer)
            assert media(outs) == [b"SEGMENT", b"K1", b"F1"]
            assert states(outs)[-1] == "streaming"

            # A second viewer at B starts from the current GOP, as on one instance.
            late = Viewer(None, 100)
            await b.join(device, "front", late)
            assert media(drain(late)) == [b"SEGMENT", b"K1", b"F1"]
            b.leave(channel, late)

            b.leave(channel, viewer)
            await wait_for(lambda: "stop" in agent.kinds(), "the agent told to stop", 5)
            assert agent.sent[-1] == {"type": "stop", "camera": "front"}
            assert not a.channels and not b.channels


async def test_late_watcher_gets_the_gop_and_no_frame_twice(tmp_path: Path) -> None:
    with shared_nats(tmp_path) as url:
        async with hubs(url) as (a, b):
            device = uuid.uuid4()
            agent = Agent(device, ["cam"])
            await a.attach(agent.link, agent.cameras)
            local = Viewer(None, 1000)
            await a.join(device, "cam", local)  # streaming already when B's viewer comes
            agent.stream(a)
            agent.frame(a, b"K", keyframe=True)
            for i in range(3):
                agent.frame(a, b"f%d" % i)
            await wait_for(lambda: device in b.agents, "B hearing of the agent")
            remote = Viewer(None, 1000)
            await b.join(device, "cam", remote)
            for i in range(3, 40):
                agent.frame(a, b"f%d" % i)
                await asyncio.sleep(0)
            want = [b"SEGMENT", b"K"] + [b"f%d" % i for i in range(40)]
            got: list[bytes] = []

            def complete() -> bool:
                got.extend(media(drain(remote)))
                return got == want

            await wait_for(complete, "every frame once")


async def test_tell_disconnect_and_snapshot_go_to_the_holder(tmp_path: Path) -> None:
    with shared_nats(tmp_path) as url:
        async with hubs(url) as (a, b):
            device = uuid.uuid4()
            agent = Agent(device, ["cam"])
            await a.attach(agent.link, agent.cameras)
            await wait_for(lambda: device in b.agents, "B hearing of the agent")

            assert await b.tell(device, {"type": "mode", "mode": "away"})
            assert agent.sent[-1] == {"type": "mode", "mode": "away"}
            assert not await b.tell(uuid.uuid4(), {"type": "mode"})  # nobody holds it

            # The zone editor's snapshot, asked at B, answered by the agent at A.
            snapshot_id = bytes(range(16))
            future = b.snapshots.expect(device, "cam", snapshot_id)
            assert await b.tell(device, {"type": "snapshot", "camera": "cam",
                                         "id": snapshot_id.hex()})  # fmt: skip
            a.agent_binary(agent.link, bytes((SNAPSHOT, 0)) + snapshot_id + b"\xff\xd8JPEG")
            assert await asyncio.wait_for(future, 5) == b"\xff\xd8JPEG"
            second = bytes(16)
            failed = b.snapshots.expect(device, "cam", second)
            await b.tell(device, {"type": "snapshot", "camera": "cam", "id": second.hex()})
            a.agent_text(agent.link, {"type": "snapshot_error", "camera": "cam",
                                      "id": second.hex(), "message": "no picture"})  # fmt: skip
            assert await asyncio.wait_for(failed, 5) == "no picture"

            await b.disconnect(device)
            assert agent.closed
            await wait_for(lambda: device not in b.agents, "B hearing the agent went")


async def test_agent_moves_and_the_remote_viewer_resumes(tmp_path: Path, fast: None) -> None:
    with shared_nats(tmp_path) as url:
        async with hubs(url, 3) as (a, b, c):
            device = uuid.uuid4()
            first = Agent(device, ["cam"])
            await a.attach(first.link, first.cameras)
            await wait_for(lambda: device in c.agents, "C hearing of the agent")
            viewer = Viewer(None, 100)
            await c.join(device, "cam", viewer)
            await wait_for(lambda: "start" in first.kinds(), "start at A")
            first.stream(a)
            first.frame(a, b"A-K", keyframe=True)
            await wait_for(lambda: b"A-K" in media(list(viewer._pending)), "A's picture at C")

            # The camera reconnects to B (A has not noticed yet): A lets its link go.
            second = Agent(device, ["cam"])
            await b.attach(second.link, second.cameras)
            await wait_for(lambda: first.closed, "A closing its stale link")
            await wait_for(lambda: "start" in second.kinds(), "start at B", 5)
            second.stream(b)
            second.frame(b, b"B-K", keyframe=True)
            await wait_for(lambda: b"B-K" in media(list(viewer._pending)), "B's picture at C")
            assert "offline" not in states(drain(viewer))[-1:]


async def test_a_dead_watcher_lease_runs_out(tmp_path: Path, fast: None) -> None:
    with shared_nats(tmp_path) as url:
        async with hubs(url) as (a, b):
            device = uuid.uuid4()
            agent = Agent(device, ["cam"])
            await a.attach(agent.link, agent.cameras)
            await wait_for(lambda: device in b.agents, "B hearing of the agent")
            await b.join(device, "cam", Viewer(None, 100))
            await wait_for(lambda: "start" in agent.kinds(), "start")
            # B vanishes without a word (its ticker and bus stop; no unwatch).
            assert b.cluster is not None
            ticker = b.cluster._ticker
            assert ticker is not None
            ticker.cancel()
            await b.cluster.bus.close()
            await wait_for(lambda: "stop" in agent.kinds(), "the lease running out", 5)


async def test_holder_instance_dies_then_agent_comes_back(tmp_path: Path, fast: None) -> None:
    with shared_nats(tmp_path) as url:
        async with hubs(url, 3) as (a, b, c):
            device = uuid.uuid4()
            agent = Agent(device, ["cam"])
            await a.attach(agent.link, agent.cameras)
            await wait_for(lambda: device in c.agents, "C hearing of the agent")
            viewer = Viewer(None, 100)
            await c.join(device, "cam", viewer)
            agent.stream(a)
            await wait_for(lambda: "streaming" in states(list(viewer._pending)), "streaming")
            assert a.cluster is not None and a.cluster._ticker is not None
            a.cluster._ticker.cancel()  # A dies: no heartbeat, no goodbye
            await a.cluster.bus.close()
            await wait_for(lambda: "offline" in states(list(viewer._pending)), "offline at C")
            drain(viewer)
            again = Agent(device, ["cam"])
            await b.attach(again.link, again.cameras)
            await wait_for(lambda: "start" in again.kinds(), "start at B")
            again.stream(b)
            await wait_for(lambda: "streaming" in states(list(viewer._pending)), "resumed")


async def test_nats_lost_degrades_and_recovers(tmp_path: Path, fast: None) -> None:
    server = NatsServer(tmp_path / "nats")
    server.start()
    try:
        async with hubs(server.url) as (a, b):
            device, here = uuid.uuid4(), uuid.uuid4()
            agent, local_agent = Agent(device, ["cam"]), Agent(here, ["cam"])
            await a.attach(agent.link, agent.cameras)
            await b.attach(local_agent.link, local_agent.cameras)
            await wait_for(lambda: device in b.agents, "B hearing of A's agent")
            remote, local = Viewer(None, 100), Viewer(None, 100)
            await b.join(device, "cam", remote)
            await b.join(here, "cam", local)
            agent.stream(a)
            local_agent.stream(b)
            await wait_for(lambda: "streaming" in states(list(remote._pending)), "remote streams")

            server.kill()
            await wait_for(lambda: "offline" in states(list(remote._pending)), "unreachable")
            assert json.loads(drain(remote)[-1].data)["message"] == cluster_module.UNREACHABLE
            drain(local)
            local_agent.frame(b, b"still", keyframe=True)  # B's own camera carries on
            assert media(drain(local)) == [b"still"]

            server.start()
            await wait_for(lambda: device in b.agents, "re-announced", 20)
            # A stopped the camera when B's lease ran out; B's renewed interest starts it.
            await wait_for(lambda: agent.kinds().count("start") == 2, "started again", 20)
            agent.stream(a)
            await wait_for(lambda: "streaming" in states(list(remote._pending)), "recovered", 20)
            agent.frame(a, b"back", keyframe=True)
            await wait_for(lambda: b"back" in media(list(remote._pending)), "frames again")
    finally:
        server.stop()


async def test_bad_input_on_the_bus_is_dropped(tmp_path: Path) -> None:
    with shared_nats(tmp_path) as url:
        async with hubs(url) as (a, b):
            device = uuid.uuid4()
            agent = Agent(device, ["cam"])
            await a.attach(agent.link, agent.cameras)
            await wait_for(lambda: device in b.agents, "B hearing of the agent")
            viewer = Viewer(None, 100)
            await b.join(device, "cam", viewer)
            agent.stream(a)
            await wait_for(lambda: "streaming" in states(list(viewer._pending)), "streaming")
            assert b.cluster is not None and a.cluster is not None
            bus, s = b.cluster.bus, b.cluster.subject
            stream = b.cluster.stream_subject(device, "cam", a.cluster.me)
            with structlog.testing.capture_logs() as logs:
                for subject, data in (
                    (f"{s}.up", b"not json"),
                    (
                        f"{s}.up",
                        json.dumps({"instance": "x", "agents": [{"device": "zz"}]}).encode(),
                    ),
                    (f"{s}.down", b"[]"),
                    (f"{s}.dev.{device.hex}.tell", b"\xff\xfe"),
                    (f"{s}.dev.nothex.watch", b"{}"),
                    (stream, b"\x03" + bytes(8) + b"{bad"),
                    (stream, b"\x09"),
                    (f"{s}.inst.{b.cluster.me}.snapshot", b"\x00"),
                ):
                    await bus.publish(subject, data)
                await asyncio.sleep(0.5)
            dropped = [e for e in logs if e["event"] in ("live.bus_message_dropped",
                                                         "live.bus_frame_dropped")]  # fmt: skip
            assert len(dropped) >= 6, logs
            agent.frame(a, b"alive", keyframe=True)  # both hubs carry on
            await wait_for(lambda: b"alive" in media(list(viewer._pending)), "the stream")
