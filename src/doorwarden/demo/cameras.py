"""The demo's cameras: one camera agent per home, in this process, each an `AgentApp`
(agent/app.py), the very composition `doorwarden agent run --config` starts (spool,
sealing and upload, the camera pipeline, the live-view link, the camera thread), each
with its own device key, pairing and spool under `<data dir>/agents/<home>/`.

In-process threads rather than three `doorwarden agent run` subprocesses: on the 2-core
development machine an agent process spends about 4.5 s of CPU importing before its first
frame (three of them compete with each other and with the server), while here the video
libraries load once, in about 1.7 s. The work per frame is in FFmpeg, libx264 and OpenCV,
which release the GIL (see agent/cameras.py).

The footage is real: OpenCV's vtest.avi (768x576, 10 fps, pedestrians), looped and paced
at its frame rate like a live camera, and a synthetic scene (someone walking past a porch
every 20 s) rendered once to an H.264 file. vtest.avi is MS-MPEG4, which browsers cannot
play, so those cameras re-encode their clips (and live view) with libx264, as an agent
does for such a camera. Motion is analysed at 2 frames a second on them, and the people
detector runs only with --people, on one camera (see cast.py).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from doorwarden.agent.app import AgentApp
from doorwarden.agent.capture.synthetic import encode_h264
from doorwarden.agent.config.models import (
    AgentConfig,
    CameraConfig,
    DetectConfig,
    DetectorKind,
    FileSource,
    MotionConfig,
    RecordConfig,
    SyntheticSource,
)
from doorwarden.agent.config.mqtt import MqttConfig
from doorwarden.agent.config.talk import BackchannelTalk
from doorwarden.agent.delivery.identity import DeviceIdentity, IdentityStore
from doorwarden.agent.delivery.pairing import pair
from doorwarden.agent.delivery.uploader import http_client
from doorwarden.demo.cast import DemoCamera, DemoHome

log = structlog.get_logger("doorwarden.demo.cameras")

SCENE_FILE = "porch-walker-sound.mp4"  # with the tone track (issue 18): a new name, a new render
SCENE_SECONDS = 20.0
_RENDERING = threading.Lock()  # without vtest.avi, every camera waits for the one scene


def render_scene(directory: Path) -> Path:
    """The synthetic camera's footage, rendered once (a few seconds of CPU) and kept."""
    path = directory / SCENE_FILE
    with _RENDERING:
        if not path.is_file():
            _render(path)
    return path


def _render(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    scene = SyntheticSource(
        kind="synthetic",
        width=480,
        height=270,
        fps=10,
        duration_s=SCENE_SECONDS,
        scene="object",
        enter_at_s=6.0,
        seed=7,
        audio=True,  # a beep (and a small white square) every 5 s: the camera with sound
        beep_every_s=5.0,
    )
    partial = path.with_suffix(".partial.mp4")
    encode_h264(scene, partial)
    partial.replace(path)  # whole or not at all: a killed render is redone next time


# Frames analysed for motion a second: 2 find vtest.avi's pedestrians; the synthetic walker
# crosses the view in 5 s and needs 5.
ANALYSIS_FPS = {"vtest": 2.0, "synthetic": 5.0}


def camera_config(
    camera: DemoCamera,
    footage: Path,
    *,
    synthetic: bool,
    people: bool,
    talk: BackchannelTalk | None = None,
) -> CameraConfig:
    return CameraConfig(
        name=camera.name,
        source=FileSource(kind="file", path=footage, pace=True, loop=True),
        motion=MotionConfig(analysis_fps=ANALYSIS_FPS["synthetic" if synthetic else "vtest"]),
        # vtest.avi has people in view nearly all the time: 20 s clips, not one long one,
        # so the first clip reaches the timeline within half a minute.
        record=RecordConfig(pre_roll_s=2.0, post_roll_s=4.0, max_clip_s=20.0, cooldown_s=3.0),
        detect=DetectConfig(
            kind=DetectorKind.nanodet if people and camera.people_detection else DetectorKind.none
        ),
        privacy_zones=[list(zone) for zone in camera.privacy_zones],
        audio=synthetic,  # the synthetic porch camera records its tone track
        talk=talk,  # the Porch doorbell's speaker (demo/talk.py), when it runs
    )


@dataclass(frozen=True)
class Stopped:
    name: str
    delivered: int  # clips the server verified during this run
    waiting: int  # clips kept in the spool for the next run (none when all went)


class DemoAgent:
    """One home's camera agent: pair once, then run until stopped."""

    def __init__(self, home: DemoHome, root: Path) -> None:
        self.home = home
        self.store = IdentityStore(root / "state")
        self.spool_dir = root / "spool"
        self.identity: DeviceIdentity | None = None
        self.footage: Path | None = None
        self._app: AgentApp | None = None
        self._starter: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stopping = False
        self.error: str | None = None
        self.mqtt: MqttConfig | None = None

    @property
    def device_id(self) -> str | None:
        return self.identity.device_id if self.identity is not None else None

    # -- pairing ---------------------------------------------------------------------

    def paired_with(self, server: str) -> bool:
        """Whether the pairing kept in the state directory is still good on `server`.
        The server's address may have changed (another --port): the pairing is kept and
        its address updated, as a camera's owner would re-point it."""
        identity = self.store.load()
        if identity is None:
            return False
        if identity.server != server:
            identity = dataclasses.replace(identity, server=server)
            self.store.save(identity)
        with http_client(10.0) as client:
            answer = client.get(
                f"{server}/api/v1/device", headers={"authorization": f"Bearer {identity.token}"}
            )
        if answer.status_code != 200:  # revoked, or the database was replaced
            log.warning(
                "demo.camera_repair", camera=self.home.camera.name, status=answer.status_code
            )
            return False
        self.identity = identity
        return True

    def pair(self, server: str, code: str) -> None:
        self.identity = pair(self.store, server=server, code=code, name=self.home.camera.label)

    # -- running ---------------------------------------------------------------------

    def start(
        self,
        footage: Path | None,
        render_into: Path | None = None,
        *,
        people: bool = False,
        talk: Callable[[], BackchannelTalk | None] | None = None,
        mqtt: MqttConfig | None = None,
    ) -> None:
        """Start in the background: render the synthetic footage first if it is needed
        (`footage` None, `render_into` its folder), then the camera; `talk()` gives its
        talk output (it may wait for the speaker to start: in this thread, not the demo's);
        `mqtt`: the broker it also publishes to (--mqtt)."""
        self.mqtt = mqtt

        def starting() -> None:
            try:
                path = footage if footage is not None else render_scene(render_into or Path())
                output = talk() if talk is not None else None
                with self._lock:
                    if not self._stopping:
                        self.footage = path
                        config = camera_config(
                            self.home.camera,
                            path,
                            synthetic=footage is None,
                            people=people,
                            talk=output,
                        )
                        self._start(config)
            except Exception as exc:  # shown in the status, never a silent dead camera
                self.error = f"{type(exc).__name__}: {exc}"
                log.exception("demo.camera_start_failed", camera=self.home.camera.name)

        self._starter = threading.Thread(
            target=starting, name=f"demo-start-{self.home.slug}", daemon=True
        )
        self._starter.start()

    def _start(self, camera: CameraConfig) -> None:
        identity = self.identity
        if identity is None:
            raise RuntimeError("start() before pairing")
        config = AgentConfig(
            spool_dir=self.spool_dir, state_dir=self.store.state_dir, cameras=[camera],
            mqtt=self.mqtt,
        )  # fmt: skip
        # The pairing just checked against this run's server (whose address may be new).
        app = AgentApp.from_config(config, identity=identity)
        if app.live_off is not None:
            log.warning("demo.live_off", camera=camera.name, reason=app.live_off)
        app.start()
        self._app = app

    def running(self) -> bool:
        return self._app is not None and self._app.running()

    def wait_started(self, timeout_s: float) -> bool:
        if self._starter is not None:
            self._starter.join(timeout_s)
        return self._app is not None

    def stop(self, drain_s: float = 15.0) -> Stopped:
        """Stop the camera (its clip in progress is finished), deliver what is left while
        the server is still up, and keep in the spool whatever could not go."""
        with self._lock:
            self._stopping = True
        if self._starter is not None:
            self._starter.join(30)  # a scene render cannot be interrupted; it is short
        if self._app is None:
            return Stopped(self.home.camera.label, 0, 0)
        stopped = self._app.stop(drain_s=drain_s)
        return Stopped(self.home.camera.label, stopped.delivered, stopped.waiting)
