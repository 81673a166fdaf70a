"""ONVIF doorbell events: PullMessagesResponse envelopes (tests/data/onvif/, in the shape
Hikvision-style digital inputs and Reolink doorbells send them) decoded by zeep through
onvif-zeep-async's own events WSDL, exactly as a live PullMessages call returns them, and
read raw; `is_press` decides. No ONVIF camera is available to test the subscription."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onvif
import pytest
from lxml import etree
from zeep import Client

from doorwarden.agent.config.models import CameraConfig
from doorwarden.agent.config.ring import OnvifRing
from doorwarden.agent.ring.doorbell import Doorbell
from doorwarden.agent.ring.onvif import OnvifButton, is_press, notification_of

DATA = Path(__file__).parents[3] / "data" / "onvif"
WSDL = Path(onvif.__file__).parent / "wsdl" / "events.wsdl"
BINDING = "{http://www.onvif.org/ver10/events/wsdl}PullPointSubscriptionBinding"
WSNT = "http://docs.oasis-open.org/wsn/b-2"
CONFIG = OnvifRing(host="192.0.2.5", username="admin", password="secret")


@pytest.fixture(scope="module")
def zeep_client() -> Client:
    return Client(str(WSDL))


def decoded(client: Client, name: str) -> list[Any]:
    """The NotificationMessages of a response, as zeep hands them to our code."""
    operation = client.wsdl.bindings[BINDING].get("PullMessages")
    response = operation.process_reply(etree.fromstring((DATA / name).read_bytes()))
    return list(response.NotificationMessage)


def raw(name: str) -> list[Any]:
    return etree.fromstring((DATA / name).read_bytes()).findall(f".//{{{WSNT}}}NotificationMessage")


@pytest.mark.parametrize("read", ["zeep", "raw"])
def test_a_digital_input_press_counts_once_its_initial_state_and_release_do_not(
    zeep_client: Client, read: str
) -> None:
    messages = (
        decoded(zeep_client, "digital-input.xml") if read == "zeep" else raw("digital-input.xml")
    )
    notes = [notification_of(m) for m in messages]
    assert [n.operation for n in notes if n] == ["Initialized", "Changed", "Changed"]
    assert [is_press(n, CONFIG) for n in notes if n] == [False, True, False]
    assert notes[1] is not None and notes[1].source == {"InputToken": "AlarmIn_1"}


@pytest.mark.parametrize("read", ["zeep", "raw"])
def test_a_reolink_visitor_is_a_press_motion_is_not(zeep_client: Client, read: str) -> None:
    messages = decoded(zeep_client, "visitor.xml") if read == "zeep" else raw("visitor.xml")
    notes = [notification_of(m) for m in messages]
    assert [n.topic.rsplit("/", 1)[-1] for n in notes if n] == ["Motion", "Visitor", "Visitor"]
    assert [is_press(n, CONFIG) for n in notes if n] == [False, True, False]


def test_topics_and_the_input_token_filter(zeep_client: Client) -> None:
    press = notification_of(decoded(zeep_client, "digital-input.xml")[1])
    assert press is not None
    assert is_press(press, CONFIG.model_copy(update={"input_token": "AlarmIn_1"}))
    assert not is_press(press, CONFIG.model_copy(update={"input_token": "AlarmIn_2"}))
    assert not is_press(press, CONFIG.model_copy(update={"topics": ["RuleEngine/Doorbell"]}))
    # Vendors prefix differently (tns1:, tnsaxis:): the configured topic is matched bare.
    assert is_press(press, CONFIG.model_copy(update={"topics": ["tns1:Device/Trigger"]}))


def test_pulled_messages_ring_the_doorbell(zeep_client: Client, tmp_path: Path) -> None:
    camera = CameraConfig.model_validate(
        {"name": "front", "source": {"kind": "synthetic"},
         "ring": {"onvif": {"host": "192.0.2.5", "username": "u", "password": "p"}}}
    )  # fmt: skip
    bell = Doorbell([camera], tmp_path)
    button = OnvifButton("front", CONFIG, bell.press)
    pulled = decoded(zeep_client, "visitor.xml") + decoded(zeep_client, "digital-input.xml")
    assert button.handle(pulled) == 2  # the visitor and the input: one doorbell, twice
    assert [e.source for e in bell.queue.pending()] == ["onvif"]  # within 3 s: once


def test_a_message_without_a_topic_is_ignored() -> None:
    element = etree.fromstring(f'<wsnt:NotificationMessage xmlns:wsnt="{WSNT}"/>')
    assert notification_of(element) is None
    assert notification_of(object()) is None
