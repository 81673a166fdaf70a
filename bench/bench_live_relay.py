"""Live relay capacity: how many viewers of one 720p camera one server core carries.

Target (issue "Live view", item 5): at least 50 concurrent viewers of one 720p stream on
one core with no viewer falling behind.

* The stream is real: a synthetic 1280x720 25 fps H.264 scene (`encode_h264`, scene
  "object") read back as a camera would (`open_source`, a file source) and fed through the
  agent's `LiveTap`, which gives the init segment and one fMP4 fragment (moof+mdat) per
  frame, exactly the bytes an agent streams. Its bit rate is printed: the synthetic scene
  is mostly static, so it is far below a real doorbell's (about 0.4 Mbit/s against 1-4);
  `--scene noise` gives a much heavier stream (about 15 Mbit/s) of the same size and rate.
* The server is a real `doorwarden serve` in its own process on a fresh SQLite database,
  pinned to core 0 (`taskset`); this process, the agent and every viewer, is pinned to
  core 1, so the server's core does nothing else of ours. Development mode (plain ws://).
* One owner signs in once per viewer (one session each, as many browsers would). The
  agent (device token, no compression, as the real agent) says hello, waits for `start`,
  sends the init segment, waits until every viewer has it, then sends the fragments with
  the protocol's header bytes, paced at 25 fps, for `--seconds`. Each viewer (session
  cookie and Origin, as a browser) notes when each fragment arrives; fragments are told
  apart by their moof sequence number.
* "browser" viewers offer permessage-deflate, as every browser does, and the server
  (uvicorn's default) agrees; "plain" viewers do not offer it. Both are measured: the
  difference is what compressing already-compressed video for each viewer costs.
* Per step: fragments sent; received per viewer (the fewest) and missed (not received 5 s
  after the last was sent); delivery lag (arrival minus the agent's send time, one clock)
  p50 / p95 / max over all viewers and fragments, and p50 of the keyframe fragments alone;
  the server process's CPU time (/proc/PID/stat, utime + stime, all its threads) over the
  streaming window as a fraction of one core; this process's CPU (near 1.0, the viewers
  and not the server would be the limit); how late the agent's sends ran against their
  schedule (back-pressure from the server); and the server's own count, `fell_behind`
  from each viewer's `live:end` audit event, read as the owner.
* The baseline, in the same run on the same server: one viewer. The cost of viewers is
  read as ratios: server CPU with N viewers over server CPU with one, and the CPU each
  added viewer costs.

A viewer has fallen behind when it missed a fragment, when the server counted a
`fell_behind` episode (its queue overflowed and was dropped), or when a fragment reached
it more than a second late (live view's budget is the camera within about a second).
The target is met when no browser viewer fell behind with `--viewers` of them, the agent
stayed connected and the server used under 90% of its core. The ramp (`--ramp`) shows
where it breaks. The default run takes about three minutes.

    .venv/bin/python bench/bench_live_relay.py [--viewers 50] [--seconds 20] [--ramp 25,100]
        [--plain 1,50,100] [--scene object|noise]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin

from doorwarden.accounts.sessions import SESSION_COOKIE
from doorwarden.agent.capture.sources import open_source
from doorwarden.agent.capture.synthetic import encode_h264
from doorwarden.agent.config.models import FileSource, SyntheticSource
from doorwarden.agent.live.tap import Fragment, InitSegment, LiveOutput, LiveTap
from doorwarden.crypto.keys import SigningKey, b64e
from doorwarden.logging import configure_logging

SERVER_CORE, BENCH_CORE = 0, 1
WIDTH, HEIGHT, FPS = 1280, 720, 25
INIT, KEYFRAME, DELTA = 0x00, 0x01, 0x02  # docs/live-view.md: first byte of agent media
MAX_LAG_S = 1.0  # live view's latency budget: later than this is behind
MAX_SERVER_CPU = 0.9  # of one core: above this there is no headroom left
OWNER = "owner@bench.example"
PASSWORD = "bench-" + secrets.token_urlsafe(12)  # fresh per run
STARTUP_S = 30.0
DRAIN_S = 5.0  # after the last fragment: how long viewers may take to get it
Scene = Literal["object", "noise"]


# -- the stream ------------------------------------------------------------------------


def moof_sequence(data: bytes) -> int:
    """The mfhd sequence number of a fragment (moof first, mfhd its first child)."""
    assert data[4:8] == b"moof", data[:16]
    assert data[12:16] == b"mfhd", data[:16]
    return int.from_bytes(data[20:24], "big")


@dataclass(frozen=True)
class Stream:
    init: InitSegment
    fragments: list[Fragment]

    @property
    def seconds(self) -> float:
        return len(self.fragments) / FPS

    @property
    def mbit_s(self) -> float:
        return sum(len(f.data) for f in self.fragments) * 8 / self.seconds / 1e6

    def messages(self) -> list[bytes]:
        """The agent's binary messages, header bytes included (camera index 0)."""
        return [bytes((KEYFRAME if f.keyframe else DELTA, 0)) + f.data for f in self.fragments]


def make_stream(scene: Scene, seconds: float, directory: Path) -> Stream:
    path = directory / f"{scene}.mp4"
    # The muxer keeps the last frame back (it needs the next timestamp): one frame extra.
    duration = seconds + 2 / FPS
    cfg = SyntheticSource(
        kind="synthetic", width=WIDTH, height=HEIGHT, fps=FPS, duration_s=duration, scene=scene
    )
    encode_h264(cfg, path)
    outputs: list[LiveOutput] = []
    tap = LiveTap("front", outputs.append)
    tap.start()
    source = open_source(FileSource(kind="file", path=path, pace=False))
    try:
        for sample in source.samples():
            tap.feed(sample, source.info)
    finally:
        source.close()
        tap.stop()
    init = outputs[0]
    assert isinstance(init, InitSegment), init
    fragments = [o for o in outputs if isinstance(o, Fragment)]
    count = round(seconds * FPS)
    assert len(fragments) >= count, (len(fragments), count)
    fragments = fragments[:count]
    assert fragments[0].keyframe
    assert len({moof_sequence(f.data) for f in fragments}) == count  # each told apart
    return Stream(init, fragments)


# -- the server ------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """`doorwarden serve` on core 0, on a fresh database in `directory`."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = directory / "server.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DOORWARDEN_")}
        self.env.update(
            {
                "DOORWARDEN_DEVELOPMENT": "1",
                "DOORWARDEN_SECRET_KEY": secrets.token_urlsafe(36),
                "DOORWARDEN_DATA_DIR": str(directory),
                "DOORWARDEN_DATABASE_URL": f"sqlite+aiosqlite:///{directory / 'bench.db'}",
                "DOORWARDEN_PUBLIC_BASE_URL": self.url,
                "DOORWARDEN_LIVE_LINGER_S": "0.5",
                "DOORWARDEN_LOG_JSON": "1",
            }
        )
        self.process: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str, extra_env: dict[str, str] | None = None) -> None:
        subprocess.run(
            [sys.executable, "-m", "doorwarden", *args],
            env={**self.env, **(extra_env or {})},
            capture_output=True,
            check=True,
            timeout=120,
        )

    @contextlib.contextmanager
    def running(self) -> Iterator[Server]:
        self.cli("db", "upgrade")
        command = ["taskset", "-c", str(SERVER_CORE), sys.executable, "-m", "doorwarden"]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [*command, "serve", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                self._wait_healthy()
                yield self
            finally:
                self.process.terminate()
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()

    def _wait_healthy(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"doorwarden serve exited:\n{self.log_path.read_text()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        sys.exit(f"doorwarden serve did not start:\n{self.log_path.read_text()}")

    def cpu_seconds(self) -> float:
        """CPU time of the whole server process (all its threads), user + system."""
        assert self.process is not None
        stat = Path(f"/proc/{self.process.pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": field 3 onwards
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def warnings(self) -> dict[str, int]:
        """Warning and error log events of the server, by event name."""
        counts: dict[str, int] = {}
        for line in self.log_path.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict) and entry.get("level") in ("warning", "error"):
                    event = str(entry.get("event"))
                    counts[event] = counts.get(event, 0) + 1
        return counts


@dataclass
class Household:
    id: str
    device_id: str
    device_token: str
    owner: httpx.Client  # signed in, for the audit trail
    cookies: list[str] = field(default_factory=list)  # one session per viewer
    seen_events: set[str] = field(default_factory=set)


def sign_in(url: str) -> httpx.Response:
    response = httpx.post(
        f"{url}/api/v1/session", json={"email": OWNER, "password": PASSWORD}, timeout=60
    )
    response.raise_for_status()
    return response


def set_up(server: Server, sessions: int) -> Household:
    """An owner, a household, a camera paired through the real flow, `sessions` sessions."""
    args = ["admin", "create-user", "--email", OWNER, "--role", "resident"]
    server.cli(*args, "--password-env", "BENCH_PASSWORD", extra_env={"BENCH_PASSWORD": PASSWORD})
    signed_in = sign_in(server.url)
    owner = httpx.Client(base_url=server.url, timeout=60, cookies=signed_in.cookies)
    owner.headers["X-CSRF-Token"] = signed_in.json()["csrf_token"]
    home = owner.post("/api/v1/households", json={"name": "Bench", "time_zone": "UTC"})
    home.raise_for_status()
    household_id = str(home.json()["id"])
    code = owner.post(f"/api/v1/households/{household_id}/pairing-codes")
    code.raise_for_status()
    key = SigningKey.generate()
    body = {"code": code.json()["code"], "name": "Front door", "public_key": b64e(key.public)}
    paired = httpx.post(f"{server.url}/api/v1/devices/pair", json=body, timeout=60)
    paired.raise_for_status()
    household = Household(household_id, paired.json()["device_id"], paired.json()["token"], owner)
    for _ in range(sessions):
        household.cookies.append(f"{SESSION_COOKIE}={sign_in(server.url).cookies[SESSION_COOKIE]}")
    return household


def new_live_ends(household: Household, expected: int) -> list[int]:
    """`fell_behind` of each `live:end` event not seen before, once `expected` are in."""
    deadline = time.monotonic() + 30
    while True:
        response = household.owner.get(
            f"/api/v1/households/{household.id}/audit-events", params={"limit": 500}
        )
        response.raise_for_status()
        events = [
            e
            for e in response.json()
            if e["tag"] == "live:end" and e["id"] not in household.seen_events
        ]
        if len(events) >= expected or time.monotonic() > deadline:
            household.seen_events.update(e["id"] for e in events)
            return [int(e["extra"]["fell_behind"]) for e in events]
        time.sleep(0.2)


# -- one step: N viewers ----------------------------------------------------------------


@dataclass
class Step:
    viewers: int
    deflate: bool  # the viewers offered permessage-deflate (as browsers do)
    extensions: str  # what the server agreed to, for the first viewer
    sent: int
    received: list[int]  # fragments, per viewer
    slow: list[bool]  # per viewer: a fragment later than MAX_LAG_S
    fell_behind: list[int]  # per viewer, the server's count (its live:end audit event)
    lags: list[float]  # seconds, every fragment that arrived, every viewer
    key_lags: list[float]  # the same, keyframe fragments only
    server_cpu: float  # fraction of one core, over the streaming window
    bench_cpu: float  # this process (agent and viewers), fraction of one core
    pace_slip_s: float  # the agent's worst lateness against its 25 fps schedule
    agent_lost: bool  # the agent's connection closed before the end

    @property
    def name(self) -> str:
        return f"{self.viewers} {'browser' if self.deflate else 'plain'}"

    @property
    def missed(self) -> int:
        return sum(self.sent - r for r in self.received)

    def lag_ms(self, q: float, *, keyframes: bool = False) -> float:
        lags = self.key_lags if keyframes else self.lags
        if not lags:
            return math.nan
        ordered = sorted(lags)
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def behind(self) -> int:
        """Viewers that fell behind, by any of the three signs."""
        audit = self.fell_behind + [0] * (self.viewers - len(self.fell_behind))
        signs = zip(self.received, audit, self.slow, strict=True)
        return sum(1 for got, episodes, slow in signs if got < self.sent or episodes or slow)

    @property
    def ok(self) -> bool:
        return (
            self.behind == 0
            and not self.agent_lost
            and len(self.fell_behind) == self.viewers  # the server recorded every viewer
            and self.server_cpu < MAX_SERVER_CPU
        )

    def summary(self) -> str:
        return (
            f"{self.behind} behind, {self.missed} fragments missed, fell_behind "
            f"{sum(self.fell_behind)}, lag p50 {self.lag_ms(0.5):.1f} ms p95 "
            f"{self.lag_ms(0.95):.1f} ms max {self.lag_ms(1.0):.0f} ms, server "
            f"{100 * self.server_cpu:.0f}% of a core"
        )


class Viewer:
    def __init__(self, ws: ClientConnection, count: int, index: dict[int, int]) -> None:
        self.ws = ws
        self.arrivals = [math.nan] * count
        self.index = index  # moof sequence number -> fragment index
        self.has_init = asyncio.Event()
        self.has_last = asyncio.Event()

    async def watch(self) -> None:
        arrivals, index, last = self.arrivals, self.index, len(self.arrivals) - 1
        with contextlib.suppress(ConnectionClosed):
            async for message in self.ws:
                now = time.perf_counter()
                if isinstance(message, str):
                    continue  # state and init messages
                if message[4:8] == b"ftyp":
                    self.has_init.set()
                    continue
                i = index[moof_sequence(message)]
                arrivals[i] = now
                if i == last:
                    self.has_last.set()


async def run_step(
    server: Server, household: Household, stream: Stream, viewers: int, *, deflate: bool
) -> Step:
    messages = stream.messages()
    count = len(messages)
    index = {moof_sequence(f.data): i for i, f in enumerate(stream.fragments)}
    sent = [math.nan] * count
    ws_url = server.url.replace("http://", "ws://")
    viewer_url = f"{ws_url}/api/v1/households/{household.id}/devices/{household.device_id}/live"
    auth = {"Authorization": f"Bearer {household.device_token}"}
    agent_url = f"{ws_url}/api/v1/device/live"
    agent_link = connect(
        agent_url, additional_headers=auth, compression=None, ping_interval=10, ping_timeout=20
    )  # as the real agent (live_link.py): fMP4 does not deflate; its keepalive
    lost: str | None = None
    async with agent_link as agent:
        await agent.send(json.dumps({"type": "hello", "cameras": ["front"], "version": 1}))
        sockets = await asyncio.gather(
            *(
                connect(
                    viewer_url,
                    additional_headers={"Cookie": household.cookies[v]},
                    origin=Origin(server.url),
                    open_timeout=60,
                    max_size=None,
                    compression="deflate" if deflate else None,
                )
                for v in range(viewers)
            )
        )
        assert sockets[0].response is not None
        extensions = sockets[0].response.headers.get("Sec-WebSocket-Extensions", "none")
        watchers = [Viewer(ws, count, index) for ws in sockets]
        tasks = [asyncio.ensure_future(w.watch()) for w in watchers]
        start = json.loads(await asyncio.wait_for(agent.recv(), 30))
        assert start == {"type": "start", "camera": "front"}, start
        init = {"type": "init", "camera": "front", "mime": stream.init.mime}
        await agent.send(json.dumps({**init, "width": WIDTH, "height": HEIGHT}))
        await agent.send(bytes((INIT, 0)) + stream.init.data)
        await asyncio.wait_for(asyncio.gather(*(w.has_init.wait() for w in watchers)), 30)

        cpu0, own0, t0 = server.cpu_seconds(), time.process_time(), time.perf_counter()
        slip = 0.0
        for i, message in enumerate(messages):
            due = t0 + i / FPS
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent[i] = time.perf_counter()
            slip = max(slip, sent[i] - due)
            try:
                await agent.send(message)
            except ConnectionClosed as exc:  # e.g. keepalive timeout behind a backlog
                lost = f"the agent's connection closed after {i} fragments: {exc}"
                break
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(w.has_last.wait() for w in watchers)), DRAIN_S)
        cpu1, own1, t1 = server.cpu_seconds(), time.process_time(), time.perf_counter()
        await asyncio.gather(*(ws.close() for ws in sockets))
        await asyncio.gather(*tasks)
        if lost is not None:
            print(f"  {lost}")

    window = t1 - t0
    keyframes = [f.keyframe for f in stream.fragments]
    lags: list[float] = []
    key_lags: list[float] = []
    slow: list[bool] = []
    received: list[int] = []
    for w in watchers:
        mine = [
            (a - s, key)
            for a, s, key in zip(w.arrivals, sent, keyframes, strict=True)
            if not math.isnan(a)
        ]
        lags += [lag for lag, _ in mine]
        key_lags += [lag for lag, key in mine if key]
        slow.append(any(lag > MAX_LAG_S for lag, _ in mine))
        received.append(len(mine))
    return Step(
        viewers=viewers,
        deflate=deflate,
        extensions=extensions,
        sent=sum(not math.isnan(t) for t in sent),
        received=received,
        slow=slow,
        fell_behind=await asyncio.to_thread(new_live_ends, household, viewers),
        lags=lags,
        key_lags=key_lags,
        server_cpu=(cpu1 - cpu0) / window,
        bench_cpu=(own1 - own0) / window,
        pace_slip_s=slip,
        agent_lost=lost is not None,
    )


async def run_steps(
    server: Server, household: Household, stream: Stream, plan: list[tuple[int, bool]]
) -> list[Step]:
    results = []
    for viewers, deflate in plan:
        step = await run_step(server, household, stream, viewers, deflate=deflate)
        print(f"  {step.name:>12}: {step.summary()}", flush=True)
        results.append(step)
    return results


# -- the report --------------------------------------------------------------------------


def report(steps: list[Step], target: int, warnings: dict[str, int]) -> None:
    def base(step: Step) -> float:
        """The 1-viewer baseline's server CPU, viewers offering deflate or not alike."""
        ones = [s for s in steps if s.viewers == 1]
        return next((s for s in ones if s.deflate == step.deflate), ones[0]).server_cpu

    print()
    print(
        f"{'viewers':>12} {'sent':>5} {'min recv':>8} {'missed':>6} {'lag p50':>8} {'p95':>7} "
        f"{'max':>6} {'keyframe p50':>12} {'server CPU':>10} {'vs 1':>6} {'per viewer':>10} "
        f"{'bench CPU':>9} {'agent late':>10} {'fell_behind':>11} {'behind':>6}"
    )
    for s in steps:
        extra = (s.server_cpu - base(s)) / (s.viewers - 1) if s.viewers > 1 else math.nan
        audit = f"{sum(s.fell_behind)}/{len(s.fell_behind)}"
        print(
            f"{s.name:>12} {s.sent:>5} {min(s.received):>8} {s.missed:>6} "
            f"{s.lag_ms(0.5):>6.1f}ms {s.lag_ms(0.95):>5.1f}ms {s.lag_ms(1.0):>4.0f}ms "
            f"{s.lag_ms(0.5, keyframes=True):>10.1f}ms "
            f"{100 * s.server_cpu:>9.1f}% {s.server_cpu / base(s):>5.1f}x "
            f"{100 * extra:>9.2f}% {100 * s.bench_cpu:>8.0f}% {1000 * s.pace_slip_s:>8.0f}ms "
            f"{audit:>11} {s.behind:>6}"
        )
    print(
        "  browser: the viewers offer permessage-deflate as browsers do (the server agreed: "
        f"{next((s.extensions for s in steps if s.deflate), 'n/a')}); plain: they do not.\n"
        "  lag: arrival minus the agent's send time, all viewers and fragments; keyframe: the"
        " keyframe fragments alone. CPU: % of one core over the streaming window; vs 1 and"
        " per viewer ((CPU(N) - CPU(1)) / (N - 1)) against the 1-viewer baseline;"
        " agent late: the agent's worst lateness against its 25 fps schedule (its sends"
        " waited on the server's back-pressure, or this process stalled). fell_behind: the"
        " server's episodes / live:end events read. missed: not received 5 s after the last"
        " send."
    )
    if warnings:
        print(f"  server warnings and errors: {warnings}")
    for deflate in (True, False):
        top = max((s for s in steps if s.deflate == deflate and s.viewers > 1), default=None,
                  key=lambda s: s.viewers)  # fmt: skip
        if top is None or top.server_cpu >= MAX_SERVER_CPU:
            continue  # a saturated core says nothing about the cost of one more viewer
        per_viewer = (top.server_cpu - base(top)) / (top.viewers - 1)
        if per_viewer > 0:
            room = 1 + (MAX_SERVER_CPU - base(top)) / per_viewer
            print(
                f"  {top.name}: {100 * per_viewer:.2f}% of a core per viewer; by CPU alone "
                f"one core would reach {100 * MAX_SERVER_CPU:.0f}% at about {room:.0f} viewers"
            )
    broke = next((s for s in steps if s.deflate and not s.ok), None)
    print(
        "  every browser step kept up"
        if broke is None
        else f"  first browser step that did not keep up: {broke.name}"
    )
    step = next(s for s in steps if s.viewers == target and s.deflate)
    print(
        f"VERDICT: target {'MET' if step.ok else 'NOT MET'}: {target} browser viewers of one "
        f"720p stream on one core: {step.summary()} ({step.server_cpu / base(step):.1f}x "
        "one viewer)"
    )
    plain = next((s for s in steps if s.viewers == target and not s.deflate), None)
    if plain is not None:
        print(f"  the same without permessage-deflate: {plain.summary()}")


def viewer_counts(text: str) -> list[int]:
    return [int(n) for n in text.split(",") if n.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--viewers", type=int, default=50, help="the target's viewer count")
    parser.add_argument("--seconds", type=float, default=20.0, help="streaming per step")
    parser.add_argument("--ramp", default="25,100", help="more viewer counts to try")
    parser.add_argument(
        "--plain",
        default=None,
        help="viewer counts to run again without permessage-deflate "
        "(default: 1, --viewers and the largest count)",
    )
    parser.add_argument("--scene", choices=["object", "noise"], default="object")
    args = parser.parse_args()
    counts = sorted({1, args.viewers, *viewer_counts(args.ramp)})
    plain = (
        viewer_counts(args.plain)
        if args.plain is not None
        else sorted({1, args.viewers, counts[-1]})
    )
    plan = [(n, True) for n in counts] + [(n, False) for n in plain]
    if len(os.sched_getaffinity(0)) < 2:
        sys.exit("needs two cores: one for the server, one for the agent and the viewers")
    configure_logging(json=True, level=logging.WARNING)  # the tap's info lines
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        stream = make_stream(args.scene, args.seconds, Path(tmp))  # on both cores
        sizes = [len(f.data) for f in stream.fragments]
        key_sizes = [len(f.data) for f in stream.fragments if f.keyframe]
        print(
            f"stream: synthetic '{args.scene}' {WIDTH}x{HEIGHT} H.264 {FPS} fps through LiveTap, "
            f"{len(sizes)} fragments ({stream.seconds:.0f} s), {stream.mbit_s:.2f} Mbit/s, "
            f"fragment median {statistics.median(sizes):,.0f} B, keyframe fragments median "
            f"{statistics.median(key_sizes):,.0f} B (prepared in "
            f"{time.perf_counter() - started:.0f} s)"
        )
        os.sched_setaffinity(0, {BENCH_CORE})
        server = Server(Path(tmp))
        with server.running():
            ready = time.perf_counter()
            sessions = max(n for n, _ in plan)
            household = set_up(server, sessions)
            assert server.process is not None
            print(
                f"server: doorwarden serve on core {SERVER_CORE} (pid {server.process.pid}), "
                f"the agent and viewers on core {BENCH_CORE}; {sessions} sessions signed in "
                f"in {time.perf_counter() - ready:.0f} s"
            )
            results = asyncio.run(run_steps(server, household, stream, plan))
            warnings = server.warnings()
    report(results, args.viewers, warnings)
    print(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
