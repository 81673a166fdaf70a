"""Real processes for the fault benchmark and the fault tests: a `doorwarden serve` that can
be killed -9 and started again on the same port and data, an owner who pairs cameras over
HTTP, and camera agents (`doorwarden agent run`) on looped real-time footage.

Nothing here is mocked: the server is the console script's process on loopback, the
agents are processes that record, seal and upload as on a camera box, and faults are
injected from outside (signals, a TcpProxy in the path, a filesystem that fills).
Counting what arrived is fault_counts.py's business.

Which clips a camera recorded is observed from outside the agent's code: an inotify watch
on its plain spool sees every sidecar renamed into place (the spool's commit point), even
when the agent is killed a millisecond later (tests/functional/agent/test_agent_crash_loop.py
argues why; its `Commits` is reused here).
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from tests.factories import CHEAP_PASSWORDS_ENV
from tests.live_server import free_port
from tests.spool_commits import Commits

from doorwarden.agent.capture.synthetic import encode_h264
from doorwarden.agent.config.models import SyntheticSource
from doorwarden.agent.delivery.identity import DeviceIdentity, IdentityStore
from doorwarden.agent.delivery.pairing import pair

PASSWORD = "a long fault-bench password"
DOORWARDEN = [sys.executable, "-m", "doorwarden"]

# Footage: a person-sized box walks across a small frame for 5 s of every 6 s loop, so a
# camera records a ~4 s clip every ~4 s (max_clip_s splits the walk at keyframes). Small
# frames keep 20 cameras within two cores, yet their thumbnails span several 4 KiB pages,
# so a nearly full disk can take a write short (issue 23's truncated thumbnail).
SCENE = SyntheticSource(
    kind="synthetic", scene="object", width=320, height=192, fps=10, duration_s=6, enter_at_s=0.5
)

AGENT_CONFIG = """\
spool_dir: {spool}
state_dir: {state}
spool_max_bytes: {spool_max_bytes}
{extra}upload: {{part_bytes: 65536, backoff_initial_s: 0.2, backoff_max_s: {backoff_max_s},
          timeout_s: {timeout_s}, max_spool_bytes: {spool_max_bytes}}}
cameras:
  - name: cam
    source: {{kind: file, path: {scene}, loop: true, pace: true}}
    motion: {{analysis_width: 160}}
    record: {{pre_roll_s: 0, post_roll_s: 0.5, min_clip_s: 1, max_clip_s: 2.5, cooldown_s: 0}}
    detect: {{kind: none}}
"""


@contextlib.contextmanager
def kept_full(directory: Path, leave_bytes: int, *, jitter_bytes: int = 0) -> Iterator[None]:
    """Fill `directory`'s filesystem to `leave_bytes` free and top it up every 0.1 s while
    the block runs (whatever others delete is taken again), then release the room.

    With `jitter_bytes`, each tick sets the free space anywhere in leave_bytes ..
    leave_bytes + jitter_bytes (the filler shrinks as well as grows; seeded): a clip's
    data may then fit and its thumbnail not, so writes are cut short at every stage, as
    on a busy disk that is nearly full rather than full."""
    from tests.tmpfs import FILLER, fill, free_bytes, release  # noqa: PLC0415 - pytest

    stop = threading.Event()
    rng = random.Random(leave_bytes ^ jitter_bytes)  # noqa: S311 - a test's jitter

    def hold(target: int) -> None:
        free = free_bytes(directory)
        if free > target:
            fill(directory, target)
            return
        filler = directory / FILLER
        with contextlib.suppress(FileNotFoundError):
            release(directory, keep_bytes=max(1, filler.stat().st_size - (target - free)))

    def top_up() -> None:
        while not stop.wait(0.1):
            hold(leave_bytes + (rng.randrange(jitter_bytes + 1) if jitter_bytes else 0))

    fill(directory, leave_bytes)
    thread = threading.Thread(target=top_up, name="filler", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)
        release(directory)


def make_scene(path: Path) -> Path:
    if not path.exists():
        encode_h264(SCENE, path)
    return path


def wait_until(condition: object, timeout_s: float, what: str) -> None:
    """Poll `condition()` until true; TimeoutError naming `what` (for tests and bench)."""
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(0.05)


@dataclass
class Server:
    """`doorwarden serve` as a child process; its output appended to `<root>/server.log`."""

    root: Path
    data_dir: Path  # clip store and staging (data_dir/clips, data_dir/staging)
    database_url: str  # what the server connects to (a TcpProxy's port, for DB faults)
    port: int = field(default_factory=free_port)
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(36))
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOORWARDEN_")}
        env.update(
            {
                "DOORWARDEN_SECRET_KEY": self.secret,
                "DOORWARDEN_DATA_DIR": str(self.data_dir),
                "DOORWARDEN_DATABASE_URL": self.database_url,
                "DOORWARDEN_SIGNUP_MODE": "open",
                "DOORWARDEN_PUBLIC_BASE_URL": self.url,
                "PYTHONUNBUFFERED": "1",
                **CHEAP_PASSWORDS_ENV,
            }
        )
        return env

    def migrate(self) -> None:
        done = subprocess.run(
            [*DOORWARDEN, "db", "upgrade"], env=self.env(), capture_output=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"doorwarden db upgrade failed: {done.stderr.decode()[-2000:]}")

    def start(self, timeout_s: float = 60) -> None:
        self.starts += 1
        with self.log.open("ab") as log:
            log.write(f"\n=== start {self.starts} at {time.time():.3f}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [*DOORWARDEN, "serve", "--port", str(self.port)],
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

        def healthy() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"doorwarden serve exited: {self.tail()}")
            try:
                return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(healthy, timeout_s, "doorwarden serve to answer /healthz")

    def kill9(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


class Owner:
    """The household's owner, signed in over HTTP (straight to the server, no proxy)."""

    def __init__(self, url: str, email: str = "owner@example.org") -> None:
        self.client = httpx.Client(base_url=url, timeout=30)
        body = {"email": email, "display_name": "Owner", "password": PASSWORD}
        self._ok(self.client.post("/api/v1/accounts", json=body))
        session = self._ok(
            self.client.post("/api/v1/session", json={"email": email, "password": PASSWORD})
        )
        self.client.headers["x-csrf-token"] = session.json()["csrf_token"]
        self.household = self._ok(
            self.client.post("/api/v1/households", json={"name": "Home"})
        ).json()["id"]

    def pairing_code(self) -> str:
        path = f"/api/v1/households/{self.household}/pairing-codes"
        return str(self._ok(self.client.post(path, json={})).json()["code"])

    def close(self) -> None:
        self.client.close()

    @staticmethod
    def _ok(response: httpx.Response) -> httpx.Response:
        if response.status_code >= 400:
            raise RuntimeError(f"{response.request.url}: {response.status_code} {response.text}")
        return response


@dataclass
class Agent:
    """A camera agent process; its output appended to `<root>/agent.log`."""

    root: Path
    name: str
    scene: Path
    spool: Path
    spool_max_bytes: int = 1 << 30
    backoff_max_s: float = 2.0
    timeout_s: float = 5.0
    extra_config: str = ""  # more top-level keys, one a line (e.g. spool_min_free_bytes)
    identity: DeviceIdentity | None = None
    process: subprocess.Popen[bytes] | None = None
    commits: Commits | None = None
    kills: int = 0

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def config(self) -> Path:
        return self.root / "agent.yaml"

    @property
    def log(self) -> Path:
        return self.root / "agent.log"

    def prepare(self, server_url: str, code: str) -> None:
        """Write the configuration, pair with `server_url` (through a proxy, if one is to
        stand in the camera's path), and start watching the plain spool for commits."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.spool.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            AGENT_CONFIG.format(
                spool=self.spool,
                state=self.state,
                scene=self.scene,
                spool_max_bytes=self.spool_max_bytes,
                backoff_max_s=self.backoff_max_s,
                timeout_s=self.timeout_s,
                extra="".join(f"{line}\n" for line in self.extra_config.splitlines()),
            )
        )
        self.identity = pair(
            IdentityStore(self.state), server=server_url, code=code, name=self.name
        )
        self.commits = Commits(self.spool)

    @property
    def device_id(self) -> str:
        assert self.identity is not None, "prepare() first"
        return self.identity.device_id

    def start(self) -> None:
        with self.log.open("ab") as log:
            log.write(f"\n=== start at {time.time():.3f}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [*DOORWARDEN, "agent", "run", "--config", str(self.config)],
                cwd=self.root,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill9(self) -> None:
        if self.running():
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
            self.kills += 1

    def stop(self) -> None:
        """SIGTERM (the clip in progress is finished and committed), then wait."""
        if self.running():
            assert self.process is not None
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def recorded(self) -> int:
        """Clips committed to the plain spool so far (every run of this agent)."""
        assert self.commits is not None, "prepare() first"
        return len(self.commits.read())

    def close(self) -> None:
        self.stop()
        if self.commits is not None:
            with contextlib.suppress(OSError):
                self.commits.close()

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""
