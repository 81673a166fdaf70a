"""`<state_dir>/agent.sock`: the CLI's way into the running agent, over a real unix socket."""

from __future__ import annotations

import os
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from doorwarden.agent.config.models import CameraConfig
from doorwarden.agent.ring.control import (
    AgentNotRunning,
    ControlError,
    ControlServer,
    request,
    socket_path,
)
from doorwarden.agent.ring.doorbell import Doorbell


@pytest.fixture
def state() -> Iterator[Path]:
    # Short: a unix socket's path is limited to 107 bytes, pytest's tmp_path may be longer.
    with tempfile.TemporaryDirectory(prefix="dw-", dir="/tmp") as d:
        yield Path(d) / "state"


def cameras() -> list[CameraConfig]:
    return [
        CameraConfig.model_validate({"name": n, "source": {"kind": "synthetic"}})
        for n in ("front", "back")
    ]


def test_ring_over_the_socket_is_queued_debounced_and_checked(state: Path) -> None:
    triggered: list[tuple[str, str]] = []
    bell = Doorbell(cameras(), state, trigger=lambda cam, why: triggered.append((cam, why)))
    bell.start()
    try:
        assert os.stat(socket_path(state)).st_mode & 0o777 == 0o600
        first = request(state, {"op": "ring", "camera": "front"})
        assert first["ok"] and first["status"] == "queued" and first["durable"]
        assert request(state, {"op": "ring", "camera": "front"})["status"] == "debounced"
        assert request(state, {"op": "ring", "camera": "back"})["status"] == "queued"
        unknown = request(state, {"op": "ring", "camera": "garage"})
        assert not unknown["ok"] and "garage" in unknown["error"]
        assert not request(state, {"op": "format-disk"})["ok"]
        assert triggered == [("front", "ring"), ("back", "ring")]
        assert sorted(e.camera for e in bell.queue.pending()) == ["back", "front"]
        with socket.socket(socket.AF_UNIX) as raw:  # garbage does not stop the socket
            raw.connect(str(socket_path(state)))
            raw.sendall(b"\xff\xfe not json\n")
            assert b"malformed" in raw.recv(1024)
        assert request(state, {"op": "ping"}) == {"ok": True}
    finally:
        bell.stop()
    assert not socket_path(state).exists()
    with pytest.raises(AgentNotRunning):
        request(state, {"op": "ping"})


def test_a_dead_agents_socket_is_replaced_a_live_one_is_not(state: Path) -> None:
    state.mkdir(parents=True)
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(socket_path(state)))
    stale.close()  # the file stays, nobody listens: a killed agent's
    first = ControlServer(state, lambda _body: {"ok": True})
    first.start()
    try:
        second = ControlServer(state, lambda _body: {"ok": True})
        with pytest.raises(ControlError, match="another agent"):
            second.start()
        assert request(state, {"op": "ping"}) == {"ok": True}
    finally:
        first.stop()


def test_a_socket_path_too_long_is_refused_and_the_doorbell_runs_on(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 100) / "state"
    bell = Doorbell(cameras(), deep)
    bell.start()
    try:
        assert bell.control_off is not None and "too long" in bell.control_off
        assert bell.press("front", "gpio").status == "queued"
    finally:
        bell.stop()


def test_listening_leaves_the_process_umask_alone(state: Path) -> None:
    """The umask is the whole process's: a control socket set up by changing it would make
    another thread's new directory (a camera's event queue, say) 0600 meanwhile."""
    seen: set[int] = set()
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            mask = os.umask(0o022)  # reading it means setting it; put it straight back
            os.umask(mask)
            seen.add(mask)

    before = os.umask(0o022)
    os.umask(before)
    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        for _ in range(20):
            server = ControlServer(state, lambda _: {"ok": True})
            server.start()
            server.stop()
    finally:
        done.set()
        sampler.join()
    assert seen <= {before, 0o022}
    assert os.stat(state).st_mode & 0o777 == 0o700
