"""Doorbell presses from an MQTT topic on a local broker (`pip install paho-mqtt`,
imported only when a camera's `ring.mqtt` is configured): a Zigbee or 433 MHz button
bridged by zigbee2mqtt or rtl_433, a Home Assistant automation, a Shelly input.

paho's own network thread connects, reconnects (1 to 60 s) and resubscribes on every
connect (a broker restart forgets subscriptions). Retained messages are ignored: a
press that happened before we connected is not a visitor at the door now.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable
from typing import Any

import structlog

from doorwarden.agent.config.ring import MqttRing

log = structlog.get_logger("doorwarden.agent.ring.mqtt")

Press = Callable[[str, str], object]


class MqttButton:
    def __init__(self, camera: str, config: MqttRing, press: Press) -> None:
        self.camera = camera
        self.config = config
        self.press = press
        self.presses = 0
        self.subscribed = threading.Event()  # set once the broker confirmed the subscription
        self._client: Any = None

    def start(self) -> None:
        from paho.mqtt.client import Client  # noqa: PLC0415 - optional dependency
        from paho.mqtt.enums import CallbackAPIVersion  # noqa: PLC0415

        client = Client(CallbackAPIVersion.VERSION2, client_id=f"doorwarden-ring-{self.camera}")
        if self.config.username is not None:
            client.username_pw_set(self.config.username, self.config.password)
        if self.config.tls:
            client.tls_set_context(ssl.create_default_context())
        client.reconnect_delay_set(1, 60)
        client.on_connect = self._on_connect
        client.on_subscribe = lambda *_args: self.subscribed.set()
        client.on_message = self._on_message
        client.on_disconnect = self._on_disconnect
        client.connect_async(self.config.host, self.config.port, keepalive=30)
        client.loop_start()
        self._client = client

    def stop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()
            client.loop_stop()

    def matches(self, topic: str, payload: bytes, *, retain: bool = False) -> bool:
        """Whether a message is a press of this doorbell."""
        from paho.mqtt.client import topic_matches_sub  # noqa: PLC0415 - optional

        if retain or not topic_matches_sub(self.config.topic, topic):
            return False
        if self.config.payload is None:
            return True
        try:
            return payload.decode().strip() == self.config.payload.strip()
        except UnicodeDecodeError:
            return False

    def _on_connect(self, client: Any, _userdata: Any, _flags: Any, reason: Any, _p: Any) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("ring.mqtt_refused", camera=self.camera, reason=str(reason))
            return
        log.info("ring.mqtt_connected", camera=self.camera, host=self.config.host,
                 topic=self.config.topic)  # fmt: skip
        client.subscribe(self.config.topic, qos=1)

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.subscribed.clear()
        log.warning("ring.mqtt_disconnected", camera=self.camera, reason=str(reason))

    def _on_message(self, _client: Any, _userdata: Any, message: Any) -> None:
        try:
            if self.matches(message.topic, message.payload, retain=bool(message.retain)):
                self.presses += 1
                self.press(self.camera, "mqtt")
        except Exception:  # paho would drop its network thread on an exception
            log.exception("ring.mqtt_failed", camera=self.camera)
