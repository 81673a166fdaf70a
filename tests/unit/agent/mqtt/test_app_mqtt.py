"""The bridge inside a real AgentApp (agent/app.py): a paced synthetic camera's motion
reaches the broker through the app's observers, the stop says offline; a broken `mqtt:`
section stops the build with the reason."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from doorwarden.agent.app import AgentApp, BuildError
from doorwarden.agent.config.models import AgentConfig
from tests.mosquitto import clear_retained, recording, retained, shared_broker


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    with shared_broker(tmp_path_factory.mktemp("mosquitto")) as address:
        yield address


def agent_config(tmp_path: Path, mqtt: dict[str, object]) -> AgentConfig:
    camera = {
        "name": "porch",
        "source": {"kind": "synthetic", "width": 320, "height": 192, "fps": 10.0,
                   "duration_s": 60.0, "scene": "object", "enter_at_s": 1.0, "pace": True},
        "motion": {"analysis_width": 160},
        "detect": {"kind": "none"},
    }  # fmt: skip
    return AgentConfig.model_validate(
        {"spool_dir": str(tmp_path / "spool"), "state_dir": str(tmp_path / "state"),
         "cameras": [camera], "mqtt": mqtt}
    )  # fmt: skip


def test_a_cameras_motion_reaches_the_broker(tmp_path: Path, broker: tuple[str, int]) -> None:
    prefix = f"dwtest-{uuid.uuid4().hex[:10]}"
    mqtt = {"url": f"mqtt://{broker[0]}:{broker[1]}", "topic_prefix": prefix,
            "discovery": False, "client_id": f"app-{prefix}"}  # fmt: skip
    app = AgentApp.from_config(agent_config(tmp_path, mqtt))
    assert app.mqtt is not None and app.mqtt.commands is False  # not paired: read-only
    base = f"{prefix}/app-{prefix}"
    try:
        with recording(*broker, [f"{prefix}/#"]) as rec:
            app.start()
            rec.wait_payload(f"{base}/availability", b"online")
            rec.wait_payload(f"{base}/porch/motion", b"ON", timeout_s=30)
            app.stop()
            rec.wait_payload(f"{base}/availability", b"offline")
    finally:
        app.stop()
        clear_retained(*broker, list(retained(*broker, f"{prefix}/#", 0.3)))


def test_an_unreadable_broker_password_stops_the_build(tmp_path: Path) -> None:
    mqtt = {"url": "mqtt://127.0.0.1:1883", "username": "agent",
            "password_file": str(tmp_path / "missing")}  # fmt: skip
    with pytest.raises(BuildError, match=r"mqtt\.password_file"):
        AgentApp.from_config(agent_config(tmp_path, mqtt))
