"""The `settings` and `snapshot` messages (agent/settings/handler.py) with real Ed25519
keys, real camera jobs and the real store: what is applied, what is refused, and that a
refusal changes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from doorwarden.agent.capture.sources import open_source
from doorwarden.agent.settings.handler import SNAPSHOT
from doorwarden.agent.settings.store import SETTINGS_FILE
from doorwarden.crypto.keys import b64e
from doorwarden.crypto.settings_sig import CONTEXT
from tests.unit.agent.samples import make_video
from tests.unit.agent.settings.rig import Rig, camera
from tests.unit.agent.settings.signing import ServerKey

BOTTOM = [[0.0, 0.6], [1.0, 0.6], [1.0, 1.0], [0.0, 1.0]]


@pytest.fixture
def server() -> ServerKey:
    return ServerKey()


@pytest.fixture
def rig(tmp_path: Path, server: ServerKey) -> Rig:
    return Rig(tmp_path, server.public, [camera("front"), camera("back")])


def saved(rig: Rig) -> dict[str, Any]:
    path = rig.config.state_dir / SETTINGS_FILE
    return json.loads(path.read_text())["cameras"] if path.exists() else {}


def test_a_signed_update_is_applied_saved_reported_and_survives_a_restart(
    rig: Rig, server: ServerKey
) -> None:
    reply = rig.handler.apply(
        server.message(1, {"privacy_zones": [BOTTOM], "record.pre_roll_s": 1})
    )
    assert reply["type"] == "settings_applied" and reply["ok"] is True, reply
    assert (reply["camera"], reply["version"], reply["error"]) == ("front", 1, None)
    assert reply["effective"]["privacy_zones"] == [BOTTOM]
    assert reply["effective"]["record.pre_roll_s"] == 1
    assert reply["sources"]["privacy_zones"] == "web"
    assert reply["sources"]["motion.sensitivity"] == "file"
    assert len(json.dumps(reply)) <= 16 * 1024
    # The camera's job has it (taken at its next sample), the file has it, listeners too.
    assert rig.jobs["front"].newest_config.privacy_zones == [list(map(tuple, BOTTOM))]
    assert saved(rig)["front"]["version"] == 1
    assert rig.heard.of("settings")[0][0] == "front"
    restarted = rig.load()
    assert restarted.applied_version("front") == 1
    assert restarted.effective["front"].config.record.pre_roll_s == 1
    assert restarted.effective["back"].version == 0


def refused(rig: Rig, message: dict[str, Any], match: str) -> dict[str, Any]:
    before_state = (dict(rig.state.effective), dict(rig.state.stored), saved(rig))
    before_jobs = {name: job.newest_config for name, job in rig.jobs.items()}
    reply = rig.handler.apply(message)
    assert reply["ok"] is False, reply
    assert match in reply["error"], reply["error"]
    # Nothing changed: what runs, what is saved, what each camera will take.
    assert (dict(rig.state.effective), dict(rig.state.stored), saved(rig)) == before_state
    assert {name: job.newest_config for name, job in rig.jobs.items()} == before_jobs
    return reply


def test_a_document_signed_by_another_key_is_refused(rig: Rig) -> None:
    reply = refused(rig, ServerKey().message(1, {"privacy_zones": []}), "bad signature")
    assert reply["version"] == 1 and reply["effective"]["privacy_zones"] == []


def test_a_document_altered_after_signing_is_refused(rig: Rig, server: ServerKey) -> None:
    message = server.message(2, {"privacy_zones": [BOTTOM]})
    message["document"] = message["document"].replace(
        '"privacy_zones":[[[0.0,0.6]', '"privacy_zones":[[[0.0,0.7]'
    )
    refused(rig, message, "bad signature")


def test_a_document_for_another_device_is_refused(rig: Rig, server: ServerKey) -> None:
    refused(rig, server.message(1, {}, device="someone-else"), "signed for device someone-else")


def test_a_document_for_another_camera_is_refused(rig: Rig, server: ServerKey) -> None:
    refused(rig, server.message(1, {}, document_camera="back"), "signed for camera 'back'")


def test_settings_for_a_camera_this_agent_does_not_run_are_refused(
    rig: Rig, server: ServerKey
) -> None:
    reply = refused(rig, server.message(1, {}, camera="garage"), "no camera 'garage'")
    assert reply["effective"] == {} and reply["sources"] == {}


def test_a_replayed_older_version_is_refused_and_the_zones_stay(
    rig: Rig, server: ServerKey
) -> None:
    old = server.message(1, {})  # zone-less, validly signed, but superseded
    assert rig.handler.apply(old)["ok"]
    assert rig.handler.apply(server.message(2, {"privacy_zones": [BOTTOM]}))["ok"]
    reply = refused(rig, old, "version 1 is not newer than applied 2")
    assert reply["effective"]["privacy_zones"] == [BOTTOM]
    # Another document under an applied version number is no better.
    refused(rig, server.message(2, {"privacy_zones": []}), "version 2 is not newer")
    # After a restart too: the version kept on disk is what replay is checked against.
    rig.handler.state = rig.state = rig.load()
    refused(rig, old, "version 1 is not newer than applied 2")


def test_the_applied_version_sent_again_after_a_reconnect_is_acknowledged_once(
    rig: Rig, server: ServerKey
) -> None:
    message = server.message(3, {"motion.sensitivity": 0.8})
    assert rig.handler.apply(message)["ok"]
    assert rig.handler.apply(message) | {"effective": None} == {
        "type": "settings_applied", "camera": "front", "version": 3, "ok": True,
        "error": None, "effective": None, "sources": rig.handler.apply(message)["sources"],
    }  # fmt: skip
    assert len(rig.heard.of("settings")) == 1  # applied once


def test_a_malformed_document_is_refused(rig: Rig, server: ServerKey) -> None:
    text = "{not json"
    signature = b64e(server.key.sign(CONTEXT + text.encode()))
    message = {"type": "settings", "camera": "front", "document": text, "signature": signature}
    refused(rig, message, "malformed document")
    refused(rig, {"type": "settings", "camera": "front", "document": 5}, "must be strings")
    no_signature = {"type": "settings", "camera": "front", "document": "{}", "signature": "%%"}
    refused(rig, no_signature, "bad signature")


def test_an_unusable_polygon_is_refused_with_its_field_named(rig: Rig, server: ServerKey) -> None:
    bad = [[[0.0, 0.0], [1.5, 0.0], [0.0, 1.0]]]
    refused(rig, server.message(1, {"privacy_zones": bad}), "privacy_zones.0.1.0")


def test_a_combination_the_camera_file_refuses_is_refused_with_the_field(
    tmp_path: Path, server: ServerKey
) -> None:
    person_only = camera("front", detect={"kind": "hog", "alert": "person_only"})
    rig = Rig(tmp_path, server.public, [person_only])
    refused(rig, server.message(1, {"detect.person": False}), "detect.person")


def test_without_the_servers_key_nothing_is_applied(rig: Rig, server: ServerKey) -> None:
    rig.key = None
    refused(rig, server.message(1, {"privacy_zones": []}), "settings key")


def test_a_snapshot_is_the_newest_frame_with_the_new_zones_black(
    rig: Rig, server: ServerKey, tmp_path: Path
) -> None:
    video = make_video(tmp_path / "v.mp4", seconds=1)
    job = rig.jobs["front"]
    ident = "0123456789abcdef" * 2
    assert rig.handler.snapshot({"camera": "front", "id": ident})["message"].startswith(
        "the camera has no picture"
    )
    with open_source(camera("front", video).source) as source:
        job.opened(source)
        for sample in source.samples():
            job.handle(sample)
    # Zones set after the last frame: the snapshot hides them already.
    assert rig.handler.apply(server.message(1, {"privacy_zones": [BOTTOM]}))["ok"]
    out = rig.handler.snapshot({"camera": "front", "id": ident})
    assert isinstance(out, bytes)
    assert out[0] == SNAPSHOT and out[1] == 0 and out[2:18] == bytes.fromhex(ident)
    image = cv2.imdecode(np.frombuffer(out[18:], np.uint8), cv2.IMREAD_COLOR)
    assert image.shape[:2] == (240, 320)
    assert image[150:, :].max() < 20  # below y=0.6*240=144, with a margin for JPEG
    assert image[:140, :].mean() > 50  # the rest is the picture
    job.closed()
    for bad, why in [("front", "zz" * 16), ("garage", ident), ("front", "12")]:
        answer = rig.handler.snapshot({"camera": bad, "id": why})
        assert isinstance(answer, dict) and answer["type"] == "snapshot_error"
