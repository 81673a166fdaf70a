"""Queued rings reach the server: over a real live link to a real WebSocket server that
acknowledges them, again after a drop or a silence, by HTTP when the link is down, and
exactly once as far as the server's ids go (a replay carries the same id)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from doorwarden.agent.capture.rtsp import Backoff
from doorwarden.agent.live.link import LiveLink
from doorwarden.agent.ring.queue import EventQueue, RingEvent
from doorwarden.agent.ring.sender import EventSender
from tests.unit.agent.ring.wire import AckServer, HttpEvents, free_port, identity


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


@pytest.fixture
def server() -> Iterator[AckServer]:
    fake = AckServer()
    yield fake
    fake.close()


def link_to(url: str) -> LiveLink:
    return LiveLink(identity(url), ["front"], backoff=Backoff(0.05, 0.2))


def sender_for(queue: EventQueue, link: LiveLink | None, url: str, **kw: object) -> EventSender:
    sender = EventSender(queue, link=link, identity=identity(url), poll_s=0.05, **kw)  # type: ignore[arg-type]
    if link is not None:
        link.handlers["event_ack"] = sender.acked
    return sender


def test_a_queued_ring_goes_over_the_link_and_its_file_goes_on_ack(
    server: AckServer, tmp_path: Path
) -> None:
    queue = EventQueue(tmp_path)
    at = datetime(2026, 12, 6, 11, 0, 0, 123000, tzinfo=UTC)
    event = RingEvent.new("front", "button", at)
    queue.put(event)
    link = link_to(server.url)
    sender = sender_for(queue, link, server.url)
    link.start()
    sender.start()
    try:
        got = server.next()
        assert got == {
            "type": "event", "id": event.id, "camera": "front", "kind": "ring",
            "at": "2026-12-06T11:00:00.123+00:00", "source": "button",
        }  # fmt: skip
        assert server.hellos[0]["type"] == "hello"  # the hello came first
        wait_for(lambda: queue.pending() == [])
        assert sender.delivered == 1
        assert server.drain() == []  # acknowledged: never sent again
    finally:
        sender.stop()
        link.stop()


def test_an_unacknowledged_ring_is_sent_again_with_the_same_id(tmp_path: Path) -> None:
    server = AckServer(mode="silent")
    queue = EventQueue(tmp_path)
    event = RingEvent.new("front", "gpio")
    queue.put(event)
    link = link_to(server.url)
    sender = sender_for(queue, link, server.url, resend_s=0.3)
    link.start()
    sender.start()
    try:
        first, again = server.next(), server.next()
        assert first["id"] == again["id"] == event.id
        assert [e.id for e in queue.pending()] == [event.id]  # kept until acknowledged
        server.mode = "ack"
        wait_for(lambda: queue.pending() == [])
        assert len(set(server.server_ids.values())) == 1  # one event on the server's side
    finally:
        sender.stop()
        link.stop()
        server.close()


def test_a_refused_ring_is_dropped(tmp_path: Path) -> None:
    server = AckServer(mode="refuse")
    queue = EventQueue(tmp_path)
    queue.put(RingEvent.new("front", "mqtt"))
    link = link_to(server.url)
    sender = sender_for(queue, link, server.url)
    link.start()
    sender.start()
    try:
        server.next()
        wait_for(lambda: queue.pending() == [])
        assert sender.refused == 1 and sender.delivered == 0
        assert server.drain() == []
    finally:
        sender.stop()
        link.stop()
        server.close()


def test_a_ring_queued_offline_goes_with_its_real_time_once_the_server_is_back(
    tmp_path: Path,
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    queue = EventQueue(tmp_path)
    at = datetime.now(UTC) - timedelta(hours=2)  # pressed while the server was away
    event = RingEvent.new("front", "cli", at)
    queue.put(event)
    link = link_to(url)
    sender = sender_for(queue, link, url, fallback_after_s=3600)
    link.start()
    sender.start()
    try:
        time.sleep(0.5)  # the link fails to connect a few times
        assert [e.id for e in queue.pending()] == [event.id]
        server = AckServer(port)
        try:
            got = server.next()
            assert got["id"] == event.id
            assert datetime.fromisoformat(got["at"]) == at.replace(
                microsecond=at.microsecond // 1000 * 1000
            )
            wait_for(lambda: queue.pending() == [])
            assert server.drain() == []
        finally:
            server.close()
    finally:
        sender.stop()
        link.stop()


def test_http_takes_over_when_the_link_stays_down(tmp_path: Path) -> None:
    http = HttpEvents(statuses=[(503, {}), (429, {"Retry-After": "0"})])
    queue = EventQueue(tmp_path)
    now = datetime.now(UTC)
    first = RingEvent.new("front", "cli", now - timedelta(seconds=10))
    second = RingEvent.new("front", "gpio", now)
    queue.put(first)
    queue.put(second)
    dead = f"http://127.0.0.1:{free_port()}"
    link = LiveLink(identity(dead), ["front"], backoff=Backoff(0.05, 0.2))
    sender = EventSender(
        queue, link=link, identity=identity(http.url), poll_s=0.05,
        fallback_after_s=0.3, backoff=Backoff(0.05, 0.1),
    )  # fmt: skip
    link.start()
    sender.start()
    try:
        wait_for(lambda: queue.pending() == [])
        ids = [b["id"] for b in http.bodies]
        # 503 then 429: the first event was tried three times, then both went, in order.
        assert ids == [first.id, first.id, first.id, second.id]
        assert "type" not in http.bodies[-1] and http.bodies[-1]["camera"] == "front"
        assert set(http.auth) == {"Bearer dwd_ring-test-token"}
        assert sender.delivered == 2
    finally:
        sender.stop()
        link.stop()
        http.close()


def test_an_http_refusal_drops_the_event(tmp_path: Path) -> None:
    http = HttpEvents(statuses=[(422, {})])
    queue = EventQueue(tmp_path)
    queue.put(RingEvent.new("front", "cli"))
    sender = EventSender(queue, identity=identity(http.url), poll_s=0.05)
    sender.start()
    try:
        wait_for(lambda: queue.pending() == [])
        assert sender.refused == 1 and len(http.bodies) == 1
    finally:
        sender.stop()
        http.close()
