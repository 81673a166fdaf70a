"""A real Mosquitto broker for the MQTT tests, and a recording subscriber.

`shared_broker()` is the broker on 127.0.0.1:1883 when one answers there (the test
machines run one as a service); else a private one is started. `private_broker()` starts
a `mosquitto` process of the test's own on a free port (no persistence: a restart loses
every retained message, as a broker restarted without a disk would), which the test may
kill and start again. Without the mosquitto binary the test is skipped with the reason,
except in CI (CI=true), where it fails.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from paho.mqtt.client import Client, MQTTMessage
from paho.mqtt.enums import CallbackAPIVersion

from tests.live_server import free_port
from tests.services import ServiceProcess, need, reachable

HOST, PORT = "127.0.0.1", 1883
BINARY = shutil.which("mosquitto") or (
    "/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None
)


def _need(reason: str) -> None:
    need("MQTT", reason)


class Mosquitto(ServiceProcess):
    """One mosquitto process on 127.0.0.1:`port`; `extra` lines go in its configuration."""

    name = "mosquitto"

    def __init__(self, directory: Path, *, port: int | None = None, extra: str = "") -> None:
        if BINARY is None:
            _need("mosquitto is not installed (Debian: apt install mosquitto)")
        self.binary = str(BINARY)
        super().__init__(directory, port or free_port())
        self.config = directory / "mosquitto.conf"
        self.config.write_text(
            f"listener {self.port} {HOST}\n"
            "persistence false\n"
            "log_dest stderr\n"
            "log_type error\n"
            "log_type warning\n"
            f"{extra or 'allow_anonymous true'}\n" + ("user root\n" if os.geteuid() == 0 else "")
            # As root it would switch to the mosquitto user, who cannot read the test's
            # private temporary files (password file, certificates).
        )

    def command(self) -> list[str]:
        return [self.binary, "-c", str(self.config)]


@contextlib.contextmanager
def private_broker(directory: Path, *, extra: str = "") -> Iterator[Mosquitto]:
    broker = Mosquitto(directory, extra=extra)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@contextlib.contextmanager
def shared_broker(directory: Path) -> Iterator[tuple[str, int]]:
    """The machine's broker on 127.0.0.1:1883, else a private one for the block."""
    if reachable(HOST, PORT):
        yield HOST, PORT
        return
    with private_broker(directory) as broker:
        yield broker.host, broker.port


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool
    at: float = field(compare=False)  # time.perf_counter() on arrival


class Recorder:
    """A paho subscriber on its own thread that keeps every message it receives."""

    def __init__(
        self, host: str, port: int, topics: list[str], *, auth: tuple[str, str] | None = None
    ) -> None:
        self.messages: list[Received] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = Client(CallbackAPIVersion.VERSION2, client_id=f"rec-{uuid.uuid4().hex[:10]}")
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_args: self._subscribed.set()
        if auth is not None:
            self.client.username_pw_set(*auth)
        self.client.connect(host, port)
        self.client.subscribe([(t, 1) for t in topics])
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise RuntimeError("the recorder could not subscribe")

    def _on_message(self, _client: Client, _userdata: object, message: MQTTMessage) -> None:
        with self._lock:
            self.messages.append(
                Received(
                    message.topic, bytes(message.payload), bool(message.retain), time.perf_counter()
                )
            )

    def on(self, topic: str) -> list[Received]:
        with self._lock:
            return [m for m in self.messages if m.topic == topic]

    def last(self, topic: str) -> bytes | None:
        found = self.on(topic)
        return found[-1].payload if found else None

    def wait(self, check: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not check():
            if time.monotonic() > deadline:
                with self._lock:
                    seen = sorted({m.topic for m in self.messages})
                raise AssertionError(f"timed out waiting for {what}; topics seen: {seen}")
            time.sleep(0.01)

    def wait_payload(self, topic: str, payload: bytes, timeout_s: float = 10.0) -> None:
        self.wait(lambda: self.last(topic) == payload, f"{topic} = {payload!r}", timeout_s)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextlib.contextmanager
def recording(
    host: str, port: int, topics: list[str], *, auth: tuple[str, str] | None = None
) -> Iterator[Recorder]:
    recorder = Recorder(host, port, topics, auth=auth)
    try:
        yield recorder
    finally:
        recorder.close()


def retained(host: str, port: int, topic_filter: str, settle_s: float = 0.5) -> dict[str, bytes]:
    """The retained messages under `topic_filter` now, as a new subscriber gets them."""
    with recording(host, port, [topic_filter]) as rec:
        time.sleep(settle_s)
        return {m.topic: m.payload for m in rec.messages if m.retain}


def clear_retained(host: str, port: int, topics: list[str]) -> None:
    """Remove what a test left retained on the shared broker (an empty retained payload)."""
    client = Client(CallbackAPIVersion.VERSION2, client_id=f"clr-{uuid.uuid4().hex[:10]}")
    client.connect(host, port)
    client.loop_start()
    try:
        for topic in topics:
            client.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()
