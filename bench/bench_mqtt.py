"""The agent's MQTT bridge (agent/mqtt/) on a real Mosquitto, against bare aiomqtt on the
same broker in the same run.

* latency: from a camera's motion starting (the `Observers.motion` call the pipeline
  makes) to the state message arriving at a subscriber (paho, its own thread, stamped on
  arrival), one change at a time; and for reference a bare aiomqtt client's QoS 1
  publish -> the same subscriber. The difference is what the bridge adds (the hop from
  the camera's thread to the bridge's loop, the state bookkeeping).
* throughput: messages a second one agent with 8 cameras publishes when motion and
  person flip on all of them at once (bursts of 960 changes, under the outbox's 1000),
  until the subscriber has them all; against bare aiomqtt publishing as many QoS 1
  messages one after another.

Run: .venv/bin/python bench/bench_mqtt.py [--changes 400] [--bursts 5]
Uses the broker on 127.0.0.1:1883 when one answers, else starts a private mosquitto.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import aiomqtt

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # `python bench/x.py` puts only bench/ on the path

from tests.mosquitto import Recorder, clear_retained, recording, retained, shared_broker  # noqa: E402

from doorwarden.agent.config.mqtt import MqttConfig  # noqa: E402
from doorwarden.agent.mqtt.bridge import MqttBridge  # noqa: E402

CAMERAS = 8
BURST_ROUNDS = 60  # x 8 cameras x 2 (motion, person) = 960 changes


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def arrivals(rec: Recorder, topic: str, count: int, timeout_s: float = 10.0) -> None:
    rec.wait(lambda: len(rec.on(topic)) >= count, f"{count} on {topic}", timeout_s)


def bridge_for(address: tuple[str, int], prefix: str, cameras: list[str]) -> MqttBridge:
    config = MqttConfig(
        url=f"mqtt://{address[0]}:{address[1]}", topic_prefix=prefix, discovery=False
    )
    bridge = MqttBridge(config, cameras=cameras, node="bench")
    bridge.start()
    if not bridge.connected.wait(10):
        raise SystemExit("the bridge did not connect")
    return bridge


def bridge_latency(address: tuple[str, int], prefix: str, changes: int) -> list[float]:
    topic = f"{prefix}/bench/cam0/motion"
    with recording(*address, [topic]) as rec:
        bridge = bridge_for(address, prefix, ["cam0"])
        try:
            arrivals(rec, topic, 1)  # the state published on connecting
            took = []
            for i in range(changes):
                seen = len(rec.on(topic))
                started = time.perf_counter()
                bridge.motion("cam0", i % 2 == 0)
                arrivals(rec, topic, seen + 1)
                took.append(rec.on(topic)[seen].at - started)
        finally:
            bridge.stop()
    return took


class BareClient:
    """A bare aiomqtt client on its own loop thread (as the bridge's is)."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.identifier = f"bare-{uuid.uuid4().hex[:8]}"
        self.address = address
        self.client: aiomqtt.Client = self.run(self._open())  # type: ignore[assignment]

    async def _open(self) -> aiomqtt.Client:
        client = aiomqtt.Client(*self.address, identifier=self.identifier)  # in its loop
        await client.__aenter__()
        return client

    def run(self, work: object) -> object:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(30)  # type: ignore[arg-type]

    async def stamped(self, topic: str, payload: bytes) -> float:
        started = time.perf_counter()
        await self.client.publish(topic, payload, qos=1)
        return started

    async def many(self, topic: str, count: int) -> float:
        started = time.perf_counter()
        for i in range(count):
            await self.client.publish(topic, b"ON" if i % 2 else b"OFF", qos=1)
        return started

    def close(self) -> None:
        self.run(self.client.__aexit__(None, None, None))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


def bare_latency(address: tuple[str, int], prefix: str, changes: int) -> list[float]:
    topic = f"{prefix}/bare/motion"
    with recording(*address, [topic]) as rec:
        bare = BareClient(address)
        try:
            took = []
            for i in range(changes):
                seen = len(rec.on(topic))
                started = bare.run(bare.stamped(topic, b"ON" if i % 2 else b"OFF"))
                arrivals(rec, topic, seen + 1)
                took.append(rec.on(topic)[seen].at - float(started))  # type: ignore[arg-type]
        finally:
            bare.close()
    return took


def bridge_burst(address: tuple[str, int], prefix: str) -> float:
    cameras = [f"cam{i}" for i in range(CAMERAS)]
    with recording(*address, [f"{prefix}/bench/+/motion", f"{prefix}/bench/+/person"]) as rec:
        bridge = bridge_for(address, prefix, cameras)
        try:
            rec.wait(lambda: len(rec.messages) >= 2 * CAMERAS, "the first states")
            before = len(rec.messages)
            started = time.perf_counter()
            for k in range(BURST_ROUNDS):
                on = k % 2 == 0
                for camera in cameras:
                    bridge.motion(camera, on)
                    bridge.person(camera, on)
            total = BURST_ROUNDS * CAMERAS * 2
            rec.wait(lambda: len(rec.messages) >= before + total, f"{total} messages", 60)
            return total / (rec.messages[-1].at - started)
        finally:
            bridge.stop()


def bare_burst(address: tuple[str, int], prefix: str) -> float:
    topic = f"{prefix}/bare/burst"
    total = BURST_ROUNDS * CAMERAS * 2
    with recording(*address, [topic]) as rec:
        bare = BareClient(address)
        try:
            started = float(bare.run(bare.many(topic, total)))  # type: ignore[arg-type]
            rec.wait(lambda: len(rec.on(topic)) >= total, f"{total} messages", 60)
            return total / (rec.on(topic)[-1].at - started)
        finally:
            bare.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=400, help="latency samples per side")
    parser.add_argument("--bursts", type=int, default=5, help="throughput bursts per side")
    args = parser.parse_args()
    prefix = f"dwbench-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp, shared_broker(Path(tmp)) as address:
        print(f"broker {address[0]}:{address[1]}; QoS 1 on both sides")
        for attempt in range(2):  # interleaved: drift on the machine hits both sides
            bridge_ms = [t * 1000 for t in bridge_latency(address, prefix, args.changes)]
            bare_ms = [t * 1000 for t in bare_latency(address, prefix, args.changes)]
            print(
                f"latency run {attempt + 1} ({args.changes} changes each): "
                f"motion start -> state message p50 {pct(bridge_ms, 50):.2f} ms, "
                f"p95 {pct(bridge_ms, 95):.2f} ms, max {max(bridge_ms):.2f} ms | "
                f"bare aiomqtt publish -> receive p50 {pct(bare_ms, 50):.2f} ms, "
                f"p95 {pct(bare_ms, 95):.2f} ms"
            )
        rates = [bridge_burst(address, prefix) for _ in range(args.bursts)]
        bare = [bare_burst(address, prefix) for _ in range(args.bursts)]
        print(
            f"throughput, one agent with {CAMERAS} cameras (bursts of "
            f"{BURST_ROUNDS * CAMERAS * 2} state changes): median "
            f"{statistics.median(rates):,.0f} msg/s (min {min(rates):,.0f}) | bare aiomqtt "
            f"QoS 1 one after another: median {statistics.median(bare):,.0f} msg/s"
        )
        left = retained(*address, f"{prefix}/#", 0.3)
        clear_retained(*address, list(left))


if __name__ == "__main__":
    main()
