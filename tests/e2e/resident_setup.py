"""Steps the PWA and resident-screen browser tests share: a camera paired through the API
(as `doorwarden agent pair` does), rings sent with its device token (as an agent without
its control connection does), and pushes delivered to the page's service worker through
the DevTools protocol (`ServiceWorker.deliverPushMessage`, what the browser's push service
would do after decrypting one)."""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from playwright.sync_api import CDPSession, Page

from tests.e2e.conftest import ApiClient, Server

RESEND_AFTER_S = 10
WAIT_S = 30  # a loaded CI machine (chromium, a server and agents on two cores) is slow


def pair_camera(server: Server, owner: ApiClient, household_id: str, name: str) -> tuple[str, str]:
    """(device id, device token) of a new camera in the household."""
    code = owner.post(f"/api/v1/households/{household_id}/pairing-codes", {})["code"]
    raw = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    public = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    response = httpx.post(
        f"{server.url}/api/v1/devices/pair",
        json={"code": code, "name": name, "public_key": public},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return str(body["device_id"]), str(body["token"])


def ring(server: Server, token: str, camera: str = "door", at: datetime | None = None) -> str:
    """A doorbell ring reported by the camera; the server's event id."""
    body = {
        "id": uuid.uuid4().hex,
        "camera": camera,
        "kind": "ring",
        "at": (at or datetime.now(UTC)).isoformat(),
        "source": "cli",
    }
    response = httpx.post(
        f"{server.url}/api/v1/device/events",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["event_id"])


def ring_payload(household_id: str, device_id: str, **changes: Any) -> dict[str, Any]:
    """A push payload as notify/ sends it for a ring (no thumbnail, no household name)."""
    return {
        "v": 1,
        "kind": "ring",
        "id": uuid.uuid4().hex,
        "title": "Someone is at the door",
        "body": "Front door rang at 11:00",
        "url": f"/households/{household_id}/cameras/{device_id}/live",
        "thumbnail": None,
        "at": datetime.now(UTC).isoformat(),
        **changes,
    }


class PushDelivery:
    """The DevTools side of one page: its service worker registration and push delivery."""

    def __init__(self, page: Page, origin: str) -> None:
        self.page = page
        self.origin = origin
        self.registrations: dict[str, str] = {}  # scope URL -> registration id
        self.cdp: CDPSession = page.context.new_cdp_session(page)
        self.cdp.on("ServiceWorker.workerRegistrationUpdated", self._registrations)
        self.cdp.send("ServiceWorker.enable")

    def _registrations(self, event: dict[str, Any]) -> None:
        for registration in event["registrations"]:
            if not registration.get("isDeleted"):
                self.registrations[registration["scopeURL"]] = registration["registrationId"]

    def registration_id(self) -> str:
        scope = self.origin + "/"
        deadline = time.monotonic() + WAIT_S
        while scope not in self.registrations:
            assert time.monotonic() < deadline, (
                f"no service worker for {scope}: {self.registrations}"
            )
            self.page.wait_for_timeout(100)
        return self.registrations[scope]

    def deliver(self, payload: dict[str, Any] | str) -> None:
        data = payload if isinstance(payload, str) else json.dumps(payload)
        message = {"origin": self.origin, "registrationId": self.registration_id(), "data": data}
        before = len(self.page.evaluate(NOTIFICATIONS))
        self.cdp.send("ServiceWorker.deliverPushMessage", message)
        if before:
            return
        # On a loaded CI machine chromium twice dropped a push that DevTools handed to a
        # worker it was still starting (nothing shown after 30 s; never seen when run
        # alone). A push service retries an undelivered message; so do we, once, and only
        # when nothing at all was shown (the page rings once per message id anyway).
        deadline = time.monotonic() + RESEND_AFTER_S
        while time.monotonic() < deadline:
            if self.page.evaluate(NOTIFICATIONS):
                return
            self.page.wait_for_timeout(100)
        self.cdp.send("ServiceWorker.deliverPushMessage", message)


NOTIFICATIONS = """() => navigator.serviceWorker.ready.then((r) => r.getNotifications()).then(
  (list) => list.map((n) => ({title: n.title, body: n.body, tag: n.tag, data: n.data,
                              image: n.image, requireInteraction: n.requireInteraction})))"""


def notifications(page: Page, count: int = 1) -> list[dict[str, Any]]:
    """The notifications the service worker is showing, once there are `count` of them."""
    deadline = time.monotonic() + WAIT_S
    while True:
        shown: list[dict[str, Any]] = page.evaluate(NOTIFICATIONS)
        if len(shown) >= count or time.monotonic() > deadline:
            return shown
        page.wait_for_timeout(100)
