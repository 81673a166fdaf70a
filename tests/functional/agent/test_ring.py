"""A doorbell press end to end: `doorwarden agent ring` (a real process) -> the running
agent (its real unix socket) -> the event over the real live link -> a server that
acknowledges it -> the queue file removed, and the camera's clip labelled "ring".

The server's end is the loopback WebSocket server of tests/unit/agent/ring/wire.py,
speaking the contract of docs/live-view.md, until the events helper's server side
lands in the app (then this test should run against the in-process app)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from doorwarden.agent.app import AgentApp
from doorwarden.agent.config.models import AgentConfig
from doorwarden.agent.ring.queue import EventQueue
from doorwarden.cli.agent import agent_app
from tests.unit.agent.ring.wire import AckServer, pair_state


@pytest.fixture
def root() -> Iterator[Path]:
    # Short: a unix socket's path is limited to 107 bytes.
    with tempfile.TemporaryDirectory(prefix="dw-", dir="/tmp") as d:
        yield Path(d)


@pytest.fixture
def server() -> Iterator[AckServer]:
    fake = AckServer()
    yield fake
    fake.close()


def config(root: Path, debounce_s: float = 3.0) -> AgentConfig:
    return AgentConfig.model_validate(
        {
            "spool_dir": str(root / "spool"),
            "state_dir": str(root / "state"),
            "cameras": [
                {
                    "name": "front",
                    "source": {
                        "kind": "synthetic",
                        "scene": "static",
                        "duration_s": 60,
                        "width": 320,
                        "height": 192,
                        "fps": 10,
                        "pace": True,
                    },
                    "record": {"pre_roll_s": 1, "post_roll_s": 1, "min_clip_s": 1},
                    "detect": {"kind": "none"},
                    "ring": {"debounce_s": debounce_s},
                }
            ],
        }
    )


def ring(root: Path, camera: str = "front") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from doorwarden.cli import main; main()",
         "agent", "ring", camera, "--state", str(root / "state")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def wait_for(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_agent_ring_reaches_the_server_at_once_and_records_a_ring_clip(
    root: Path, server: AckServer
) -> None:
    pair_state(root / "state", server.url)
    # A long window: each `agent ring` process takes a second or two to start here.
    app = AgentApp.from_config(config(root, debounce_s=30))
    app.start()
    try:
        wait_for(app.running)
        wait_for(lambda: app.media_time("front") > 2.0)  # some pre-roll to keep
        before = datetime.now(UTC)
        done = ring(root)
        assert done.returncode == 0, done.stderr
        assert "rang front" in done.stdout
        event = server.next()
        assert event["type"] == "event" and event["camera"] == "front"
        assert event["kind"] == "ring" and event["source"] == "cli"
        assert abs((datetime.fromisoformat(event["at"]) - before).total_seconds()) < 60
        queue = EventQueue(root / "state")
        wait_for(lambda: queue.pending() == [])  # acknowledged: the file is gone
        flood = [ring(root) for _ in range(3)]  # a visitor who keeps pressing
        assert all(r.returncode == 0 and "debounced" in r.stdout for r in flood), flood
        wait_for(lambda: app.media_time("front") > 8.0)  # the clip's post-roll has passed
    finally:
        app.stop()
    assert server.drain() == []  # one event: the flood was debounced on the agent
    rings = [c for c in app.clips if "ring" in c.metadata["labels"]]
    assert len(rings) == 1
    assert rings[0].start < rings[0].metadata["trigger"]  # with pre-roll


def test_a_ring_without_an_agent_is_queued_and_delivered_once_at_start(
    root: Path, server: AckServer
) -> None:
    pair_state(root / "state", server.url)
    queued = ring(root)
    assert queued.returncode == 0, queued.stderr
    assert "no agent is running" in queued.stdout and "queued" in queued.stdout
    [event] = EventQueue(root / "state").pending()
    # A second press at once counts once. In this process rather than a second
    # subprocess, whose start-up alone took over the 3 s debounce on a loaded CI machine.
    again = CliRunner().invoke(agent_app, ["ring", "front", "--state", str(root / "state")])
    assert again.exit_code == 0 and "debounced" in again.output, again.output
    time.sleep(1.0)  # the agent starts later: the event keeps its own time
    app = AgentApp.from_config(config(root))
    app.start()
    try:
        got = server.next()
        assert got["id"] == event.id and got["source"] == "cli"
        assert got["at"] == event.message()["at"]
        wait_for(lambda: EventQueue(root / "state").pending() == [])
    finally:
        app.stop()
    assert server.drain() == []  # exactly once


def test_an_unknown_camera_is_refused(root: Path, server: AckServer) -> None:
    pair_state(root / "state", server.url)
    app = AgentApp.from_config(config(root))
    app.start()
    try:
        done = ring(root, "garage")
        assert done.returncode == 1 and "garage" in done.stderr
    finally:
        app.stop()
    assert server.drain(0.2) == []
