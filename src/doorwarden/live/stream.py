"""A camera's stream between two instances (live/cluster.py): the holder's `Publisher`
taps its channel while leases are alive; the watcher's `Watch` feeds a channel of its own
from the camera's subject, after the current picture it asked for (wire.py)."""

from __future__ import annotations

import json
import uuid
from collections import deque
from typing import Protocol

import structlog

from doorwarden.bus import Bus, Subscription
from doorwarden.live import wire
from doorwarden.live.channel import Channel

log = structlog.get_logger("doorwarden.live.cluster")

EARLY_FRAMES = 1000  # frames kept while the current picture is on its way
MARGIN = 4096  # room for headers in a catch-up answer


class Cluster(Protocol):
    """What a stream needs of live/cluster.py's Cluster (which imports this module)."""

    bus: Bus
    me: str

    def send(self, subject: str, data: bytes) -> None: ...
    def stream_subject(self, device: uuid.UUID, camera: str, holder: str) -> str: ...
    def dev(self, device: uuid.UUID, what: str) -> str: ...


class Publisher:
    """The holder's side: the channel's stream on `subject`, numbered."""

    def __init__(self, cluster: Cluster, channel: Channel, subject: str) -> None:
        self.cluster, self.channel, self.subject = cluster, channel, subject
        self.seq = 0
        channel.tap = self

    def _send(self, frame: wire.Frame) -> None:
        self.cluster.send(self.subject, frame.encode())

    def state(self, message: str) -> None:
        self.seq += 1
        self._send(wire.Frame(wire.STATE, self.seq, data=message.encode()))

    def init(self, init_json: str, segment: bytes) -> None:
        self.seq += 1
        self._send(wire.Frame(wire.INIT, self.seq, init_json, segment))

    def fragment(self, data: bytes, *, keyframe: bool) -> None:
        self.seq += 1
        self._send(wire.Frame(wire.KEYFRAME if keyframe else wire.FRAGMENT, self.seq, data=data))

    def catch_up(self) -> bytes:
        """State, init and GOP as of now: what a new watcher shows first. A GOP too large
        for one bus message is left out (the watcher's viewers wait for the next keyframe)."""
        channel = self.channel
        frames = [wire.Frame(wire.STATE, self.seq, data=channel.state_message_text().encode())]
        if channel.init is not None:
            frames.append(wire.Frame(wire.INIT, self.seq, channel.init[0], channel.init[1]))
            frames += [
                wire.Frame(wire.KEYFRAME if i == 0 else wire.FRAGMENT, self.seq, data=f)
                for i, f in enumerate(channel.gop)
            ]
        packed = wire.pack([f.encode() for f in frames])
        if len(packed) > self.cluster.bus.max_payload - MARGIN:
            packed = wire.pack([f.encode() for f in frames[:2]])
        return packed

    def expire(self, now: float) -> None:
        for instance, until in list(self.channel.remote.items()):
            if until < now:
                del self.channel.remote[instance]
                log.info("live.watch_expired", device=str(self.channel.device_id), by=instance)
        if not self.channel.remote:
            self.channel.tap = None


class Watch:
    """The watcher's side: one channel here fed from the instance holding its agent."""

    def __init__(self, cluster: Cluster, channel: Channel, instance: str) -> None:
        self.cluster, self.channel, self.instance = cluster, channel, instance
        self.applied: int | None = None  # the sequence number shown up to
        self.early: deque[wire.Frame] = deque(maxlen=EARLY_FRAMES)
        self.subscription: Subscription | None = None
        self.stopped = False
        self.body = json.dumps({"instance": cluster.me, "camera": channel.camera}).encode()
        device = channel.device_id
        self.subject = cluster.stream_subject(device, channel.camera, instance)
        self.watch_subject = cluster.dev(device, "watch")

    async def start(self) -> None:
        if self.channel.init is None:
            self.channel.set_state("connecting")
        self.subscription = await self.cluster.bus.subscribe(self.subject, self._on_frame)
        await self._catch_up()

    async def _catch_up(self) -> None:
        bus = self.cluster.bus
        answer = await bus.request(self.watch_subject, self.body, timeout=2.0)
        if self.stopped or not answer:
            return  # asked again at the next renewal
        frames = wire.unpack(answer)
        self.channel.reset("connecting")
        for frame in frames:
            self._apply(frame)
        self.applied = max((f.seq for f in frames), default=0)
        for frame in self.early:
            if frame.seq > self.applied:
                self._apply(frame)
                self.applied = frame.seq
        self.early.clear()

    async def renew(self) -> None:
        if self.applied is None:
            await self._catch_up()
        else:
            await self.cluster.bus.publish(self.watch_subject, self.body)

    async def _on_frame(self, _subject: str, data: bytes) -> None:
        try:
            frame = wire.decode(data)
        except ValueError as exc:
            log.warning("live.bus_frame_dropped", subject=self.subject, error=repr(exc)[:300])
            return
        if self.stopped:
            return
        if self.applied is None:
            self.early.append(frame)
        elif frame.seq > self.applied:
            self._apply(frame)
            self.applied = frame.seq

    def _apply(self, frame: wire.Frame) -> None:
        channel = self.channel
        if frame.kind == wire.STATE:
            state = json.loads(frame.data)
            message = state.get("message")
            text = str(message)[:300] if message is not None else None
            if state["state"] in ("offline", "error"):
                channel.reset(state["state"], text)
            elif state["state"] != "streaming" or channel.init is not None:
                channel.set_state(state["state"], text)
        elif frame.kind == wire.INIT:
            channel.new_stream(frame.init_json, frame.data)
        else:
            channel.fragment(frame.data, keyframe=frame.kind == wire.KEYFRAME)

    async def stop(self, *, say_unwatch: bool) -> None:
        self.stopped = True
        if self.subscription is not None:
            await self.subscription.unsubscribe()
        if say_unwatch:
            unwatch = self.cluster.dev(self.channel.device_id, "unwatch")
            await self.cluster.bus.publish(unwatch, self.body)
