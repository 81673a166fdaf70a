"""Home Assistant MQTT discovery: one retained configuration per entity, on
`<discovery_prefix>/<component>/doorwarden_<node>/<object id>/config` (Home Assistant's
single-component discovery, which every version with MQTT discovery reads).

Per camera: a motion binary sensor (device class motion), a person binary sensor
(occupancy), a doorbell `event` entity (event type `ring`) and the detection switch; for
the household, a select of its mode. All share one `device` (this camera box) and the
availability topic that the agent's last will sets to "offline".

Without the owner's token the agent cannot carry out commands, so it offers none: the
switch becomes a binary sensor and the select an enum sensor, and the configuration of
the other kind is removed (an empty retained payload), so no stale entity with a command
topic stays behind in Home Assistant.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from doorwarden.agent.mqtt.states import OFF, OFFLINE, ON, ONLINE, Topics

# The server's mode names (modes/schemas.py ModeName): used until the server's own list
# has been read with the owner's token, and without one.
DEFAULT_MODES = ("home", "away", "disarmed")
_NOT_ID = re.compile(r"[^A-Za-z0-9_-]")


def node_id(text: str) -> str:
    """A discovery topic level: Home Assistant takes [A-Za-z0-9_-] only."""
    return _NOT_ID.sub("_", text)[:64] or "agent"


@dataclass(frozen=True)
class Device:
    node: str  # the device id (or, unpaired, the client id), topic-safe
    name: str
    sw_version: str

    def block(self) -> dict[str, Any]:
        return {
            "identifiers": [f"doorwarden_{self.node}"],
            "name": self.name,
            "manufacturer": "doorwarden",
            "model": "doorwarden camera agent",
            "sw_version": self.sw_version,
        }


def configs(
    *,
    prefix: str,
    topics: Topics,
    device: Device,
    cameras: Sequence[str],
    commands: bool,
    modes: Sequence[str],
) -> list[tuple[str, bytes]]:
    """(topic, payload) of every configuration to publish, retained: a JSON object for
    each entity offered, an empty payload for each of the other kind (removed)."""
    out: list[tuple[str, bytes]] = []

    def entity(component: str, key: str, name: str, **fields: Any) -> None:
        body = {
            "platform": "mqtt",
            "name": name,
            "unique_id": f"doorwarden_{device.node}_{key}",
            "availability_topic": topics.availability,
            "payload_available": ONLINE,
            "payload_not_available": OFFLINE,
            "device": device.block(),
            "origin": {"name": "doorwarden", "sw_version": device.sw_version},
            **fields,
        }
        out.append((_topic(prefix, component, device, key), _json(body)))

    def removed(component: str, key: str) -> None:
        out.append((_topic(prefix, component, device, key), b""))

    for camera in cameras:
        entity(
            "binary_sensor", f"{camera}_motion", f"{camera} motion",
            device_class="motion", state_topic=topics.of(camera, "motion"),
            payload_on=ON, payload_off=OFF,
        )  # fmt: skip
        entity(
            "binary_sensor", f"{camera}_person", f"{camera} person",
            device_class="occupancy", state_topic=topics.of(camera, "person"),
            payload_on=ON, payload_off=OFF,
        )  # fmt: skip
        entity(
            "event", f"{camera}_ring", f"{camera} doorbell",
            device_class="doorbell", event_types=["ring"], state_topic=topics.of(camera, "ring"),
        )  # fmt: skip
        if commands:
            entity(
                "switch", f"{camera}_detection", f"{camera} detection",
                state_topic=topics.of(camera, "detection"),
                command_topic=topics.detection_set(camera),
                payload_on=ON, payload_off=OFF, state_on=ON, state_off=OFF,
            )  # fmt: skip
            removed("binary_sensor", f"{camera}_detection")
        else:
            entity(
                "binary_sensor", f"{camera}_detection", f"{camera} detection",
                state_topic=topics.of(camera, "detection"), payload_on=ON, payload_off=OFF,
            )  # fmt: skip
            removed("switch", f"{camera}_detection")
    if commands:
        entity(
            "select", "mode", "mode", options=list(modes),
            state_topic=topics.mode, command_topic=topics.mode_set,
        )  # fmt: skip
        removed("sensor", "mode")
    else:
        entity(
            "sensor", "mode", "mode", device_class="enum", options=list(modes),
            state_topic=topics.mode,
        )  # fmt: skip
        removed("select", "mode")
    return out


def _topic(prefix: str, component: str, device: Device, key: str) -> str:
    return f"{prefix}/{component}/doorwarden_{device.node}/{node_id(key)}/config"


def _json(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
