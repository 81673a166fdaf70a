"""What a notification says, and the Web Push payload made of it.

Never an image and never the household's name: the payload passes through the browser
vendor's push service (encrypted, but still), and a lock screen is read by anyone near
it. The camera's own name and the time are enough to act on. The thumbnail is a path the
service worker fetches with the member's own session (audited like any thumbnail view);
null for end-to-end households and for rings not yet linked to a clip.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from doorwarden.notify.models import Notification, NotifyKind

PAYLOAD_VERSION = 1


@dataclass(frozen=True)
class Text:
    title: str
    body: str
    url: str
    thumbnail: str | None


def thumbnail_path(household_id: uuid.UUID, clip_id: uuid.UUID) -> str:
    return f"/api/v1/households/{household_id}/clips/{clip_id}/thumbnail"


def live_path(household_id: uuid.UUID, device_id: uuid.UUID) -> str:
    return f"/households/{household_id}/cameras/{device_id}/live"


def _clock(at: datetime, zone: ZoneInfo) -> str:
    return at.astimezone(zone).strftime("%H:%M")


def event_text(
    kind: NotifyKind,
    household_id: uuid.UUID,
    device_id: uuid.UUID,
    camera: str,
    clip_id: uuid.UUID | None,
    thumbnail: str | None,
    at: datetime,
    zone: ZoneInfo,
) -> Text:
    camera = camera[:64]
    if kind is NotifyKind.ring:
        return Text(
            "Someone is at the door",
            f"{camera} rang at {_clock(at, zone)}",
            live_path(household_id, device_id),
            thumbnail,
        )
    url = (
        f"/households/{household_id}/clips/{clip_id}"
        if clip_id is not None
        else f"/households/{household_id}/events"
    )
    what = "A person" if kind is NotifyKind.person else "Motion"
    return Text(f"{what} at {camera}", f"Seen at {_clock(at, zone)}", url, thumbnail)


ALERT_WORDS = {
    "camera_disk_full": "its disk is full",
    "clip_held": "a clip is held back",
    "clips_evicted": "clips were lost",
}


def alert_text(household_id: uuid.UUID, camera: str, kind: str) -> Text:
    what = ALERT_WORDS.get(kind, "its recordings may have been tampered with")
    return Text(
        "Integrity alert",
        f"{camera[:64]}: {what}. Open to see what happened.",
        f"/households/{household_id}/cameras",
        None,
    )


def notice_text(household_id: uuid.UUID) -> Text:
    # What the notice says stays in the app: legal process is read signed in.
    return Text(
        "Legal process notice",
        "Your household has a new notice about legal process. Open to read it.",
        f"/households/{household_id}/requests",
        None,
    )


def privacy_text(household_id: uuid.UUID, camera: str) -> Text:
    return Text(
        "A privacy zone was reduced",
        f"{camera[:64]}: a privacy zone was removed or made smaller. Open to see the camera.",
        f"/households/{household_id}/cameras",
        None,
    )


def push_payload(notification: Notification) -> dict[str, Any]:
    return {
        "v": PAYLOAD_VERSION,
        "kind": str(notification.kind),
        "id": str(notification.id),
        "title": notification.title,
        "body": notification.body,
        "url": notification.url,
        "thumbnail": notification.thumbnail,
        "at": notification.occurred_at.isoformat(),
    }
