"""ONVIF event notifications read into plain values, and the topic and state tests that
every consumer of them (the doorbell, motion and tamper triggers) shares.

`notification_of` reads both zeep's objects (what PullMessages returns) and raw
`wsnt:NotificationMessage` lxml elements. Topics are compared bare (`tns1:RuleEngine/
tnsaxis:X` -> `ruleengine/x`): vendors prefix them differently.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

WSNT = "http://docs.oasis-open.org/wsn/b-2"
TT = "http://www.onvif.org/ver10/schema"
# Data items that carry an event's state, by vendor: LogicalState (digital inputs),
# State (most), IsMotion (cell motion), IsTamper (tamper detectors), Value, ...
STATE_NAMES = (
    "logicalstate", "state", "ismotion", "istamper", "isactive", "value", "active",
    "ring", "pressed", "istoodark", "istooblurry", "istoobright", "isglobalscenechange",
)  # fmt: skip
TRUE = frozenset({"true", "1", "on", "active", "pressed", "ring"})
FALSE = frozenset({"false", "0", "off", "inactive", "released"})


@dataclass(frozen=True)
class Notification:
    topic: str
    operation: str | None = None  # Initialized | Changed | Deleted
    utc_time: str | None = None
    source: dict[str, str] = field(default_factory=dict)
    data: dict[str, str] = field(default_factory=dict)


def _local(tag: object) -> str:
    return str(tag).rsplit("}", 1)[-1]


def _items(parent: Any) -> dict[str, str]:
    if parent is None:
        return {}
    if hasattr(parent, "iterchildren"):  # lxml: <tt:SimpleItem Name= Value=/>
        return {
            str(e.get("Name")): str(e.get("Value"))
            for e in parent.iter()
            if _local(e.tag) == "SimpleItem" and e.get("Name") is not None
        }
    items = getattr(parent, "SimpleItem", None) or []  # zeep
    return {str(i.Name): str(i.Value) for i in items if getattr(i, "Name", None) is not None}


def notification_of(message: Any) -> Notification | None:
    """A `wsnt:NotificationMessage` (an lxml element or zeep's object) read into a
    Notification; None when it has no topic."""
    if hasattr(message, "iterchildren"):
        topic_el = message.find(f"{{{WSNT}}}Topic")
        body = message.find(f"{{{WSNT}}}Message")
        inner = body.find(f"{{{TT}}}Message") if body is not None else None
        if topic_el is None or not (topic_el.text or "").strip():
            return None
        if inner is None:
            return Notification(topic_el.text.strip())
        return notification_of_parts(topic_el.text.strip(), inner)
    topic = getattr(getattr(message, "Topic", None), "_value_1", None)
    if not isinstance(topic, str) or not topic.strip():
        return None
    inner = getattr(getattr(message, "Message", None), "_value_1", None)
    if inner is None:
        return Notification(topic.strip())
    if hasattr(inner, "iterchildren"):  # zeep left it as XML
        return notification_of_parts(topic.strip(), inner)
    utc = getattr(inner, "UtcTime", None)
    return Notification(
        topic.strip(),
        getattr(inner, "PropertyOperation", None),
        utc.isoformat() if utc is not None and hasattr(utc, "isoformat") else _text(utc),
        _items(getattr(inner, "Source", None)),
        _items(getattr(inner, "Data", None)),
    )


def _text(value: object) -> str | None:
    return str(value) if value else None


def notification_of_parts(topic: str, inner: Any) -> Notification:
    """A topic and an lxml `tt:Message` element."""
    return Notification(
        topic,
        inner.get("PropertyOperation"),
        inner.get("UtcTime"),
        _items(inner.find(f"{{{TT}}}Source")),
        _items(inner.find(f"{{{TT}}}Data")),
    )


def bare_topic(topic: str) -> str:
    """`tns1:RuleEngine/tnsaxis:X` -> `ruleengine/x`: prefixes differ between vendors."""
    return "/".join(part.rsplit(":", 1)[-1] for part in topic.split("/")).lower()


def topic_matches(note: Notification, topics: Iterable[str]) -> bool:
    """Whether the topic contains one of `topics` (bare, case-insensitive)."""
    topic = bare_topic(note.topic)
    return any(bare_topic(want) in topic for want in topics if want.strip())


def state_of(note: Notification) -> bool | None:
    """The event's state: True (started, pressed), False (ended), None (it has no state
    item we know, or an unreadable value)."""
    states = {k.lower(): v.strip().lower() for k, v in note.data.items()}
    for name in STATE_NAMES:
        if name in states:
            value = states[name]
            return True if value in TRUE else False if value in FALSE else None
    return None


def is_active_press(note: Notification, topics: Iterable[str], input_token: str | None) -> bool:
    """A doorbell press: the topic matches, it is not the `Initialized` state a camera
    reports at subscription time, its input token (if one is wanted) matches, and its
    state is true (or it has no data at all: the topic is the press itself)."""
    if not topic_matches(note, topics):
        return False
    if note.operation == "Initialized":
        return False  # the state at subscription time, not an event
    if input_token is not None:
        tokens = {v for k, v in note.source.items() if "token" in k.lower() or k == "Source"}
        if input_token not in tokens:
            return False
    state = state_of(note)
    if state is not None:
        return state
    return not note.data
