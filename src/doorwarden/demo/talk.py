"""Step 9 of `doorwarden demo --scenario`, "Answer the door", and the Porch doorbell's
speaker it talks to (issue 18, docs/talk.md, docs/backchannel.md).

The speaker: the repository's ONVIF camera rig (tests/unit/agent/onvif_rtsp_server.py,
GStreamer's GstRTSPOnvifServer run by Debian's /usr/bin/python3, which has `gi`) on a free
loopback port, taking G.711 mu-law on its audio backchannel and recording what it hears
(`audio.s16`, `buffers.jsonl`) under the data directory. It is started first thing, in
the background (it is listening in about a third of a second, long before the cameras
start), and the Porch camera's agent is configured with `talk: {kind: backchannel, url:
rtsp://127.0.0.1:PORT/cam}`. Without the rig (no /usr/bin/python3 with GStreamer's RTSP
server, or an installed doorwarden without the repository's tests), the Porch camera has
no talk output, and the demo says so once.

The step, as Ravi's browser would do it, through the same WebSocket the live page opens
(his session cookie and this site's Origin): the stream's init says `audio: true` and
fragments follow; Talk, 2 s of a 440 Hz tone as raw Opus packets (what WebCodecs'
AudioEncoder sends: 48 kHz mono, 20 ms), paced in real time, Stop. The scenario then
reads what the rig heard (its strongest frequency) and the talk:end audit entry. Then
Officer Dana is refused the live page and its socket, and so Talk. Without the rig, the
step says what it would need, and prints the agent's real answer to Talk.
"""

from __future__ import annotations

import contextlib
import json
import queue
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from doorwarden.agent.config.talk import BackchannelTalk
from doorwarden.demo.api import Api
from doorwarden.demo.cast import HOMES, OFFICER, DemoHome
from doorwarden.demo.doorbell import Narrator

SYSTEM_PYTHON = "/usr/bin/python3"
RIG = Path("tests/unit/agent/onvif_rtsp_server.py")  # relative to the repository
DEBIAN_PACKAGES = (
    "gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-good "
    "gstreamer1.0-plugins-ugly"
)
SPEAKER = "the Porch doorbell's speaker"
READY_S = 10.0  # the rig listens in about 0.3 s; a loaded machine gets more
PORCH = next(home for home in HOMES if home.camera.talk)  # the Porch
TONE_HZ, TONE_S, RATE, FRAME = 440.0, 2.0, 48_000, 960  # 20 ms Opus frames at 48 kHz
STREAM_WAIT_S = 30.0  # the camera starts its live stream when someone watches
STATE_WAIT_S = 15.0  # the server gives the camera 10 s to open its talk output


class TalkStepError(Exception):
    """The step could not be completed; the message says where it stopped."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PorchSpeaker:
    """The ONVIF camera rig as the Porch doorbell's speaker: started in the background,
    one verdict (ready, or why not), stopped with the demo."""

    def __init__(self, rig: Path, directory: Path, python: str = SYSTEM_PYTHON) -> None:
        self.rig, self.directory, self.python = rig, directory, python
        self.port = free_port()
        self.url = f"rtsp://127.0.0.1:{self.port}/cam"
        self._proc: subprocess.Popen[str] | None = None
        self._missing: str | None = None
        self._decided = threading.Event()
        self._lock = threading.Lock()

    def start(self) -> None:
        if not self.rig.is_file():
            self._decide(f"{self.rig} is not here (the demo runs it from a repository checkout)")
        elif not Path(self.python).is_file():
            self._decide(f"{self.python} is not here")
        else:
            threading.Thread(target=self._run, name="demo-porch-speaker", daemon=True).start()

    def _run(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        for name in ("audio.s16", "buffers.jsonl", "events.jsonl"):  # this run's alone
            (self.directory / name).unlink(missing_ok=True)
        errors = self.directory / "rig.log"
        with errors.open("w") as log:
            command = [self.python, str(self.rig), str(self.port), str(self.directory)]
            proc = subprocess.Popen(  # noqa: S603 - the repository's rig, our arguments
                [*command, "--codec", "pcmu"],
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        with self._lock:
            self._proc = proc
        said = proc.stdout.readline().strip() if proc.stdout is not None else ""
        if said == "ready":
            self._decide(None)
            return
        proc.wait()
        last = (errors.read_text(errors="replace").strip().splitlines() or ["no output"])[-1]
        self._decide(f"{self.python} cannot run GStreamer's ONVIF RTSP server: {last}")

    def _decide(self, missing: str | None) -> None:
        with self._lock:
            if not self._decided.is_set():
                self._missing = missing
                self._decided.set()

    def missing(self, timeout_s: float = READY_S) -> str | None:
        """None when the speaker listens; else why not (after `timeout_s` at most: one
        verdict for everyone who asks, so the camera and the banner agree)."""
        if not self._decided.wait(timeout_s):
            self._decide(f"it did not start within {timeout_s:.0f} s")
            self.stop()
        return self._missing

    def talk_config(self) -> BackchannelTalk | None:
        """The Porch camera's `talk:` (None: no talk output)."""
        if self.missing() is not None:
            return None
        return BackchannelTalk(kind="backchannel", url=self.url, codecs=["pcmu"])

    def words(self) -> str:
        """What the demo says about the speaker, once (the banner)."""
        missing = self.missing()
        if missing is None:
            return (
                f"Talk: {SPEAKER} is an ONVIF camera's audio backchannel at {self.url} "
                f"(GStreamer's RTSP server, G.711); it records what it hears in {self.directory}"
            )
        return (
            f"note: two-way talk needs GStreamer's RTSP server ({missing}). On Debian: "
            f"apt install {DEBIAN_PACKAGES}. Until then the Porch camera has no talk "
            "output: its live page's Talk answers that the camera has no talk output."
        )

    def heard(self, since_sample: int = 0) -> tuple[np.ndarray, int]:
        """What the speaker heard from sample `since_sample` on (float -1..1), its rate."""
        path = self.directory / "audio.s16"
        data = np.frombuffer(path.read_bytes(), dtype="<i2") if path.exists() else np.zeros(0)
        lines = (self.directory / "buffers.jsonl").read_text().splitlines() if data.size else []
        rate = int(json.loads(lines[-1])["rate"]) if lines else 0
        return data[since_sample:].astype(np.float64) / 32768, rate

    def stop(self) -> None:
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()  # the rig quits its main loop on SIGTERM
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def peak_hz(samples: np.ndarray, rate: int) -> float:
    """The strongest frequency (Hz) in `samples`."""
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    spectrum[:3] = 0  # DC
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


def tone_packets(hz: float = TONE_HZ, seconds: float = TONE_S) -> list[bytes]:
    """Raw Opus packets of a tone, as WebCodecs' AudioEncoder makes them (libopus)."""
    import av  # noqa: PLC0415 - the video stack; loaded by the cameras long before

    encoder = av.CodecContext.create("libopus", "w")
    if not isinstance(encoder, av.AudioCodecContext):
        raise TalkStepError("PyAV's libopus is not an audio encoder")
    encoder.sample_rate, encoder.layout, encoder.format = RATE, "mono", "s16"
    encoder.bit_rate = 32_000
    encoder.open()
    packets: list[bytes] = []
    for start in range(0, int(seconds * RATE), FRAME):
        t = (np.arange(FRAME) + start) / RATE
        pcm = (np.sin(2 * np.pi * hz * t) * 0.4 * 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        packets += [bytes(p) for p in encoder.encode(frame)]
    return packets + [bytes(p) for p in encoder.encode(None)]


class LiveSocket:
    """A camera's live WebSocket as the live page opens it: one thread reads (the video
    keeps coming while we talk), the caller sends."""

    def __init__(self, base_url: str, api: Api, household: Any, device: str, camera: str):
        path = f"/api/v1/households/{household}/devices/{device}/live?camera={camera}"
        cookies = "; ".join(f"{c.name}={c.value}" for c in api.client.cookies.jar)
        self._stack = contextlib.ExitStack()  # websockets wants connect() as a context
        self.ws: ClientConnection = self._stack.enter_context(
            connect(
                "ws" + base_url.removeprefix("http") + path,
                additional_headers={"Cookie": cookies, "Origin": base_url},
                compression=None,  # fMP4 and Opus are compressed already
                open_timeout=15,
                max_size=16 * 1024 * 1024,
            )
        )
        self.init: dict[str, Any] | None = None
        self.binaries = 0  # since the init: its init segment, then fragments
        self.state: dict[str, Any] | None = None  # the server's last word on the stream
        self.ended: str | None = None  # why the reader stopped
        self.talk: queue.Queue[dict[str, Any]] = queue.Queue()
        self._reader = threading.Thread(target=self._read, name="demo-live-reader", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            for message in self.ws:
                if isinstance(message, bytes):
                    self.binaries += 1
                    continue
                body = json.loads(message)
                if body.get("type") == "init":
                    self.init, self.binaries = body, 0
                elif body.get("type") == "talk":
                    self.talk.put(body)
                elif body.get("type") == "state":
                    self.state = body
            self.ended = "closed"
        except Exception as exc:  # noqa: BLE001 - said by wait_stream, if it matters
            self.ended = f"{type(exc).__name__}: {exc}"

    def fragments(self) -> int:
        return max(self.binaries - 1, 0)

    def wait_stream(self, timeout_s: float = STREAM_WAIT_S) -> float:
        began = time.monotonic()
        while self.init is None or self.fragments() < 1:
            if time.monotonic() - began > timeout_s or self.ended is not None:
                seen = f"init {'yes' if self.init else 'no'}, {self.binaries} binary message(s)"
                raise TalkStepError(
                    f"the live stream did not start within {timeout_s:.0f} s ({seen}; the "
                    f"server's state: {self.state}; the socket: {self.ended or 'open'})"
                )
            time.sleep(0.05)
        return time.monotonic() - began

    def talk_state(self, timeout_s: float = STATE_WAIT_S) -> dict[str, Any]:
        try:
            return self.talk.get(timeout=timeout_s)
        except queue.Empty:
            raise TalkStepError(f"no talk state from the server in {timeout_s:.0f} s") from None

    def close(self) -> None:
        self._stack.close()
        self._reader.join(5)


@dataclass
class Heard:
    seconds: float
    peak_hz: float


class TalkStep:
    """Step 9, told through the scenario's voice and its signed-in API clients."""

    def __init__(
        self, scenario: Narrator, speaker: PorchSpeaker | None, home: DemoHome = PORCH
    ) -> None:
        self.s, self.speaker, self.home = scenario, speaker, home
        self.household = scenario.household(home)
        self.device = scenario.stage.devices[home.slug]
        self.live = f"/households/{self.household}/cameras/{self.device}/live"
        self.record: dict[str, Any] = {"camera": home.camera.name}

    def run(self) -> dict[str, Any]:
        self.s.step(f"Answer the door: hear the {self.home.camera.label} camera, talk back")
        missing = self.speaker.missing() if self.speaker is not None else "no speaker started"
        owner = self.s.api(self.home.owner)
        socket_ = LiveSocket(
            self.s.stage.base_url, owner, self.household, self.device, self.home.camera.name
        )
        try:
            self.listen(socket_)
            if missing is None:
                self.talk(socket_)
            else:
                self.without_speaker(socket_, missing)
        finally:
            socket_.close()
        self.s.look(
            "talk_live",
            self.live,
            self.home.owner,
            "the live page: press Unmute to hear the camera (a beep every 5 s), and Talk "
            "to speak through its speaker (the browser asks for the microphone); Stop ends it",
        )
        self.refuse()
        return self.record

    def listen(self, live: LiveSocket) -> None:
        took = live.wait_stream()
        init = live.init or {}
        self.record.update(audio=init.get("audio") is True, mime=init.get("mime"))
        sound = (
            "audio: true, the camera's sound is in the stream (muted on the page until Unmute)"
            if init.get("audio") is True
            else "audio: false, this camera sends no sound"
        )
        who = self.home.owner
        self.s.say(
            f"{who.name} ({who.email}) opens the {self.home.camera.label} live page: its "
            f"stream starts in {took:.1f} s, {init.get('mime')}, {sound}"
        )

    def talk(self, live: LiveSocket) -> None:
        assert self.speaker is not None  # noqa: S101 - run() checked
        before = self.speaker.heard()[0].size
        pressed = datetime.now(UTC) - timedelta(seconds=1)
        live.ws.send(json.dumps({"type": "talk", "action": "start", "codec": "opus"}))
        states = [live.talk_state()["state"]]
        while states[-1] == "connecting":
            states.append(live.talk_state()["state"])
        self.record["states"] = states
        if states[-1] != "open":
            raise TalkStepError(f"Talk was answered {' -> '.join(states)}")
        packets = tone_packets()
        began = time.monotonic()
        for i, packet in enumerate(packets):  # paced as a microphone speaks: 20 ms each
            time.sleep(max(0.0, began + i * FRAME / RATE - time.monotonic()))
            live.ws.send(packet)
        time.sleep(0.3)  # the last words reach the camera before Stop tears it down
        live.ws.send(json.dumps({"type": "talk", "action": "stop"}))
        self.s.say(
            f"{self.home.owner.name.split()[0]} presses Talk: {' -> '.join(states)}; "
            f"{TONE_S:.0f} s of a {TONE_HZ:.0f} Hz tone as "
            f"{len(packets)} Opus packets (48 kHz mono, 20 ms, as the page's encoder sends "
            "them), in real time; Stop"
        )
        heard = self._heard(before)
        self.record.update(heard_s=round(heard.seconds, 2), peak_hz=round(heard.peak_hz, 1))
        if abs(heard.peak_hz - TONE_HZ) > 10:
            raise TalkStepError(
                f"{SPEAKER} heard {heard.seconds:.1f} s peaking at {heard.peak_hz:.0f} Hz, "
                f"not the {TONE_HZ:.0f} Hz tone"
            )
        self.s.say(
            f"the tone reached the Porch camera's speaker: {heard.seconds:.1f} s heard on its "
            f"ONVIF backchannel (G.711), strongest at {heard.peak_hz:.1f} Hz"
        )
        end = self._talk_end(pressed)
        extra = end["extra"]
        self.record["talk_end"] = extra
        self.s.say(
            f"the household's access log: talk:end, {extra['duration_s']} s, {extra['bytes']} "
            f"bytes in {extra['packets']} packets of {extra['codec']}, ended by "
            f"{extra['ended_by']} ({extra['outcome']}); the server relayed it and kept none"
        )

    def _heard(self, before: int, wait_s: float = 10.0) -> Heard:
        """What the speaker heard since `before`, once it has stopped growing."""
        assert self.speaker is not None  # noqa: S101 - talk() only with a speaker
        deadline, last, steady = time.monotonic() + wait_s, -1, 0
        while time.monotonic() < deadline and steady < 5:
            size = self.speaker.heard(before)[0].size
            steady = steady + 1 if size == last and size > 0 else 0
            last = size
            time.sleep(0.1)
        samples, rate = self.speaker.heard(before)
        if samples.size < rate // 2 or rate == 0:
            raise TalkStepError(
                f"{SPEAKER} heard {samples.size} samples (see {self.speaker.directory})"
            )
        return Heard(samples.size / rate, peak_hz(samples, rate))

    def _talk_end(self, pressed: datetime, wait_s: float = 10.0) -> dict[str, Any]:
        api, path = self.s.api(self.home.owner), f"/api/v1/households/{self.household}"
        deadline = time.monotonic() + wait_s
        while True:
            for event in api.get(f"{path}/audit-events", limit="50"):
                at = datetime.fromisoformat(event["occurred_at"])
                at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
                if event["tag"] == "talk:end" and at >= pressed:
                    return dict(event)
            if time.monotonic() > deadline:
                raise TalkStepError(f"no talk:end in the access log within {wait_s:.0f} s")
            time.sleep(0.2)

    def without_speaker(self, live: LiveSocket, missing: str) -> None:
        self.s.say(
            f"{SPEAKER} is not running ({missing}): the tone cannot be sent. This step "
            "needs Debian's /usr/bin/python3 with GStreamer's RTSP server: apt install "
            f"{DEBIAN_PACKAGES}, and the repository's {RIG}."
        )
        live.ws.send(json.dumps({"type": "talk", "action": "start", "codec": "opus"}))
        states = [live.talk_state()]
        while states[-1]["state"] == "connecting":
            states.append(live.talk_state())
        self.record["states"] = [s["state"] for s in states]
        last = states[-1]
        self.s.say(
            f'Talk is answered {" -> ".join(self.record["states"])}: "{last.get("message")}"'
        )

    def refuse(self) -> None:
        officer = self.s.api(OFFICER)
        page = officer.client.get(self.live).status_code
        try:
            LiveSocket(
                self.s.stage.base_url, officer, self.household, self.device, self.home.camera.name
            ).close()
            socket_status: int | str = "opened"
        except InvalidStatus as exc:
            socket_status = exc.response.status_code
        self.record["agency"] = {"page": page, "socket": socket_status}
        self.s.say(
            f"{OFFICER.name} ({OFFICER.email}, the agency) tries the {self.home.camera.label} "
            f"live page: {page}; its live WebSocket: {socket_status}. Talk rides on that "
            "socket, and live:talk is refused to agencies in its own right: neither "
            "listening nor talking, warrant or not"
        )
        if page < 400 or socket_status == "opened":
            raise TalkStepError(f"{OFFICER.email} was let into the {self.home.camera.label} live")
