"""The agent's uploader and delivery loop against a real server on loopback.

Clips are made the way the agent makes them: plain spool entries (`Spool.commit`, random
bytes standing in for the MP4: the crypto does not care) sealed by the real
`SealedSpool`, then sent over real HTTP. Nothing of ours is mocked; where a test needs
the network to misbehave it puts a real TCP relay in between (`Relay`).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from doorwarden.agent.config.models import UploadConfig
from doorwarden.agent.delivery.identity import DeviceIdentity, IdentityStore
from doorwarden.agent.delivery.sealer import SealedSpool
from doorwarden.agent.delivery.uploader import OutcomeKind, Uploader, UploadStatus, http_client
from doorwarden.agent.delivery.worker import Delivery
from doorwarden.agent.recording.spool import Spool, SpoolEntry
from doorwarden.config import Settings
from doorwarden.crypto.keys import RecipientKey, b64e
from tests.factories import Factory
from tests.functional.devices.test_agent_pairing import (
    LiveHousehold,
    agent_cli,
    live_household,
    paired_state,
)

PART = 16 * 1024


@pytest.fixture
async def home(settings: Settings, factory: Factory) -> AsyncIterator[LiveHousehold]:
    async with live_household(settings, factory) as live:
        yield live


@dataclass
class Agent:
    """An agent's state and spool directories, paired to a household."""

    root: Path
    identity: DeviceIdentity

    @property
    def store(self) -> IdentityStore:
        return IdentityStore(self.root / "state")

    @property
    def spool(self) -> Spool:
        return Spool(self.root / "spool")

    def record(self, n: int = 1, *, size: int = 40_000, thumbnail: bool = True) -> None:
        """n finished clips in the plain spool, as the recorder commits them."""
        for _ in range(n):
            commit_plain(self.spool, size=size, thumbnail=thumbnail)

    def sealed(self) -> SealedSpool:
        sealed = SealedSpool(self.spool.directory, self.identity, self.store.signing_key())
        sealed.recover(self.spool)
        return sealed

    def seal(self, n: int = 1, **kw: Any) -> SealedSpool:
        self.record(n, **kw)
        sealed = self.sealed()
        sealed.seal_pending(self.spool)
        return sealed

    def uploader(self, client: httpx.Client, sealed: SealedSpool, **kw: Any) -> Uploader:
        return Uploader(self.identity, sealed, client, PART, store=self.store, **kw)

    def delivery(self, **kw: Any) -> Delivery:
        upload = UploadConfig(part_bytes=PART, backoff_initial_s=0.05, backoff_max_s=0.4)
        return Delivery(self.spool, self.store, upload, poll_s=0.2, **kw)


def commit_plain(spool: Spool, *, size: int = 40_000, thumbnail: bool = True) -> SpoolEntry:
    tmp = spool.tmp_path()
    tmp.write_bytes(os.urandom(size))
    start = datetime.now(UTC)
    meta = {
        "camera": "front",
        "start_utc": start.isoformat(timespec="milliseconds"),
        "end_utc": (start + timedelta(seconds=2)).isoformat(timespec="milliseconds"),
        "duration_s": 2.0,
        "labels": ["motion"],
        "peak_score": 0.25,
        "codec": "h264",
        "width": 160,
        "height": 96,
    }
    thumb = b"\xff\xd8 thumbnail " + os.urandom(300) if thumbnail else None
    return spool.commit(tmp, thumb, meta)


def paired_agent(home: LiveHousehold, root: Path) -> Agent:
    return Agent(root, paired_state(home, root / "state"))


@pytest.fixture
def agent(home: LiveHousehold, tmp_path: Path) -> Agent:
    return paired_agent(home, tmp_path / "agent")


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with http_client(timeout_s=10) as c:
        yield c


def test_sealed_clips_are_delivered_verified_listed_and_removed(
    home: LiveHousehold, agent: Agent, client: httpx.Client
) -> None:
    agent.record(2, size=70_000)  # several parts each
    agent.record(1, thumbnail=False)
    sealed = agent.seal(0)
    uploader = agent.uploader(client, sealed)
    with capture_logs() as logs:
        outcomes = [uploader.upload_one(paths) for paths in sealed.pending()]
    assert [o.kind for o in outcomes] == [OutcomeKind.delivered] * 3
    assert sealed.pending() == []
    assert not list(sealed.directory.glob("*.dws"))
    listed = home.clips()
    assert sorted(c["sequence"] for c in listed) == [0, 1, 2]
    assert {c["device_id"] for c in listed} == {agent.identity.device_id}
    assert home.alerts() == []
    delivered = [e for e in logs if e["event"] == "upload.delivered"]
    assert [e["sequence"] for e in delivered] == [0, 1, 2]


def test_an_interrupted_upload_resumes_from_the_servers_offset(
    home: LiveHousehold, agent: Agent, client: httpx.Client
) -> None:
    sealed = agent.seal(1, size=100_000)
    [paths] = sealed.pending()
    stop = threading.Event()

    def stop_after_first_part(response: httpx.Response) -> None:
        if response.request.url.path.endswith("/data"):
            stop.set()  # as `agent run` stopping between two requests

    with http_client(timeout_s=10) as first_client:
        first_client.event_hooks["response"] = [stop_after_first_part]
        outcome = agent.uploader(first_client, sealed, stop=stop).upload_one(paths)
    assert outcome.kind is OutcomeKind.interrupted
    assert paths.manifest.exists()  # nothing removed before the server's verified
    assert home.clips() == []

    # The agent restarts: a new uploader learns the offset from the server and goes on.
    sent: list[str] = []
    client.event_hooks["request"] = [
        lambda request: sent.append(request.headers.get("content-range", ""))
    ]
    with capture_logs() as logs:
        outcome = agent.uploader(client, agent.sealed()).upload_one(paths)
    assert outcome.kind is OutcomeKind.delivered
    ranges = [r for r in sent if r]
    assert ranges[0].startswith(f"bytes {PART}-"), ranges
    assert ("upload.resumed", PART) in [(e["event"], e.get("received")) for e in logs]
    assert [c["sequence"] for c in home.clips()] == [0]


def test_a_part_that_landed_late_is_resynchronised(
    home: LiveHousehold, agent: Agent, client: httpx.Client
) -> None:
    """A part of an earlier attempt arrives after the offer told us the offset: the
    server answers 409 wrong_offset with its own offset and the upload follows it."""
    sealed = agent.seal(1, size=60_000)
    [paths] = sealed.pending()
    clip = paths.clip.read_bytes()
    total = len(clip)
    token = {"authorization": f"Bearer {agent.identity.token}"}

    def late_part(response: httpx.Response) -> None:
        request = response.request
        if request.method == "PUT" and request.url.path.endswith("/clips/0"):
            late = httpx.put(
                f"{home.url}/api/v1/device/clips/0/data",
                content=clip[:PART],
                headers={**token, "content-range": f"bytes 0-{PART - 1}/{total}"},
            )
            assert late.status_code == 200, late.text

    client.event_hooks["response"] = [late_part]
    with capture_logs() as logs:
        outcome = agent.uploader(client, sealed).upload_one(paths)
    assert outcome.kind is OutcomeKind.delivered
    [resync] = [e for e in logs if e["event"] == "upload.resync"]
    assert resync["sent_from"] == 0 and resync["server_has"] == PART
    assert [c["sequence"] for c in home.clips()] == [0]


def test_a_clip_already_verified_is_only_removed_locally(
    home: LiveHousehold, agent: Agent, client: httpx.Client
) -> None:
    """The agent died after the server's verified and before its own delete."""
    sealed = agent.seal(1)
    [paths] = sealed.pending()
    kept = {p: p.read_bytes() for p in (paths.manifest, paths.clip, paths.thumbnail)}
    assert agent.uploader(client, sealed).upload_one(paths).kind is OutcomeKind.delivered
    for path, data in kept.items():  # as if the delete never happened
        path.write_bytes(data)
    again = agent.sealed()
    assert agent.uploader(client, again).upload_one(paths).kind is OutcomeKind.delivered
    assert again.pending() == []
    assert len(home.clips()) == 1  # no duplicate


def test_a_clip_deleted_on_the_server_since_is_not_sent_again(
    home: LiveHousehold, agent: Agent, client: httpx.Client
) -> None:
    sealed = agent.seal(1)
    [paths] = sealed.pending()
    kept = {p: p.read_bytes() for p in (paths.manifest, paths.clip, paths.thumbnail)}
    assert agent.uploader(client, sealed).upload_one(paths).kind is OutcomeKind.delivered
    [clip] = home.clips()
    home.delete_clip(clip["id"])
    for path, data in kept.items():
        path.write_bytes(data)
    again = agent.sealed()
    with capture_logs() as logs:
        outcome = agent.uploader(client, again).upload_one(paths)
    assert outcome.kind is OutcomeKind.replayed and outcome.code == "replayed"
    assert again.pending() == []
    assert home.clips() == []
    assert "upload.replayed" in [e["event"] for e in logs]


def test_a_revoked_camera_stops_uploading_keeps_its_clips_and_says_so(
    home: LiveHousehold, agent: Agent, client: httpx.Client
) -> None:
    sealed = agent.seal(2)
    home.revoke(agent.identity.device_id)
    with capture_logs() as logs:
        outcome = agent.uploader(client, sealed).upload_one(sealed.pending()[0])
    assert outcome.kind is OutcomeKind.stopped and outcome.code == "device_revoked"
    message = "This camera was removed from its household; pair it again."
    assert outcome.message == message
    assert {"event": "upload.revoked", "message": message, "log_level": "error"} in logs
    assert len(sealed.pending()) == 2

    # The delivery loop stops at once, seals nothing more, and `agent status` tells why.
    agent.record(1)
    delivery = agent.delivery()
    delivery.start()
    assert not delivery.finish(timeout_s=20)
    assert delivery.blocked is not None and delivery.blocked.code == "device_revoked"
    assert delivery.backlog().plain == 1 and delivery.backlog().sealed == 2
    status = agent_cli(
        "status", "--state", str(agent.store.state_dir), "--spool", str(agent.spool.directory)
    )
    assert status.exit_code == 0, status.output
    assert "STOPPED since" in status.output and message in status.output
    assert home.clips() == []


def test_a_live_only_plan_stops_uploads_and_sealing_with_a_clear_log(
    home: LiveHousehold, agent: Agent, client: httpx.Client
) -> None:
    sealed = agent.seal(1)
    home.set_plan("live_only")
    with capture_logs() as logs:
        uploader = agent.uploader(client, sealed)
        outcome = uploader.upload_one(sealed.pending()[0])
    assert outcome.kind is OutcomeKind.live_only
    [line] = [e for e in logs if e["event"] == "upload.live_only"]
    assert "live view only" in line["message"] and "no longer sealed" in line["effect"]
    saved = agent.store.load()
    assert saved is not None and saved.plan.kind == "live_only"  # refreshed and saved
    assert len(sealed.pending()) == 1  # kept

    agent.record(1)
    with capture_logs() as logs:
        delivery = agent.delivery()
        delivery.start()
        assert not delivery.finish(timeout_s=20)
    assert delivery.blocked is not None and delivery.blocked.kind is OutcomeKind.live_only
    assert delivery.backlog().plain == 1  # not sealed: the plan stores nothing
    assert "delivery.live_only" in [e["event"] for e in logs]
    assert home.clips() == []

    # The owner changes the plan back: the next start delivers everything.
    home.set_plan("recording")
    delivery = agent.delivery()
    delivery.start()
    assert delivery.finish(timeout_s=30)
    assert sorted(c["sequence"] for c in home.clips()) == [0, 1]


class Relay:
    """A loopback TCP port that forwards to the server while `up`, and otherwise hangs
    up on every connection (a proxy whose backend is down)."""

    def __init__(self, target: str) -> None:
        host, port = target.removeprefix("http://").split(":")
        self.target = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.up = threading.Event()
        self.refused = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._done.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            if not self.up.is_set():
                self.refused += 1
                conn.close()
                continue
            upstream = socket.create_connection(self.target)
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=_pump, args=(a, b), daemon=True).start()

    def close(self) -> None:
        self._done.set()
        self._thread.join(5)
        self.listener.close()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for s in (source, sink):
            with suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        source.close()


@contextmanager
def relay_to(url: str) -> Iterator[Relay]:
    relay = Relay(url)
    try:
        yield relay
    finally:
        relay.close()


def test_a_server_that_is_down_is_retried_with_backoff_then_delivered_to(
    home: LiveHousehold, tmp_path: Path
) -> None:
    with relay_to(home.url) as relay:
        identity = paired_state(home, tmp_path / "state")
        # The camera knows the server by the relay's address (down for now).
        via_relay = DeviceIdentity.from_json({**identity.to_json(), "server": relay.url})
        IdentityStore(tmp_path / "state").save(via_relay)
        agent = Agent(tmp_path, via_relay)
        agent.record(3)
        with capture_logs() as logs:
            delivery = agent.delivery()
            delivery.start()
            deadline = time.monotonic() + 20
            while relay.refused < 4 and time.monotonic() < deadline:
                time.sleep(0.05)
            status = UploadStatus.load(agent.store.state_dir, identity.device_id)
            assert status.retrying is not None  # `agent status` says the server is unreachable
            assert home.clips() == []
            relay.up.set()
            assert delivery.finish(timeout_s=30)
    retries = [e for e in logs if e["event"] == "upload.retry"]
    assert len(retries) >= 3 and {e["sequence"] for e in retries} == {0}  # the same clip
    assert sorted(c["sequence"] for c in home.clips()) == [0, 1, 2]
    assert delivery.backlog().sealed == 0 and delivery.delivered == 3
    assert home.alerts() == []
    status = UploadStatus.load(agent.store.state_dir, identity.device_id)
    assert status.retrying is None and status.last_delivered is not None


def test_a_refused_clip_is_kept_and_the_next_one_goes(home: LiveHousehold, agent: Agent) -> None:
    sealed = agent.seal(2)
    first = sealed.pending()[0]
    data = bytearray(first.clip.read_bytes())
    data[len(data) // 2] ^= 0x01  # bit rot on the camera's card
    first.clip.write_bytes(bytes(data))
    with capture_logs() as logs:
        delivery = agent.delivery()
        delivery.start()
        assert delivery.finish(timeout_s=30)
    [refused] = [e for e in logs if e["event"] == "upload.refused"]
    assert refused["sequence"] == 0 and refused["status"] == 422
    assert refused["code"] in ("hash_mismatch", "chunk_tampered")
    assert [c["sequence"] for c in home.clips()] == [1]
    assert first.manifest.exists() and first.clip.read_bytes() == bytes(data)  # kept
    status = agent_cli(
        "status", "--state", str(agent.store.state_dir), "--spool", str(agent.spool.directory)
    )
    assert "refused, kept:   clip 0" in status.output and refused["code"] in status.output
    # Held: not offered again by itself, so no second alert of the data for the owner,
    # who is told by the camera's report that it holds clip 0 back (and why).
    again = agent.delivery()
    again.start()
    assert again.finish(timeout_s=10)
    assert sorted((a["kind"], a["sequence"]) for a in home.alerts()) == sorted(
        [("clip_held", 0), (refused["code"], 0)]
    )


def test_a_fork_stops_uploads_and_keeps_the_evidence(
    home: LiveHousehold, agent: Agent, client: httpx.Client, tmp_path: Path
) -> None:
    """Two agents with one identity (a copied state directory) seal different clips
    under the same sequence number: the second is a fork, and uploading stops."""
    clone = Agent(tmp_path / "clone", agent.identity)
    clone.store.state_dir.mkdir(parents=True, mode=0o700)
    for name in ("device.key", "device.json"):
        (clone.store.state_dir / name).write_bytes((agent.store.state_dir / name).read_bytes())
        (clone.store.state_dir / name).chmod(0o600)
    ours = agent.seal(1)
    theirs = clone.seal(2)
    assert agent.uploader(client, ours).upload_one(ours.pending()[0]).kind is OutcomeKind.delivered
    with capture_logs() as logs:
        outcome = clone.uploader(client, theirs).upload_one(theirs.pending()[0])
    assert outcome.kind is OutcomeKind.stopped and outcome.code == "chain_fork"
    [line] = [e for e in logs if e["event"] == "upload.chain_refused"]
    assert "another agent" in line["hint"]
    assert len(theirs.pending()) == 2
    assert [a["kind"] for a in home.alerts()] == ["fork"]


def test_run_once_delivers_the_clips_of_a_synthetic_scene(
    home: LiveHousehold, tmp_path: Path
) -> None:
    identity = paired_state(home, tmp_path / "camstate")
    config = tmp_path / "agent.yaml"
    config.write_text(
        "spool_dir: spool\nstate_dir: camstate\n"
        "upload: {part_bytes: 8192}\n"
        "cameras:\n  - name: synth\n"
        "    source: {kind: synthetic, scene: object, duration_s: 7, enter_at_s: 1,"
        " width: 160, height: 96}\n"
        "    motion: {analysis_width: 160}\n"
        "    record: {pre_roll_s: 0, post_roll_s: 0.5, min_clip_s: 0.5, max_clip_s: 2,"
        " cooldown_s: 0}\n"
        "    detect: {kind: none}\n"
    )
    result = agent_cli("run", "--config", str(config), "--once")
    assert result.exit_code == 0, result.output
    events = int(result.output.split(" event(s)")[0].rsplit(maxsplit=1)[-1])
    assert events >= 2
    assert f"delivered {events} clip(s) to {home.url}" in result.output
    clips = home.clips()
    assert sorted(c["sequence"] for c in clips) == list(range(events))
    assert {c["device_id"] for c in clips} == {identity.device_id}
    assert all("motion" in c["labels"] for c in clips)
    assert home.alerts() == []
    assert not list((tmp_path / "spool").glob("*.json"))
    assert not list((tmp_path / "spool" / "sealed").glob("*.manifest.json"))
    chain = json.loads((tmp_path / "spool" / "sealed" / "chain.json").read_text())
    assert chain["next_sequence"] == events


def test_run_without_a_pairing_keeps_the_clips_and_says_how_to_pair(tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text(
        "spool_dir: spool\ncameras:\n  - name: synth\n"
        "    source: {kind: synthetic, scene: object, duration_s: 4, enter_at_s: 1,"
        " width: 160, height: 96}\n"
        "    record: {pre_roll_s: 0, post_roll_s: 0.5, min_clip_s: 0.5, cooldown_s: 0}\n"
        "    detect: {kind: none}\n"
    )
    result = agent_cli("run", "--config", str(config), "--once")
    assert result.exit_code == 0, result.output
    assert result.output.count("not paired") == 1
    assert "doorwarden agent pair --server URL --code CODE" in result.output
    assert list((tmp_path / "spool").glob("*.json"))
    assert not (tmp_path / "spool" / "sealed").exists()


def test_a_full_spool_evicts_the_oldest_with_a_warning_and_the_server_sees_the_gap(
    home: LiveHousehold, tmp_path: Path
) -> None:
    with relay_to(home.url) as relay:
        identity = paired_state(home, tmp_path / "state")
        via_relay = DeviceIdentity.from_json({**identity.to_json(), "server": relay.url})
        IdentityStore(tmp_path / "state").save(via_relay)
        agent = Agent(tmp_path, via_relay)
        agent.record(4, size=400_000)  # 1.6 MB sealed, over a 1 MiB limit
        upload = UploadConfig(
            max_spool_bytes=1024 * 1024, part_bytes=256 * 1024, backoff_initial_s=0.05,
            backoff_max_s=0.2,
        )  # fmt: skip
        with capture_logs() as logs:
            delivery = Delivery(agent.spool, agent.store, upload, poll_s=0.2)
            delivery.start()
            deadline = time.monotonic() + 20
            while relay.refused < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            relay.up.set()
            assert delivery.finish(timeout_s=30)
    [evicted] = [e for e in logs if e["event"] == "spool.evicted"]
    assert evicted["log_level"] == "warning" and evicted["sequences"] == [0, 1]
    assert sorted(c["sequence"] for c in home.clips()) == [2, 3]
    # The owner hears it from both sides: the camera reports what it evicted, and the
    # server sees the gap in the chain.
    assert sorted((a["kind"], a["sequence"]) for a in home.alerts()) == [
        ("clips_evicted", 0),
        ("gap", 2),
    ]


def test_sigterm_stops_a_paired_agent_cleanly_and_the_next_run_resumes(
    home: LiveHousehold, tmp_path: Path
) -> None:
    paired_state(home, tmp_path / "state")
    camera = (
        "spool_dir: spool\nstate_dir: state\n"
        "cameras:\n  - name: door\n"
        "    source: {{kind: synthetic, scene: object, enter_at_s: 0, duration_s: {duration},"
        " width: 160, height: 96, pace: {pace}}}\n"
        "    motion: {{analysis_width: 160}}\n"
        "    record: {{pre_roll_s: 0, post_roll_s: 0.3, min_clip_s: 0.3, max_clip_s: 1,"
        " cooldown_s: 0}}\n"
        "    detect: {{kind: none}}\n"
    )
    live = tmp_path / "live.yaml"
    live.write_text(camera.format(duration=600, pace="true"))
    agent = subprocess.Popen(
        [sys.executable, "-m", "doorwarden", "agent", "run", "--config", str(live)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not home.clips():
            assert agent.poll() is None, agent.communicate()[0]
            assert time.monotonic() < deadline, "no clip delivered within 60 s"
            time.sleep(0.1)
        agent.send_signal(signal.SIGTERM)
        output, _ = agent.communicate(timeout=60)
    finally:
        agent.kill()
    assert agent.returncode == 0, output
    assert "delivered" in output and "wait for the next start" in output
    # Whatever was left (the clip in progress, flushed at the stop) goes with the next run.
    final = tmp_path / "final.yaml"
    final.write_text(camera.format(duration=1, pace="false"))
    result = agent_cli("run", "--config", str(final), "--once")
    assert result.exit_code == 0, result.output
    sequences = sorted(c["sequence"] for c in home.clips())
    assert sequences == list(range(len(sequences))) and len(sequences) >= 2
    assert home.alerts() == []
    assert not list((tmp_path / "spool" / "sealed").glob("*.manifest.json"))


def test_the_heartbeat_tells_the_camera_about_end_to_end_mode_before_its_next_clip(
    home: LiveHousehold, agent: Agent
) -> None:
    member = RecipientKey.generate()
    registered = home.owner.put("/api/v1/account/e2e-key", json={"public_key": b64e(member.public)})
    assert registered.status_code == 200, registered.text
    delivery = agent.delivery(heartbeat_s=0.2)
    delivery.start()
    try:
        switched = home.owner.put(f"/api/v1/households/{home.id}/encryption", json={"mode": "e2e"})
        assert switched.status_code == 200, switched.text
        deadline = time.monotonic() + 20
        while agent.store.load().mode != "e2e":  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the camera never learnt the new mode"
            time.sleep(0.05)
        agent.record(1)
        delivery.notify()
        assert delivery.finish(timeout_s=30)
    finally:
        delivery.stop(timeout_s=10)
    [clip] = home.clips()
    assert clip["sequence"] == 0
    # The server stored it but cannot show it: it was wrapped only to the member's key.
    video = home.owner.get(f"/api/v1/households/{home.id}/clips/{clip['id']}/video")
    assert video.status_code == 409 and video.json()["error"]["code"] == "end_to_end"
    devices = home.devices()
    assert devices[0]["last_seen_at"] is not None
