"""Home Assistant discovery payloads and the state messages, checked key by key against
Home Assistant's MQTT discovery documentation (binary_sensor, event, switch, select,
sensor): the keys it reads, the values it expects."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from doorwarden.agent.mqtt.discovery import DEFAULT_MODES, Device, configs, node_id
from doorwarden.agent.mqtt.states import States, Topics
from doorwarden.agent.observe import ClipFinished

TOPICS = Topics("doorwarden/dev-1")
DEVICE = Device("dev-1", "doorwarden front", "0.1.0")


def by_topic(commands: bool) -> dict[str, Any]:
    out = configs(
        prefix="homeassistant", topics=TOPICS, device=DEVICE, cameras=["front"],
        commands=commands, modes=list(DEFAULT_MODES),
    )  # fmt: skip
    return {topic: json.loads(payload) if payload else None for topic, payload in out}


COMMON = {
    "platform": "mqtt",
    "availability_topic": "doorwarden/dev-1/availability",
    "payload_available": "online",
    "payload_not_available": "offline",
    "device": {
        "identifiers": ["doorwarden_dev-1"],
        "name": "doorwarden front",
        "manufacturer": "doorwarden",
        "model": "doorwarden camera agent",
        "sw_version": "0.1.0",
    },
    "origin": {"name": "doorwarden", "sw_version": "0.1.0"},
}


def test_camera_entities() -> None:
    found = by_topic(commands=True)
    base = "homeassistant/{}/doorwarden_dev-1/{}/config"
    assert found[base.format("binary_sensor", "front_motion")] == {
        **COMMON, "name": "front motion", "unique_id": "doorwarden_dev-1_front_motion",
        "device_class": "motion", "state_topic": "doorwarden/dev-1/front/motion",
        "payload_on": "ON", "payload_off": "OFF",
    }  # fmt: skip
    assert found[base.format("binary_sensor", "front_person")] == {
        **COMMON, "name": "front person", "unique_id": "doorwarden_dev-1_front_person",
        "device_class": "occupancy", "state_topic": "doorwarden/dev-1/front/person",
        "payload_on": "ON", "payload_off": "OFF",
    }  # fmt: skip
    assert found[base.format("event", "front_ring")] == {
        **COMMON, "name": "front doorbell", "unique_id": "doorwarden_dev-1_front_ring",
        "device_class": "doorbell", "event_types": ["ring"],
        "state_topic": "doorwarden/dev-1/front/ring",
    }  # fmt: skip
    assert found[base.format("switch", "front_detection")] == {
        **COMMON, "name": "front detection", "unique_id": "doorwarden_dev-1_front_detection",
        "state_topic": "doorwarden/dev-1/front/detection",
        "command_topic": "doorwarden/dev-1/front/detection/set",
        "payload_on": "ON", "payload_off": "OFF", "state_on": "ON", "state_off": "OFF",
    }  # fmt: skip
    assert found[base.format("select", "mode")] == {
        **COMMON, "name": "mode", "unique_id": "doorwarden_dev-1_mode",
        "options": ["home", "away", "disarmed"], "state_topic": "doorwarden/dev-1/mode",
        "command_topic": "doorwarden/dev-1/mode/set",
    }  # fmt: skip
    # The read-only kinds are removed (an empty retained payload).
    assert found[base.format("binary_sensor", "front_detection")] is None
    assert found[base.format("sensor", "mode")] is None


def test_without_the_owners_token_nothing_has_a_command_topic() -> None:
    found = by_topic(commands=False)
    offered = {t: body for t, body in found.items() if body is not None}
    assert all("command_topic" not in body for body in offered.values())
    assert {t.split("/")[1] for t in offered} == {"binary_sensor", "event", "sensor"}
    mode = offered["homeassistant/sensor/doorwarden_dev-1/mode/config"]
    assert mode["device_class"] == "enum" and mode["options"] == list(DEFAULT_MODES)
    removed = {t for t, body in found.items() if body is None}
    assert removed == {
        "homeassistant/switch/doorwarden_dev-1/front_detection/config",
        "homeassistant/select/doorwarden_dev-1/mode/config",
    }


def test_unique_ids_are_unique_per_component() -> None:
    for commands in (True, False):
        out = configs(
            prefix="ha", topics=TOPICS, device=DEVICE, cameras=["front", "back"],
            commands=commands, modes=["home"],
        )  # fmt: skip
        ids = [(t.split("/")[1], json.loads(p)["unique_id"]) for t, p in out if p]
        assert len(ids) == len(set(ids)) == 4 * 2 + 1


def test_node_ids_keep_to_home_assistants_characters() -> None:
    assert node_id("6f1c7d3e-aaaa-4bbb-8ccc-0123456789ab") == "6f1c7d3e-aaaa-4bbb-8ccc-0123456789ab"
    assert node_id("host.local/x") == "host_local_x"
    assert node_id("") == "agent"


def test_command_topics_are_recognised_and_nothing_else() -> None:
    assert TOPICS.command_of("doorwarden/dev-1/mode/set") == ("mode", None)
    assert TOPICS.command_of("doorwarden/dev-1/front/detection/set") == ("detection", "front")
    for topic in (
        "doorwarden/dev-1/front/detection",
        "doorwarden/dev-1/front/motion/set",
        "doorwarden/dev-2/front/detection/set",
        "x/doorwarden/dev-1/mode/set",
        "doorwarden/dev-1//detection/set",
    ):
        assert TOPICS.command_of(topic) is None, topic


def test_states_change_once_and_republish_whole() -> None:
    states = States(TOPICS, ["front"], mode="home", snapshots=False)
    first = states.set_flag("motion", "front", True)
    assert [(m.topic, m.payload, m.retain) for m in first] == [
        ("doorwarden/dev-1/front/motion", b"ON", True)
    ]
    assert states.set_flag("motion", "front", True) == []  # no change, no message
    assert states.set_flag("motion", "garage", True) == []  # not a camera of this agent
    assert states.settings("front", {"detection.enabled": False})[0].payload == b"OFF"
    assert states.settings("front", {"motion.sensitivity": 0.4}) == []
    assert states.set_mode("away")[0].payload == b"away"
    assert {m.topic: m.payload for m in states.retained()} == {
        "doorwarden/dev-1/front/motion": b"ON",
        "doorwarden/dev-1/front/person": b"OFF",
        "doorwarden/dev-1/front/detection": b"OFF",
        "doorwarden/dev-1/mode": b"away",
    }


def clip(thumbnail: bytes | None) -> ClipFinished:
    return ClipFinished(
        camera="front", clip_id="c-1",
        started_at=datetime(2026, 12, 6, 17, 0, tzinfo=UTC),
        ended_at=datetime(2026, 12, 6, 17, 0, 12, tzinfo=UTC),
        labels=("motion", "person"), thumbnail=thumbnail,
    )  # fmt: skip


def test_a_clip_is_ids_and_times_and_its_image_only_with_snapshots_on() -> None:
    jpeg = b"\xff\xd8\xff\xe0" + b"x" * 100
    off = States(TOPICS, ["front"], mode=None, snapshots=False).clip(clip(jpeg))
    assert [m.topic for m in off] == ["doorwarden/dev-1/front/clip"]
    assert json.loads(off[0].payload) == {
        "id": "c-1", "camera": "front", "started_at": "2026-12-06T17:00:00+00:00",
        "ended_at": "2026-12-06T17:00:12+00:00", "labels": ["motion", "person"],
    }  # fmt: skip
    assert off[0].retain is False
    on = States(TOPICS, ["front"], mode=None, snapshots=True).clip(clip(jpeg))
    assert [(m.topic, m.payload, m.retain) for m in on[1:]] == [
        ("doorwarden/dev-1/front/thumbnail", jpeg, False)
    ]


def test_a_ring_is_an_event_home_assistant_reads() -> None:
    at = datetime(2026, 12, 6, 17, 0, 5, tzinfo=UTC)
    (ring,) = States(TOPICS, ["front"], mode=None, snapshots=False).ring("front", at)
    assert ring.topic == "doorwarden/dev-1/front/ring" and ring.retain is False
    assert json.loads(ring.payload) == {
        "event_type": "ring",
        "camera": "front",
        "at": "2026-12-06T17:00:05+00:00",
    }
