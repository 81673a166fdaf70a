"""The household's mode on the camera (agent/live/mode.py): kept in mode.json across
restarts, applied to each camera's pipeline; a doorbell press records whatever it says."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from doorwarden.agent.analysis.detection import Detection, RgbFrame
from doorwarden.agent.app import AgentApp
from doorwarden.agent.capture.sources import open_source
from doorwarden.agent.live.mode import MODE_FILE, CameraSwitches, ModeState
from doorwarden.agent.pipeline import CameraJob, CameraPipeline
from doorwarden.agent.recording.recorder import FinishedClip
from doorwarden.agent.recording.spool import Spool
from tests.unit.agent.test_app import (
    config,
    no_threads_left,  # noqa: F401 - a fixture
    synthetic_camera,
)
from tests.unit.agent.test_pipeline import camera, run_job, synthetic

AWAY = {"type": "mode", "mode": "away", "cameras": {"front": {"record": True, "detect": True}}}
DISARMED = {
    "type": "mode",
    "mode": "disarmed",
    "cameras": {
        "front": {"record": False, "detect": False},
        "back": {"record": True, "detect": False},
    },
}


def test_until_the_server_speaks_every_camera_records_and_detects(tmp_path: Path) -> None:
    state = ModeState(tmp_path, ["front", "back"])
    assert state.mode is None
    for switches in state.switches.values():
        assert (switches.recording_enabled, switches.detection_enabled) == (True, True)
    assert not (tmp_path / MODE_FILE).exists()


def test_a_mode_is_applied_saved_and_read_back_at_the_next_start(tmp_path: Path) -> None:
    state = ModeState(tmp_path, ["front", "back"])
    front = state.for_camera("front")  # the pipeline's reference stays valid
    assert state.apply(DISARMED)
    assert state.mode == "disarmed"
    assert (front.recording_enabled, front.detection_enabled) == (False, False)
    back = state.switches["back"]
    assert (back.recording_enabled, back.detection_enabled) == (True, False)
    saved = json.loads((tmp_path / MODE_FILE).read_text())
    assert saved == {"mode": "disarmed", "cameras": DISARMED["cameras"]}
    # Nothing but the file itself is left (the write went through a temporary file).
    assert sorted(p.name for p in tmp_path.iterdir()) == [MODE_FILE]
    restarted = ModeState(tmp_path, ["front", "back"])
    assert restarted.mode == "disarmed"
    assert restarted.switches["front"].recording_enabled is False
    assert restarted.switches["back"].recording_enabled is True
    # And back: a camera named again is switched on again.
    assert restarted.apply(AWAY)
    assert restarted.switches["front"].recording_enabled is True
    assert ModeState(tmp_path, ["front", "back"]).mode == "away"


def test_malformed_messages_change_nothing(tmp_path: Path) -> None:
    state = ModeState(tmp_path, ["front"])
    assert state.apply(DISARMED)
    before = (tmp_path / MODE_FILE).read_bytes()
    bad = [
        {"type": "mode"},
        {"type": "mode", "mode": 3, "cameras": {}},
        {"type": "mode", "mode": "", "cameras": {}},
        {"type": "mode", "mode": "x" * 33, "cameras": {}},
        {"type": "mode", "mode": "away", "cameras": []},
        {"type": "mode", "mode": "away", "cameras": {"front": {"record": "yes", "detect": True}}},
        {"type": "mode", "mode": "away", "cameras": {"front": {"record": True}}},
        {"type": "mode", "mode": "away", "cameras": {"front": [True, True]}},
        {"type": "mode", "mode": "away", "cameras": {"front": {"record": 1, "detect": 1}}},
    ]
    with capture_logs() as logs:
        for message in bad:
            assert not state.apply(message), message
    assert [e["event"] for e in logs] == ["mode.bad_message"] * len(bad)
    assert state.mode == "disarmed"
    assert state.switches["front"].recording_enabled is False
    assert (tmp_path / MODE_FILE).read_bytes() == before


def test_a_camera_this_agent_does_not_run_is_ignored(tmp_path: Path) -> None:
    state = ModeState(tmp_path, ["front"])
    message = {
        "type": "mode",
        "mode": "away",
        "cameras": {"garage": {"record": False, "detect": False}},
    }
    assert state.apply(message)
    assert set(state.switches) == {"front"}
    assert state.switches["front"].recording_enabled is True


def test_a_damaged_mode_file_starts_with_everything_on(tmp_path: Path) -> None:
    (tmp_path / MODE_FILE).write_text('{"mode": "away", "cameras": {"front": ')
    with capture_logs() as logs:
        state = ModeState(tmp_path, ["front"])
    assert state.mode is None
    assert state.switches["front"].recording_enabled is True
    assert [e["event"] for e in logs] == ["mode.unreadable"]
    (tmp_path / MODE_FILE).write_text('{"mode": "away", "cameras": {"front": {"record": 0}}}')
    assert ModeState(tmp_path, ["front"]).mode is None


def test_an_unwritable_state_dir_still_applies_the_mode(tmp_path: Path) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("a file where the directory should be")
    state = ModeState(blocker, ["front"])
    with capture_logs() as logs:
        assert not state.apply(DISARMED)
    assert state.switches["front"].recording_enabled is False
    assert "mode.save_failed" in [e["event"] for e in logs]


# -- the pipeline -------------------------------------------------------------------------


def test_record_off_makes_no_motion_clip(tmp_path: Path) -> None:
    switches = CameraSwitches()
    switches.recording_enabled = False
    job = CameraJob(camera(synthetic()), Spool(tmp_path), switches=switches)
    run_job(job, synthetic())  # an object enters at 1 s: a motion clip when recording
    assert job.clips == []
    assert list(tmp_path.glob("*.json")) == []


def test_record_off_still_records_a_doorbell_press(tmp_path: Path) -> None:
    switches = CameraSwitches()
    switches.recording_enabled = False
    job = CameraJob(camera(synthetic()), Spool(tmp_path), switches=switches)
    job.trigger("ring")  # what the doorbell does on a press (agent/ring/)
    run_job(job, synthetic())
    assert len(job.clips) == 1
    assert "ring" in job.clips[0].metadata["labels"]
    # The press's clip, not the object's: it starts at the press (the first sample).
    assert job.clips[0].start < 0.5


def test_switching_record_back_on_records_motion_again(tmp_path: Path) -> None:
    state = ModeState(tmp_path / "state", ["door"])
    state.apply(
        {
            "type": "mode",
            "mode": "disarmed",
            "cameras": {"door": {"record": False, "detect": False}},
        }
    )
    job = CameraJob(
        camera(synthetic()), Spool(tmp_path / "spool"), switches=state.for_camera("door")
    )
    run_job(job, synthetic())
    assert job.clips == []
    state.apply(
        {"type": "mode", "mode": "away", "cameras": {"door": {"record": True, "detect": True}}}
    )
    run_job(job, synthetic())
    assert len(job.clips) == 1
    assert job.clips[0].metadata["labels"] == ["motion"]


class CountingDetector:
    def __init__(self) -> None:
        self.calls = 0

    def detect(self, rgb: RgbFrame) -> list[Detection]:
        self.calls += 1
        return [Detection("person", 0.9, (0.1, 0.1, 0.2, 0.5))]


def _run_pipeline(pipeline: CameraPipeline) -> list[FinishedClip]:

    with open_source(synthetic()) as source:
        return list(pipeline.run(source.samples()))


def test_detect_off_runs_no_detection_but_still_records(tmp_path: Path) -> None:

    with open_source(synthetic()) as source:
        info = source.info
    on, off = CountingDetector(), CountingDetector()
    clips_on = _run_pipeline(
        CameraPipeline(camera(synthetic()), info, Spool(tmp_path / "a"), detector=on)
    )
    switches = CameraSwitches()
    switches.detection_enabled = False
    pipeline = CameraPipeline(
        camera(synthetic()), info, Spool(tmp_path / "b"), detector=off, switches=switches
    )
    clips_off = _run_pipeline(pipeline)
    assert on.calls > 0
    assert off.calls == 0
    assert len(clips_on) == len(clips_off) == 1
    assert "person" not in clips_off[0].metadata["labels"]


# -- the agent as built (agent/app.py) ----------------------------------------------------


@pytest.mark.usefixtures("no_threads_left")
def test_the_agent_starts_in_the_mode_it_saved(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()
    off = {"app-m": {"record": False, "detect": False}}
    (tmp_path / "state" / MODE_FILE).write_text(json.dumps({"mode": "disarmed", "cameras": off}))
    app = AgentApp.from_config(config(tmp_path, synthetic_camera("app-m")))
    app.run_until(threading.Event())  # the synthetic source ends: the camera finishes
    assert app.done() and app.failed() == []
    assert app.clips == []  # an object entered, and disarmed records no motion
    app.stop()
    # `--once` (processing files) ignores the household's mode.
    once = AgentApp.from_config(config(tmp_path, synthetic_camera("app-m")), once=True)
    once.run_until(threading.Event())
    assert [c.metadata["labels"] for c in once.clips] == [["motion"]]
    once.stop()
