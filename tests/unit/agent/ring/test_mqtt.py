"""Presses from an MQTT topic, against the real Mosquitto on 127.0.0.1:1883 (skipped with
the reason when it is not reachable here; in CI it must be)."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from paho.mqtt.client import Client
from paho.mqtt.enums import CallbackAPIVersion

from doorwarden.agent.config.models import CameraConfig
from doorwarden.agent.config.ring import MqttRing
from doorwarden.agent.ring.doorbell import Doorbell
from doorwarden.agent.ring.mqtt import MqttButton
from tests.tmpfs import IN_CI

HOST, PORT = "127.0.0.1", 1883


@pytest.fixture(scope="module", autouse=True)
def broker() -> None:
    try:
        socket.create_connection((HOST, PORT), timeout=2).close()
    except OSError as exc:
        reason = f"no MQTT broker at {HOST}:{PORT} ({exc})"
        if IN_CI:
            pytest.fail(f"CI must run the MQTT doorbell tests: {reason}")
        pytest.skip(reason)


@pytest.fixture
def publisher() -> Iterator[Callable[..., None]]:
    client = Client(CallbackAPIVersion.VERSION2, client_id=f"test-{uuid.uuid4().hex[:8]}")
    client.connect(HOST, PORT)
    client.loop_start()

    def publish(topic: str, payload: bytes | str, *, retain: bool = False) -> None:
        client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    yield publish
    client.disconnect()
    client.loop_stop()


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_message_on_the_topic_rings_the_doorbell_once_per_window(
    tmp_path: Path, publisher: Callable[..., None]
) -> None:
    topic = f"doorwarden-test/{uuid.uuid4().hex}/button"
    camera = CameraConfig.model_validate(
        {"name": "front", "source": {"kind": "synthetic"},
         "ring": {"mqtt": {"topic": topic.rsplit("/", 1)[0] + "/+", "payload": "pressed"}}}
    )  # fmt: skip
    bell = Doorbell([camera], tmp_path)
    assert camera.ring.mqtt is not None
    button = MqttButton("front", camera.ring.mqtt, bell.press)
    button.start()
    try:
        assert button.subscribed.wait(10)
        publisher(topic, b"released")  # not the configured payload
        publisher(topic, b" pressed\n")
        wait_for(lambda: button.presses == 1)
        for _ in range(5):  # the visitor insists
            publisher(topic, b"pressed")
        wait_for(lambda: button.presses == 6)
        assert [e.source for e in bell.queue.pending()] == ["mqtt"]  # debounced to one
    finally:
        button.stop()


def test_a_retained_press_from_before_is_not_a_visitor_now(
    tmp_path: Path, publisher: Callable[..., None]
) -> None:
    topic = f"doorwarden-test/{uuid.uuid4().hex}"
    publisher(topic, b"1", retain=True)
    presses: list[str] = []
    button = MqttButton("front", MqttRing(topic=topic), lambda cam, _s: presses.append(cam))
    button.start()
    try:
        assert button.subscribed.wait(10)
        publisher(topic, b"2")
        wait_for(lambda: presses == ["front"])
        time.sleep(0.3)
        assert presses == ["front"]
    finally:
        button.stop()
        publisher(topic, b"", retain=True)  # clear the retained message


def test_matching_rules() -> None:
    button = MqttButton("front", MqttRing(topic="zigbee2mqtt/bell/#", payload="ON"), print)
    assert button.matches("zigbee2mqtt/bell/action", b"ON")
    assert not button.matches("zigbee2mqtt/other", b"ON")
    assert not button.matches("zigbee2mqtt/bell", b"OFF")
    assert not button.matches("zigbee2mqtt/bell", b"\xff\xfe")
    assert not button.matches("zigbee2mqtt/bell", b"ON", retain=True)
