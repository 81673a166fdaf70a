"""Doorbell presses from an ONVIF camera's event stream: a PullPoint subscription with
`onvif-zeep-async` (imported only when a camera's `ring.onvif` is configured).

Most IP doorbells publish a press as a digital input or a "visitor" rule event: Hikvision
and Dahua `tns1:Device/Trigger/DigitalInput` (LogicalState true), Reolink
`tns1:RuleEngine/MyRuleDetector/Visitor` (State true), others a `.../Doorbell` topic.
Which topics count is configurable (`ring.onvif.topics`). The filter is applied here,
not as a subscription TopicExpression: many cameras reject or mis-apply filters, and a
subscription that silently delivers nothing is worse than a few messages dropped here.

A message counts when its topic matches, it is not the `Initialized` state a camera
reports at subscription time, its input token (if configured) matches, and its state
is true. Reading messages and keeping the subscription up are shared with the motion
and tamper triggers (agent/onvif/notification.py, agent/onvif/pullpoint.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

import structlog

from doorwarden.agent.config.ring import OnvifRing
from doorwarden.agent.onvif.notification import (
    Notification,
    is_active_press,
    notification_of,
    notification_of_parts,
)
from doorwarden.agent.onvif.pullpoint import PullPoint

__all__ = ["Notification", "OnvifButton", "is_press", "notification_of", "notification_of_parts"]

log = structlog.get_logger("doorwarden.agent.ring.onvif")

Press = Callable[[str, str], object]


def is_press(note: Notification, config: OnvifRing) -> bool:
    return is_active_press(note, config.topics, config.input_token)


class OnvifButton:
    def __init__(self, camera: str, config: OnvifRing, press: Press) -> None:
        self.camera = camera
        self.config = config
        self.press = press
        self.presses = 0
        self._pull = PullPoint(
            camera, host=config.host, port=config.port, username=config.username,
            password=lambda: config.password, handle=self.handle, event="ring.onvif",
        )  # fmt: skip

    @property
    def subscribed(self) -> threading.Event:
        return self._pull.subscribed

    def start(self) -> None:
        self._pull.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._pull.stop(timeout_s)

    def handle(self, messages: Iterable[Any]) -> int:
        """Presses among PullMessages' NotificationMessages, each passed on; how many."""
        count = 0
        for message in messages:
            note = notification_of(message)
            if note is None or not is_press(note, self.config):
                continue
            count += 1
            self.presses += 1
            log.info("ring.onvif_press", camera=self.camera, topic=note.topic)
            self.press(self.camera, "onvif")
        return count
