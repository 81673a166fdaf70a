"""The agent's composition root (agent/app.py): built from a configuration, run on real
video (a synthetic scene, OpenCV's vtest.avi), stopped with its clip in progress kept and
no thread left behind. The paired case uses a real device key and pairing on disk and a
server address where nothing listens, so delivery and live view run and fail to connect,
as on a camera whose server is down."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from doorwarden.agent.app import AgentApp, BuildError, Stopped, file_config, unpaced
from doorwarden.agent.config.models import (
    AgentConfig,
    CameraConfig,
    DetectorKind,
    FileSource,
    RtspSource,
    SyntheticSource,
)
from doorwarden.agent.delivery.identity import DeviceIdentity, IdentityStore, Plan
from doorwarden.crypto.keys import RecipientKey, key_id
from tests.paths import VTEST

QUICK_RECORD = {"pre_roll_s": 0, "post_roll_s": 1, "min_clip_s": 1, "cooldown_s": 0}


def synthetic_camera(
    name: str, detect: dict[str, object] | None = None, **source: object
) -> CameraConfig:
    settings = {
        "kind": "synthetic", "width": 320, "height": 192, "fps": 10.0,
        "duration_s": 6.0, "scene": "object", "enter_at_s": 1.0,
    }  # fmt: skip
    return CameraConfig.model_validate(
        {
            "name": name,
            "source": settings | source,
            "motion": {"analysis_width": 160},
            "record": QUICK_RECORD,
            "detect": detect or {"kind": "none"},
        }
    )


def config(tmp_path: Path, *cameras: CameraConfig) -> AgentConfig:
    return AgentConfig(
        spool_dir=tmp_path / "spool", state_dir=tmp_path / "state", cameras=list(cameras)
    )


@pytest.fixture
def no_threads_left() -> Iterator[None]:
    """Fails the test if a thread it started (cameras, delivery, live) outlives it."""
    before = set(threading.enumerate())
    yield
    left = [t.name for t in threading.enumerate() if t not in before and t.is_alive()]
    assert left == []


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {timeout_s} s"
        time.sleep(0.05)


def sidecars(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((tmp_path / "spool").glob("*.json"))]


def paced(camera: CameraConfig) -> bool:
    assert isinstance(camera.source, FileSource | SyntheticSource)
    return camera.source.pace


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # free again once closed: nothing listens there


def pairing(state: Path, server: str) -> DeviceIdentity:
    """A pairing on disk as `doorwarden agent pair` leaves it: the key, then device.json."""
    household = RecipientKey.generate()
    store = IdentityStore(state)
    store.signing_key()
    identity = DeviceIdentity(
        server=server,
        device_id="dev-app",
        household_id="hh-app",
        token="dwd_app_secret",
        mode="standard",
        recipients=[(key_id(household.public), household.public)],
        plan=Plan("recording", 30),
    )
    store.save(identity)
    return identity


@pytest.mark.usefixtures("no_threads_left")
def test_built_from_a_config_it_runs_each_camera_once_and_keeps_their_clips(
    tmp_path: Path,
) -> None:
    app = AgentApp.from_config(
        config(tmp_path, synthetic_camera("app-b", pace=True), synthetic_camera("app-a")),
        once=True,
    )
    assert app.identity is None and app.delivery is None  # not paired: clips stay
    assert app.live_off is None  # no live view to be off: not paired, and once
    assert not any(paced(c) for c in app.config.cameras)
    assert app.length_s("app-a") == 6.0
    ticks: list[float] = []
    app.run_until(threading.Event(), lambda: ticks.append(app.media_time("app-a")))
    assert app.done() and not app.running() and app.failed() == []
    assert ticks and app.media_time("app-a") > 5.0
    assert [(c.metadata["camera"], c.metadata["labels"]) for c in app.clips] == [
        ("app-a", ["motion"]),
        ("app-b", ["motion"]),
    ]
    assert sorted(meta["camera"] for meta in sidecars(tmp_path)) == ["app-a", "app-b"]
    assert app.stop() == Stopped(0, 0)


@pytest.mark.skipif(not VTEST.is_file(), reason="needs ../shared/data/vtest.avi")
@pytest.mark.usefixtures("no_threads_left")
def test_a_source_override_runs_that_file_and_stop_keeps_the_clip_in_progress(
    tmp_path: Path,
) -> None:
    """`agent run --source FILE`: one camera, default settings, at decoding speed. vtest.avi
    has pedestrians from the start, so an event is in progress when the agent stops."""
    agent = file_config(VTEST, spool_dir=tmp_path / "spool", state_dir=tmp_path / "state")
    [camera] = agent.cameras
    assert camera.name == "file" and camera.detect.kind is DetectorKind.nanodet
    assert camera.source == FileSource(kind="file", path=VTEST.resolve(), pace=False)
    app = AgentApp.from_config(agent)
    assert 78 < (app.length_s("file") or 0) < 80  # the progress bar's length
    app.start()
    wait_for(lambda: app.media_time("file") >= 8, 60, "8 s of vtest.avi decoded")
    assert app.running() and app.clips == []  # one event, still going
    assert app.stop() == Stopped(0, 0)
    assert app.done() and not app.running()
    [clip] = app.clips
    assert clip.metadata["camera"] == "file" and "motion" in clip.metadata["labels"]
    assert clip.entry.clip.stat().st_size > 0
    assert [meta["camera"] for meta in sidecars(tmp_path)] == ["file"]


@pytest.mark.usefixtures("no_threads_left")
def test_paired_it_seals_and_goes_live_and_stops_cleanly_while_the_server_is_down(
    tmp_path: Path,
) -> None:
    server = f"http://127.0.0.1:{closed_port()}"
    pairing(tmp_path / "state", server)
    app = AgentApp.from_config(config(tmp_path, synthetic_camera("app-live", pace=True)))
    assert app.identity is not None and app.identity.server == server
    assert app.delivery is not None and app.live_off is None
    app.start()
    wait_for(lambda: bool(app.delivery and app.delivery.sealed.pending()), 30, "a sealed clip")
    stopped = app.stop(drain_s=0.5)  # nothing can go: the server is down
    assert stopped.delivered == 0 and stopped.waiting >= 1
    assert app.stop() == stopped  # again: nothing left to stop


@pytest.mark.usefixtures("no_threads_left")
def test_an_injected_pairing_replaces_the_one_on_disk(tmp_path: Path) -> None:
    """The demo re-points its cameras at this run's in-process server."""
    stored = pairing(tmp_path / "state", f"http://127.0.0.1:{closed_port()}")
    moved = DeviceIdentity.from_json({**stored.to_json(), "server": "http://127.0.0.1:9"})
    app = AgentApp.from_config(config(tmp_path, synthetic_camera("app-x")), identity=moved)
    assert app.identity == moved
    assert app.stop() == Stopped(0, 0)  # built, never started: stopping is still clean


def test_live_view_is_off_where_the_token_would_cross_the_network_in_clear(
    tmp_path: Path,
) -> None:
    pairing(tmp_path / "state", "http://camera-server.example")
    app = AgentApp.from_config(config(tmp_path, synthetic_camera("app-y")))
    assert app.delivery is not None  # uploads are still attempted (and refused by pairing)
    assert app.live_off is not None and "ws://" in app.live_off
    app.stop()
    with_once = AgentApp.from_config(config(tmp_path, synthetic_camera("app-y")), once=True)
    assert with_once.live_off is None  # no live view is asked for with --once
    with_once.stop()


def test_what_cannot_be_built_is_one_build_error(tmp_path: Path) -> None:
    model = tmp_path / "missing.onnx"
    camera = synthetic_camera("app-z", detect={"kind": "onnx", "model_path": str(model)})
    with pytest.raises(BuildError, match=f"ONNX model not found: {model}"):
        AgentApp.from_config(config(tmp_path, camera))
    (tmp_path / "file").write_text("not a directory")
    spool_on_a_file = config(tmp_path, synthetic_camera("app-z")).model_copy(
        update={"spool_dir": tmp_path / "file" / "spool"}
    )
    with pytest.raises(BuildError):
        AgentApp.from_config(spool_on_a_file)


def test_only_file_and_synthetic_sources_are_unpaced() -> None:
    live = CameraConfig(name="door", source=RtspSource(kind="rtsp", url="rtsp://cam/stream"))
    assert unpaced(live) == live
    camera = synthetic_camera("app-p", pace=True)
    assert not paced(unpaced(camera))
    assert paced(camera)  # unpaced made a copy: the configuration itself is unchanged
