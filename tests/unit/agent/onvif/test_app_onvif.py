"""The agent's composition root starts a camera's ONVIF subscription (agent/app.py) and
stops it: a tamper event from the loopback camera becomes a clip labelled tamper."""

from __future__ import annotations

import time
from pathlib import Path

from doorwarden.agent.app import AgentApp
from doorwarden.agent.config.models import AgentConfig, CameraConfig
from tests.onvif_responder import SoapCamera, notification


def test_the_agent_subscribes_and_a_tamper_event_records_a_clip(tmp_path: Path) -> None:
    cam = SoapCamera(max_pull_wait_s=1.0)
    camera = CameraConfig.model_validate(
        {"name": "door", "detect": {"kind": "none"},
         "source": {"kind": "synthetic", "scene": "static", "duration_s": 3.0, "pace": True,
                    "width": 320, "height": 192},
         "record": {"pre_roll_s": 0, "post_roll_s": 1, "min_clip_s": 1, "cooldown_s": 0},
         "onvif": {"host": "127.0.0.1", "port": cam.port, "username": "admin",
                   "password": "secret"}}
    )  # fmt: skip
    config = AgentConfig(spool_dir=tmp_path / "spool", state_dir=tmp_path / "state",
                         cameras=[camera])  # fmt: skip
    app = AgentApp.from_config(config)
    try:
        app.start()
        assert cam.wait_subscribed(timeout_s=20)
        [events] = app.onvif
        cam.push(
            notification("tns1:VideoSource/GlobalSceneChange/ImagingService", {"State": "true"})
        )
        deadline = time.monotonic() + 10
        while events.counts["tamper"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        while not app.done() and time.monotonic() < deadline + 10:
            time.sleep(0.1)
    finally:
        app.stop()
        cam.close()
    assert cam.unsubscribed == 1  # stopped with the agent
    assert any("tamper" in c.metadata["labels"] for c in app.clips)
