"""The MQTT bridge against a real Mosquitto: discovery and states retained, events,
availability by goodbye and by last will, a broker that goes away and comes back,
credentials and TLS, and what never reaches the broker (images, unless snapshots are on).

The machine's broker on 127.0.0.1:1883 when it answers, else a private one (see
tests/mosquitto.py); each test has topic prefixes of its own and clears what it left
retained. The broker-restart and TLS tests run private brokers they can kill.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from doorwarden.agent.config.mqtt import MqttConfig
from doorwarden.agent.delivery.identity import DeviceIdentity, Plan
from doorwarden.agent.mqtt.bridge import MqttBridge
from doorwarden.agent.mqtt.discovery import DEFAULT_MODES, configs
from doorwarden.agent.observe import ClipFinished, Observers
from tests.live_server import free_port, self_signed_certificate
from tests.mosquitto import (
    clear_retained,
    private_broker,
    recording,
    retained,
    shared_broker,
)

PASSWD = shutil.which("mosquitto_passwd")
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF" + bytes(range(256)) * 4


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    with shared_broker(tmp_path_factory.mktemp("mosquitto")) as address:
        yield address


class Names:
    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:10]
        self.prefix, self.ha = f"dwtest-{tag}", f"dwha-{tag}"


@pytest.fixture
def names(broker: tuple[str, int]) -> Iterator[Names]:
    names = Names()
    yield names
    left = {
        **retained(*broker, f"{names.prefix}/#", 0.3),
        **retained(*broker, f"{names.ha}/#", 0.3),
    }
    clear_retained(*broker, list(left))


def config(address: tuple[str, int], names: Names, **fields: Any) -> MqttConfig:
    return MqttConfig.model_validate(
        {"url": f"mqtt://{address[0]}:{address[1]}", "topic_prefix": names.prefix,
         "discovery_prefix": names.ha,
         # Unique on a broker other test runs may share (one id knocks the other off).
         "client_id": f"{names.prefix}-{uuid.uuid4().hex[:6]}", **fields}
    )  # fmt: skip


def finished(thumbnail: bytes | None = JPEG) -> ClipFinished:
    return ClipFinished(
        camera="front", clip_id="7", started_at=datetime(2026, 12, 6, 17, 0, tzinfo=UTC),
        ended_at=datetime(2026, 12, 6, 17, 0, 9, tzinfo=UTC), labels=("motion", "person"),
        thumbnail=thumbnail,
    )  # fmt: skip


def test_discovery_states_and_availability_are_retained(
    broker: tuple[str, int], names: Names
) -> None:
    bridge = MqttBridge(config(broker, names), cameras=["front", "back"], node="dev-1", mode="home")
    bridge.start()
    try:
        assert bridge.connected.wait(10)
        base = f"{names.prefix}/dev-1"
        found = retained(*broker, f"{names.ha}/#")
        expected = configs(
            prefix=names.ha, topics=bridge.topics, device=bridge.device,
            cameras=["front", "back"], commands=False, modes=list(DEFAULT_MODES),
        )  # fmt: skip
        assert found == {t: p for t, p in expected if p}  # the removals are not kept
        kinds = {t.split("/")[1] for t in found}
        assert kinds == {"binary_sensor", "event", "sensor"}  # no token: nothing to command
        for payload in found.values():
            body = json.loads(payload)
            assert body["availability_topic"] == f"{base}/availability"
            assert body["device"]["identifiers"] == ["doorwarden_dev-1"]
            assert "command_topic" not in body
        states = retained(*broker, f"{names.prefix}/#")
        assert states == {
            f"{base}/availability": b"online",
            f"{base}/mode": b"home",
            **{f"{base}/{c}/{w}": v for c in ("front", "back")
               for w, v in (("motion", b"OFF"), ("person", b"OFF"), ("detection", b"ON"))},
        }  # fmt: skip
    finally:
        bridge.stop()
    # A clean stop says goodbye: retained, so Home Assistant shows the entities unavailable.
    assert retained(*broker, f"{names.prefix}/dev-1/availability") == {
        f"{names.prefix}/dev-1/availability": b"offline"
    }


def test_what_the_cameras_tell_the_observers_reaches_the_broker_and_no_image(
    broker: tuple[str, int], names: Names
) -> None:
    bridge = MqttBridge(config(broker, names), cameras=["front"], node="dev-2")
    observers = Observers()
    observers.add(bridge)
    base = f"{names.prefix}/dev-2/front"
    with recording(*broker, [f"{names.prefix}/#", f"{names.ha}/#"]) as rec:
        bridge.start()
        try:
            rec.wait_payload(f"{base}/motion", b"OFF")
            observers.motion("front", True)
            rec.wait_payload(f"{base}/motion", b"ON")
            observers.person("front", True)
            rec.wait_payload(f"{base}/person", b"ON")
            observers.ring("front", datetime(2026, 12, 6, 17, 0, 3, tzinfo=UTC))
            rec.wait(lambda: rec.last(f"{base}/ring") is not None, "the ring")
            ring = rec.on(f"{base}/ring")[-1]
            assert json.loads(ring.payload) == {
                "event_type": "ring",
                "camera": "front",
                "at": "2026-12-06T17:00:03+00:00",
            }
            assert ring.retain is False
            observers.clip(finished())  # with a thumbnail: snapshots are off, it stays home
            rec.wait(lambda: rec.last(f"{base}/clip") is not None, "the clip")
            assert json.loads(rec.last(f"{base}/clip") or b"") == {
                "id": "7", "camera": "front", "started_at": "2026-12-06T17:00:00+00:00",
                "ended_at": "2026-12-06T17:00:09+00:00", "labels": ["motion", "person"],
            }  # fmt: skip
            observers.settings("front", {"detection.enabled": False, "motion.sensitivity": 0.3})
            rec.wait_payload(f"{base}/detection", b"OFF")
            observers.mode("away")
            rec.wait_payload(f"{names.prefix}/dev-2/mode", b"away")
            observers.motion("front", False)
            observers.person("front", False)
            rec.wait_payload(f"{base}/person", b"OFF")
            # An unknown camera, a repeated state: nothing.
            observers.motion("garage", True)
            observers.person("front", False)
        finally:
            bridge.stop()
        rec.wait_payload(f"{names.prefix}/dev-2/availability", b"offline")
        assert [m.payload for m in rec.on(f"{base}/motion")] == [b"OFF", b"ON", b"OFF"]
        assert [m.payload for m in rec.on(f"{base}/person")] == [b"OFF", b"ON", b"OFF"]
        assert not [m for m in rec.messages if "garage" in m.topic]
        # Privacy: no image, nothing but text, on any topic of this agent.
        assert not rec.on(f"{base}/thumbnail")
        for message in rec.messages:
            assert b"\xff\xd8" not in message.payload, message.topic
            message.payload.decode("utf-8")


def test_snapshots_on_publish_the_thumbnail_and_only_it(
    broker: tuple[str, int], names: Names
) -> None:
    bridge = MqttBridge(config(broker, names, snapshots=True), cameras=["front"], node="dev-3")
    base = f"{names.prefix}/dev-3/front"
    with recording(*broker, [f"{names.prefix}/#"]) as rec:
        bridge.start()
        try:
            assert bridge.connected.wait(10)
            bridge.clip(finished())
            rec.wait(lambda: rec.last(f"{base}/thumbnail") is not None, "the thumbnail")
        finally:
            bridge.stop()
    (image,) = rec.on(f"{base}/thumbnail")
    assert image.payload == JPEG and image.retain is False  # not left on the broker
    assert [m.topic for m in rec.messages if b"\xff\xd8" in m.payload] == [f"{base}/thumbnail"]


KILLED_AGENT = """
import sys, time
from doorwarden.agent.config.mqtt import MqttConfig
from doorwarden.agent.mqtt.bridge import MqttBridge
config = MqttConfig(
    url=sys.argv[1], topic_prefix=sys.argv[2], client_id=sys.argv[2], discovery=False,
    keepalive_s=5,
)
bridge = MqttBridge(config, cameras=["front"], node="killed")
bridge.start()
assert bridge.connected.wait(20)
print("ready", file=sys.stderr, flush=True)
time.sleep(600)
"""


def test_the_last_will_says_offline_when_the_agent_process_dies(
    broker: tuple[str, int], names: Names
) -> None:
    topic = f"{names.prefix}/killed/availability"
    agent = subprocess.Popen(
        [sys.executable, "-c", KILLED_AGENT, f"mqtt://{broker[0]}:{broker[1]}", names.prefix],
        stdout=subprocess.DEVNULL,  # its log lines
        stderr=subprocess.PIPE,
    )
    try:
        assert agent.stderr is not None
        assert agent.stderr.readline().strip() == b"ready"
        assert retained(*broker, topic, 0.3) == {topic: b"online"}
        with recording(*broker, [topic]) as rec:
            rec.wait_payload(topic, b"online")
            agent.kill()  # no goodbye: the broker publishes the will
            agent.wait(10)
            rec.wait_payload(topic, b"offline", timeout_s=10)
    finally:
        agent.kill()
        agent.wait(10)
        if agent.stderr is not None:
            agent.stderr.close()
    assert retained(*broker, topic, 0.3) == {topic: b"offline"}  # the will is retained


def test_a_listener_never_waits_on_the_broker(names: Names) -> None:
    # A "broker" that takes the TCP connection and never answers the CONNECT: a listener
    # that waited on the network would hang here for good, whatever the machine's speed.
    silent = socket.create_server(("127.0.0.1", 0))
    bridge = MqttBridge(
        config(silent.getsockname(), names, reconnect_initial_s=0.05, reconnect_max_s=0.2),
        cameras=["front"], node="nobroker",
    )  # fmt: skip
    bridge.start()
    try:
        cameras = threading.Thread(
            target=lambda: [bridge.motion("front", i % 2 == 0) for i in range(20_000)],
            daemon=True,
        )
        cameras.start()
        cameras.join(60)  # a hang detector, not a speed target (bench/ holds those)
        assert not cameras.is_alive(), "the camera thread was held up by the broker"
        assert not bridge.connected.is_set()
    finally:
        bridge.stop(timeout_s=5.0)
        silent.close()
    thread = bridge._thread
    assert thread is not None and not thread.is_alive()  # stop is not held up by the connect


def passwd(path: Path, users: dict[str, str]) -> None:
    path.unlink(missing_ok=True)
    path.touch()
    for user, password in users.items():
        subprocess.run(
            [str(PASSWD), "-b", str(path), user, password], check=True, capture_output=True
        )


def test_a_broker_that_goes_away_and_comes_back_gets_everything_again(tmp_path: Path) -> None:
    """A broker killed and restarted without persistence has lost every retained message:
    the bridge reconnects (with credentials from a file) and publishes discovery,
    availability and the states as they are now, then the ring that happened meanwhile."""
    if PASSWD is None:
        pytest.skip("mosquitto_passwd is not installed (Debian: the mosquitto package)")
    users = tmp_path / "passwd"
    passwd(users, {"agent": "agent-secret", "watcher": "watcher-secret"})
    (tmp_path / "agent-password").write_text("agent-secret\n")
    extra = f"allow_anonymous false\npassword_file {users}"
    names = Names()
    with private_broker(tmp_path / "broker", extra=extra) as mosquitto:
        address = (mosquitto.host, mosquitto.port)
        bridge = MqttBridge.build(
            config(address, names, username="agent", password_file=tmp_path / "agent-password",
                   reconnect_initial_s=0.1, reconnect_max_s=0.3),
            cameras=["front"], identity=None, mode="home",
        )  # fmt: skip
        base = f"{names.prefix}/{bridge.node}"
        bridge.start()
        try:
            assert bridge.connected.wait(10)
            assert bridge.connections == 1
            mosquitto.kill()
            deadline = time.monotonic() + 10
            while bridge.connected.is_set():
                assert time.monotonic() < deadline, "the bridge did not notice"
                time.sleep(0.01)
            # Meanwhile: motion starts, detection is turned off, the doorbell rings.
            bridge.motion("front", True)
            bridge.settings("front", {"detection.enabled": False})
            bridge.ring("front", datetime.now(UTC))
            time.sleep(0.5)  # a few failed reconnections
            # The broker comes back; the agent is kept out until a watcher listens (the
            # password file without it, reloaded on SIGHUP), so nothing is missed.
            passwd(users, {"watcher": "watcher-secret"})
            mosquitto.start()
            with recording(*address, ["#"], auth=("watcher", "watcher-secret")) as rec:
                time.sleep(0.5)
                assert not bridge.connected.is_set()  # refused: not authorised
                passwd(users, {"agent": "agent-secret", "watcher": "watcher-secret"})
                assert mosquitto.process is not None
                mosquitto.process.send_signal(1)  # SIGHUP: mosquitto reloads its passwords
                assert bridge.connected.wait(10)
                rec.wait(lambda: rec.last(f"{base}/front/ring") is not None, "the late ring")
                assert bridge.connections == 2
            with recording(*address, ["#"], auth=("watcher", "watcher-secret")) as late:
                late.wait(lambda: late.last(f"{base}/mode") is not None, "retained states")
                time.sleep(0.3)
                kept = {m.topic: m.payload for m in late.messages if m.retain}
        finally:
            bridge.stop()
    assert kept[f"{base}/availability"] == b"online"
    assert kept[f"{base}/front/motion"] == b"ON"
    assert kept[f"{base}/front/detection"] == b"OFF"
    assert kept[f"{base}/mode"] == b"home"
    assert f"{names.ha}/binary_sensor/doorwarden_{bridge.node}/front_motion/config" in kept
    assert f"{names.ha}/event/doorwarden_{bridge.node}/front_ring/config" in kept
    assert not [t for t in kept if t.endswith("/ring")]  # an event is never retained


# paho-mqtt leaves the socket of a failed TLS handshake to the garbage collector (its
# _ssl_wrap_socket does not close it), which warns; the refusal itself is what we test.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_mqtts_checks_the_brokers_certificate(tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path)
    port = free_port()
    extra = (
        f"allow_anonymous true\nlistener {port} 127.0.0.1\n"  # the TLS listener
        f"certfile {cert}\nkeyfile {key}"
    )
    names = Names()
    with private_broker(tmp_path / "broker", extra=extra):
        url = f"mqtts://127.0.0.1:{port}"
        fields = {"url": url, "topic_prefix": names.prefix, "reconnect_initial_s": 0.1}
        trusted = MqttBridge.build(
            MqttConfig.model_validate({**fields, "tls": {"ca_file": str(cert)}}),
            cameras=["front"], identity=None,
        )  # fmt: skip
        untrusted = MqttBridge.build(
            MqttConfig.model_validate({**fields, "client_id": "untrusted"}),
            cameras=["front"], identity=None,
        )  # fmt: skip
        trusted.start()
        untrusted.start()
        try:
            assert trusted.connected.wait(10)
            time.sleep(1.0)
            assert not untrusted.connected.is_set()  # a self-signed broker it was not told of
        finally:
            trusted.stop()
            untrusted.stop()


def test_without_a_usable_owner_token_the_bridge_is_read_only(tmp_path: Path) -> None:
    identity = DeviceIdentity(
        server="http://127.0.0.1:9", device_id=str(uuid.uuid4()), household_id=str(uuid.uuid4()),
        token="device-token", mode="standard", recipients=[], plan=Plan("recording", None),
    )  # fmt: skip
    token = tmp_path / "token"
    base = {"url": "mqtt://127.0.0.1:1"}
    cases = {
        "no file": ({**base}, True),
        "not a token": ({**base, "server_token_file": str(token)}, True),
        "missing file": ({**base, "server_token_file": str(tmp_path / "none")}, True),
        "unpaired": ({**base, "server_token_file": str(token)}, False),
    }
    token.write_text("password123")
    for what, (fields, paired) in cases.items():
        bridge = MqttBridge.build(
            MqttConfig.model_validate(fields), cameras=["front"],
            identity=identity if paired else None,
        )  # fmt: skip
        assert bridge.commands is False, what
    token.write_text("dwt_" + "x" * 40)
    bridge = MqttBridge.build(
        MqttConfig.model_validate({**base, "server_token_file": str(token)}),
        cameras=["front"], identity=identity,
    )  # fmt: skip
    assert bridge.commands is True
    assert bridge.node == identity.device_id
    assert "dwt_" not in repr(bridge._access)


def test_home_assistant_coming_online_gets_discovery_and_states_again(
    broker: tuple[str, int], names: Names
) -> None:
    bridge = MqttBridge(config(broker, names), cameras=["front"], node="dev-4", mode="away")
    motion_config = f"{names.ha}/binary_sensor/doorwarden_dev-4/front_motion/config"
    with recording(*broker, [f"{names.prefix}/#", f"{names.ha}/#"]) as rec:
        bridge.start()
        try:
            rec.wait(lambda: len(rec.on(motion_config)) == 1, "the first discovery")
            bridge.motion("front", True)
            rec.wait_payload(f"{names.prefix}/dev-4/front/motion", b"ON")
            # Home Assistant's birth message, as it sends it after a restart.
            rec.client.publish(f"{names.ha}/status", b"online", qos=1).wait_for_publish(5)
            rec.wait(lambda: len(rec.on(motion_config)) == 2, "discovery again")
            rec.wait(lambda: len(rec.on(f"{names.prefix}/dev-4/mode")) == 2, "states again")
            assert rec.last(f"{names.prefix}/dev-4/front/motion") == b"ON"
            rec.client.publish(f"{names.ha}/status", b"offline", qos=1).wait_for_publish(5)
            time.sleep(0.3)
            assert len(rec.on(motion_config)) == 2  # its will: nothing to answer
        finally:
            bridge.stop()
