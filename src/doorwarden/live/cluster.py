"""Live view across server instances joined by a bus (docs/live-view.md, "Several
instances"). Each instance tells the others which agents it holds (`up`/`down`, and a
heartbeat: an instance silent for `INSTANCE_TIMEOUT_S` took its agents with it), so every
hub knows where each camera is. Then:

* a viewer here of a camera held elsewhere: the holder hears `watch` (a lease this instance
  renews every `TICK_S` while its channel is watched or lingers), answers with the current
  picture (state, init, GOP), and publishes the stream on the camera's subject while any
  lease is alive (live/stream.py); a dead watcher's lease runs out and the camera stops;
* `tell` (modes, settings, snapshot requests) and `disconnect` are requests to the
  holder; a snapshot's answer comes back to the instance that asked;
* the bus lost: channels of agents held here carry on; the others say the camera is
  unreachable, and everything is announced and watched again when it comes back.

Talk is not routed: a viewer here is told so (talk.REMOTE_TALK).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Awaitable, Mapping

import structlog

from doorwarden.bus import Bus, Subscription
from doorwarden.live import wire
from doorwarden.live.background import Background
from doorwarden.live.ports import AgentLink, LiveHub
from doorwarden.live.remote import RemoteAgent
from doorwarden.live.stream import Publisher, Watch

log = structlog.get_logger("doorwarden.live.cluster")

TICK_S = 1.0  # heartbeat and lease renewal
LEASE_S = 3.0  # a watch not renewed for this long ends
INSTANCE_TIMEOUT_S = 3.0  # an instance not heard for this long is gone, with its agents
REQUEST_S = 2.0
ANNOUNCE_BATCH = 500
SNAPSHOT_ASK_S = 30.0
OUTBOX = 4096
UNREACHABLE = "The camera is unreachable for now: this server lost touch with the others."
INSTANCE_GONE = "The camera's server went away: waiting for the camera to reconnect."


class Cluster:
    def __init__(self, hub: LiveHub, bus: Bus) -> None:
        self.hub, self.bus = hub, bus
        self.me = bus.instance_id
        self.subject = f"{bus.prefix}.live"
        self.remote: dict[uuid.UUID, RemoteAgent] = {}
        self.instances: dict[str, float] = {}  # instance -> loop time last heard
        self.watches: dict[tuple[uuid.UUID, str], Watch] = {}
        self.publishers: dict[tuple[uuid.UUID, str], Publisher] = {}
        self.snapshot_asks: dict[tuple[uuid.UUID, str], tuple[str, float]] = {}
        self.attached_at: dict[uuid.UUID, float] = {}
        self._subs: list[Subscription] = []
        self._background = Background("live.cluster_task_failed")
        self._ticker: asyncio.Future[None] | None = None
        # Stream frames leave in the order the channels produced them, by one sender; a
        # full outbox (the bus slower than the cameras) drops, as a slow viewer does.
        self._outbox: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue(OUTBOX)
        self._sender: asyncio.Future[None] | None = None

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        s = self.subject
        for subject, handler in (
            (f"{s}.up", self._on_up),
            (f"{s}.down", self._on_down),
            (f"{s}.alive", self._on_alive),
            (f"{s}.hello", self._on_hello),
            (f"{s}.dev.*.*", self._on_device),
            (f"{s}.inst.{self.me}.*", self._on_mine),
        ):
            self._subs.append(await self.bus.subscribe(subject, wire.guarded(handler)))
        self.bus.on_change(self._on_bus_change)
        await self._greet()
        self._ticker = asyncio.ensure_future(self._tick_forever())
        self._sender = asyncio.ensure_future(self._send_forever())

    async def close(self) -> None:
        for task in (self._ticker, self._sender):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for watch in list(self.watches.values()):
            await watch.stop(say_unwatch=True)
        self.watches.clear()
        for device in list(self.hub.local):
            await self._publish("down", {"instance": self.me, "device": device.hex})
        for sub in self._subs:
            await sub.unsubscribe()
        self._background.cancel()

    def spawn(self, work: Awaitable[None]) -> None:
        self._background.spawn(work)

    def send(self, subject: str, data: bytes) -> None:
        """A stream frame, in order with the others (Publisher.tap)."""
        if len(data) > self.bus.max_payload:
            log.warning("live.frame_too_large", subject=subject, size=len(data))
            return
        try:
            self._outbox.put_nowait((subject, data))
        except asyncio.QueueFull:
            log.warning("live.outbox_full", subject=subject)

    async def _send_forever(self) -> None:
        while True:
            subject, data = await self._outbox.get()
            await self.bus.publish(subject, data)

    async def _publish(self, what: str, body: Mapping[str, object]) -> None:
        await self.bus.publish(f"{self.subject}.{what}", json.dumps(body).encode())

    async def _greet(self) -> None:
        """Who holds what: ask everyone, and say what is here."""
        await self._publish("alive", {"instance": self.me})
        await self._publish("hello", {"instance": self.me})
        await self._announce(list(self.hub.local.values()))

    # -- what this instance holds ------------------------------------------------------
    async def _announce(self, links: list[AgentLink]) -> None:
        for i in range(0, len(links), ANNOUNCE_BATCH):
            agents = [
                {
                    "device": link.device_id.hex,
                    "cameras": link.cameras,
                    "at": self.attached_at.get(link.device_id, 0.0),
                }
                for link in links[i : i + ANNOUNCE_BATCH]
            ]
            await self._publish("up", {"instance": self.me, "agents": agents})

    async def attached(self, link: AgentLink) -> None:
        self.attached_at[link.device_id] = time.time()
        self.remote.pop(link.device_id, None)
        await self.reconcile(link.device_id)
        await self._announce([link])

    def detached(self, link: AgentLink) -> None:
        self.attached_at.pop(link.device_id, None)
        body = {"instance": self.me, "device": link.device_id.hex}
        self.spawn(self._publish("down", body))

    # -- what the others hold ----------------------------------------------------------
    async def _on_alive(self, _subject: str, data: bytes) -> None:
        instance = str(wire.message(data)["instance"])
        if instance != self.me:
            self.instances[instance] = _now()

    async def _on_hello(self, _subject: str, data: bytes) -> None:
        if str(wire.message(data)["instance"]) != self.me:
            await self._publish("alive", {"instance": self.me})
            await self._announce(list(self.hub.local.values()))

    async def _on_up(self, _subject: str, data: bytes) -> None:
        body = wire.message(data)
        instance, agents = str(body["instance"]), body["agents"]
        if instance == self.me or not isinstance(agents, list):
            return
        self.instances[instance] = _now()
        for entry in agents:
            device = uuid.UUID(hex=str(entry["device"]))
            cameras = [str(c) for c in entry["cameras"]]
            at = float(entry["at"])
            agent = RemoteAgent(device, cameras, instance, at, self.tell, self.disconnect)
            if device in self.hub.local:
                if at <= self.attached_at.get(device, 0.0):
                    continue  # ours is the newer connection: the other will hear of it
                self.remote[device] = agent
                log.info("live.agent_moved", device=str(device), to=instance)
                message = "The camera reconnected to another server."
                await self.hub.release(device, message, "agent-moved")
            else:
                self.remote[device] = agent
            self.hub.adopt_default(device, cameras)
            await self.reconcile(device)

    async def _on_down(self, _subject: str, data: bytes) -> None:
        body = wire.message(data)
        device = uuid.UUID(hex=str(body["device"]))
        known = self.remote.get(device)
        if known is None or known.instance != str(body["instance"]):
            return  # it moved meanwhile: that instance's news is stale
        del self.remote[device]
        await self._lost(device, "The camera is offline.")

    async def _lost(self, device: uuid.UUID, message: str) -> None:
        for key in [k for k in self.watches if k[0] == device]:
            await self.watches.pop(key).stop(say_unwatch=False)
        for channel in self.hub.channels_of(device):
            channel.reset("offline", message)
        self.hub.snapshots.agent_gone(device, message)

    def _on_bus_change(self, connected: bool) -> None:
        self.spawn(self._reconnected() if connected else self._disconnected())

    async def _disconnected(self) -> None:
        for device in list(self.remote):
            del self.remote[device]
            await self._lost(device, UNREACHABLE)

    async def _reconnected(self) -> None:
        await self._greet()

    # -- watching a camera held elsewhere ----------------------------------------------
    async def reconcile(self, device: uuid.UUID) -> None:
        """Watch what is watched here and held elsewhere; nothing else."""
        holder = self.remote.get(device) if device not in self.hub.local else None
        wanted = set()
        for channel in self.hub.channels_of(device):
            if holder is not None and (channel.viewers or channel.stop_timer is not None):
                wanted.add(channel.camera)
        for key in [k for k in self.watches if k[0] == device]:
            watch = self.watches[key]
            if key[1] not in wanted or holder is None or watch.instance != holder.instance:
                del self.watches[key]
                await watch.stop(say_unwatch=holder is not None)
        if holder is None:
            return
        for camera in wanted - {k[1] for k in self.watches if k[0] == device}:
            target = self.hub.channels.get((device, camera))
            if target is None:
                continue
            if holder.resolve(camera) is None:
                target.reset("error", f"This camera has no stream named {camera!r}.")
                continue
            watch = Watch(self, target, holder.instance)
            self.watches[(device, camera)] = watch
            await watch.start()

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            try:
                await self._tick()
            except Exception as exc:  # noqa: BLE001 - the next tick tries again
                log.warning("live.cluster_tick_failed", error=repr(exc))

    async def _tick(self) -> None:
        now = _now()
        await self._publish("alive", {"instance": self.me})
        for instance, heard in list(self.instances.items()):
            if now - heard > INSTANCE_TIMEOUT_S:
                del self.instances[instance]
                for device, agent in list(self.remote.items()):
                    if agent.instance == instance:
                        del self.remote[device]
                        await self._lost(device, INSTANCE_GONE)
        for device in {k[0] for k in self.watches} | {k[0] for k in self.hub.channels}:
            await self.reconcile(device)
        for watch in list(self.watches.values()):
            await watch.renew()
        for key, publisher in list(self.publishers.items()):
            publisher.expire(now)
            if not publisher.channel.remote and self.publishers.get(key) is publisher:
                self.publishers.pop(key, None)
                await self.hub.remote_left(publisher.channel)
        for key, (_, at) in list(self.snapshot_asks.items()):
            if now - at > SNAPSHOT_ASK_S:
                del self.snapshot_asks[key]

    # -- requests to the holder --------------------------------------------------------
    async def tell(self, device: uuid.UUID, message: dict[str, object]) -> bool:
        body = json.dumps({"instance": self.me, "message": message}).encode()
        answer = await self.bus.request(self.dev(device, "tell"), body, timeout=REQUEST_S)
        return answer == b"1"

    async def disconnect(self, device: uuid.UUID) -> None:
        await self.bus.request(self.dev(device, "disconnect"), b"{}", timeout=REQUEST_S)

    def dev(self, device: uuid.UUID, what: str) -> str:
        return f"{self.subject}.dev.{device.hex}.{what}"

    async def _on_device(self, subject: str, data: bytes) -> bytes | None:
        """A request or lease for a device: answered by the instance holding it only."""
        _, _, _, device_hex, what = subject.rsplit(".", 4)
        device = uuid.UUID(hex=device_hex)
        link = self.hub.local.get(device)
        if link is None:
            return None
        body = wire.message(data)
        if what == "tell":
            message = body["message"]
            if not isinstance(message, dict):
                raise wire.WireError("tell carries a JSON object")
            if message.get("type") == "snapshot":
                key = (device, str(message.get("id")))
                self.snapshot_asks[key] = (str(body["instance"]), _now())
            return b"1" if await self.hub.tell(device, message) else b"0"
        if what == "disconnect":
            await self.hub.disconnect(device)
            return b"1"
        if what in ("watch", "unwatch"):
            return await self._on_watch(link, str(body["instance"]), str(body["camera"]), what)
        raise wire.WireError(f"unknown device request {what!r}")

    async def _on_watch(self, link: AgentLink, instance: str, camera: str, what: str) -> bytes:
        resolved = link.resolve(camera)
        if resolved is None:
            return b""
        key = (link.device_id, resolved)
        if what == "unwatch":
            if (publisher := self.publishers.get(key)) is not None:
                publisher.channel.remote.pop(instance, None)
                if not publisher.channel.remote:
                    del self.publishers[key]
                    publisher.channel.tap = None
                    await self.hub.remote_left(publisher.channel)
            return b""
        channel = await self.hub.remote_watch(link.device_id, resolved, instance, _now() + LEASE_S)
        if channel is None:
            return b""
        publisher = self.publishers.get(key)
        if publisher is None or publisher.channel is not channel:
            publisher = Publisher(
                self, channel, self.stream_subject(link.device_id, resolved, self.me)
            )
            self.publishers[key] = publisher
        return publisher.catch_up()

    def stream_subject(self, device: uuid.UUID, camera: str, holder: str) -> str:
        """The holder's own: frames of a holder gone stale never mix with the new one's."""
        return f"{self.subject}.cam.{device.hex}.{camera.encode().hex() or '-'}.{holder}"

    # -- snapshots asked from another instance -----------------------------------------
    def forward_snapshot(self, device: uuid.UUID, camera: str, body: bytes) -> bool:
        """The agent's answer to a snapshot another instance asked for: sent there."""
        asked = self.snapshot_asks.pop((device, bytes(body[:16]).hex()), None)
        if asked is None:
            return False
        head = json.dumps({"device": device.hex, "camera": camera}).encode()
        data = wire.LEN.pack(len(head)) + head + bytes(body)
        if len(data) > self.bus.max_payload:
            return self.forward_snapshot_error(
                device,
                {"id": bytes(body[:16]).hex(), "message": "The snapshot is too large to cross "
                 "between server instances (raise NATS's max_payload)."},
                asked=asked[0],
            )  # fmt: skip
        self.spawn(self.bus.publish(f"{self.subject}.inst.{asked[0]}.snapshot", data))
        return True

    def forward_snapshot_error(
        self, device: uuid.UUID, message: dict[str, object], *, asked: str | None = None
    ) -> bool:
        if asked is None:
            found = self.snapshot_asks.pop((device, str(message.get("id"))), None)
            if found is None:
                return False
            asked = found[0]
        body = {"device": device.hex, "id": message.get("id"), "message": message.get("message")}
        subject = f"{self.subject}.inst.{asked}.snapshot_error"
        self.spawn(self.bus.publish(subject, json.dumps(body).encode()))
        return True

    async def _on_mine(self, subject: str, data: bytes) -> None:
        what = subject.rsplit(".", 1)[1]
        if what == "snapshot":
            (size,) = wire.LEN.unpack_from(data)
            head = wire.message(data[wire.LEN.size : wire.LEN.size + size])
            device = uuid.UUID(hex=str(head["device"]))
            self.hub.snapshots.agent_reply(
                device, str(head["camera"]), data[wire.LEN.size + size :]
            )
        elif what == "snapshot_error":
            body = wire.message(data)
            self.hub.snapshots.agent_error(uuid.UUID(hex=str(body["device"])), body)
        else:
            raise wire.WireError(f"unknown message {what!r}")


def _now() -> float:
    return asyncio.get_running_loop().time()
