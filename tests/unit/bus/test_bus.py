"""The bus on its two implementations: in-process, and real NATS (the machine's server, or
a private one the test may kill and restart)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import structlog

from doorwarden.bus import Bus, BusUnavailable, LocalBus, NatsBus, connect_bus
from doorwarden.bus.base import subject_matches
from doorwarden.config import Settings
from tests.nats import NatsServer, shared_nats, unique_prefix, unused_url


def settings(tmp_path: Path, url: str | None) -> Settings:
    return Settings(
        data_dir=tmp_path, nats_url=url, nats_subject_prefix=unique_prefix(), development=True
    )


async def wait_for(check: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


@pytest.fixture(params=["local", "nats"])
async def pair(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[Bus, Bus]]:
    """Two instances on one bus."""
    if request.param == "local":
        one = LocalBus(unique_prefix())
        two = one.view()
        yield one, two
        await one.close()
        await two.close()
        return
    with shared_nats(tmp_path) as url:
        prefix = unique_prefix()
        first = await NatsBus.connect([url], prefix)
        second = await NatsBus.connect([url], prefix)
        yield first, second
        await first.close()
        await second.close()


def test_subjects_match_as_nats_does() -> None:
    assert subject_matches("a.b.c", "a.b.c")
    assert subject_matches("a.*.c", "a.b.c")
    assert not subject_matches("a.*.c", "a.b.d")
    assert subject_matches("a.>", "a.b.c")
    assert not subject_matches("a.>", "a")
    assert not subject_matches("a.b", "a.b.c")
    assert not subject_matches("a.b.c", "a.b")


async def test_publish_reaches_subscribers_in_order(pair: tuple[Bus, Bus]) -> None:
    one, two = pair
    got: list[tuple[str, bytes]] = []

    async def keep(subject: str, data: bytes) -> None:
        got.append((subject, data))

    sub = await two.subscribe(f"{one.prefix}.cam.*", keep)
    await asyncio.sleep(0.1)  # NATS: the subscription reaches the server
    for i in range(50):
        await one.publish(f"{one.prefix}.cam.{i % 2}", str(i).encode())
    await one.publish(f"{one.prefix}.other", b"x")
    await wait_for(lambda: len(got) == 50, "50 messages")
    assert [int(d) for _, d in got] == list(range(50))
    await sub.unsubscribe()
    await one.publish(f"{one.prefix}.cam.0", b"late")
    await asyncio.sleep(0.2)
    assert len(got) == 50
    assert one.instance_id != two.instance_id


async def test_request_answered_or_none(pair: tuple[Bus, Bus]) -> None:
    one, two = pair

    async def answer(_subject: str, data: bytes) -> bytes | None:
        return b"re:" + data if data != b"silent" else None

    await two.subscribe(f"{one.prefix}.ask", answer)
    await asyncio.sleep(0.1)
    assert await one.request(f"{one.prefix}.ask", b"hi", timeout=2) == b"re:hi"
    # Nobody subscribed: None at once (NATS's "no responders"), not an exception.
    started = asyncio.get_running_loop().time()
    assert await one.request(f"{one.prefix}.nobody", b"hi", timeout=2) is None
    assert asyncio.get_running_loop().time() - started < 1.5
    # A subscriber that does not answer: None after the timeout.
    assert await one.request(f"{one.prefix}.ask", b"silent", timeout=0.3) is None


async def test_a_failing_handler_is_logged_and_the_subscription_lives(
    pair: tuple[Bus, Bus],
) -> None:
    one, two = pair
    got: list[bytes] = []

    async def fragile(_subject: str, data: bytes) -> None:
        if data == b"bad":
            raise ValueError("bad input")
        got.append(data)

    await two.subscribe(f"{one.prefix}.x", fragile)
    await asyncio.sleep(0.1)
    with structlog.testing.capture_logs() as logs:
        await one.publish(f"{one.prefix}.x", b"bad")
        await one.publish(f"{one.prefix}.x", b"good")
        await wait_for(lambda: got == [b"good"], "the good message")
    assert any(e["event"] == "bus.handler_failed" for e in logs)


async def test_connect_bus_without_a_url_is_in_process(tmp_path: Path) -> None:
    bus = await connect_bus(settings(tmp_path, None), database_is_sqlite=False)
    assert isinstance(bus, LocalBus)
    await bus.close()


async def test_unreachable_nats_refuses_on_postgresql(tmp_path: Path) -> None:
    url = unused_url()
    with pytest.raises(BusUnavailable) as caught:
        await connect_bus(settings(tmp_path, url), database_is_sqlite=False)
    assert url in str(caught.value)
    assert "DOORWARDEN_NATS_URL" in str(caught.value)


async def test_unreachable_nats_on_sqlite_warns_and_runs_in_process(tmp_path: Path) -> None:
    url = unused_url()
    with structlog.testing.capture_logs() as logs:
        bus = await connect_bus(settings(tmp_path, url), database_is_sqlite=True)
    assert isinstance(bus, LocalBus)
    warning = next(e for e in logs if e["event"] == "bus.unavailable_in_process")
    assert warning["log_level"] == "warning"
    assert warning["url"] == url
    await bus.close()


async def test_nats_lost_and_back(tmp_path: Path) -> None:
    """Killed: publishes are dropped without raising, requests answer None, the callback
    hears it; restarted: the subscriptions work again by themselves."""
    server = NatsServer(tmp_path / "nats")
    server.start()
    try:
        bus = await connect_bus(settings(tmp_path, server.url), database_is_sqlite=False)
        other = await NatsBus.connect([server.url], bus.prefix)
        changes: list[bool] = []
        bus.on_change(changes.append)
        got: list[bytes] = []

        async def keep(_subject: str, data: bytes) -> bytes:
            got.append(data)
            return b"ok"

        await other.subscribe(f"{bus.prefix}.t", keep)
        await asyncio.sleep(0.1)
        assert await bus.request(f"{bus.prefix}.t", b"1", timeout=2) == b"ok"

        server.kill()
        await wait_for(lambda: changes == [False], "the disconnect callback")
        assert not bus.connected
        await bus.publish(f"{bus.prefix}.t", b"lost")  # no exception
        assert await bus.request(f"{bus.prefix}.t", b"2", timeout=0.5) is None

        server.start()
        await wait_for(lambda: changes == [False, True], "the reconnect callback", 20)
        await wait_for(lambda: other.connected, "the other's reconnect", 20)
        await _eventually(lambda: bus.request(f"{bus.prefix}.t", b"3", timeout=1), b"ok")
        assert b"lost" not in got
        await bus.close()
        await other.close()
    finally:
        server.stop()


async def _eventually(ask: Callable[[], Awaitable[bytes | None]], want: bytes) -> None:
    for _ in range(50):
        if await ask() == want:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"never answered {want!r}")
