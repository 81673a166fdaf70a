"""A camera records onto a spool whose disk fills (issue 23, item 6): a real tmpfs
(tests/tmpfs.py) of 1 MiB, nearly full before the agent starts and topped up to a few
KiB while it records. The agent is paired with a server that is down, so nothing leaves
the spool but what eviction removes.

Afterwards: the newest clips are kept (the sealed ones are the newest run of sequence
numbers, the unsealed ones newer still), every clip the camera committed is either in
the spool or counted as evicted, recovery finds nothing to repair, and `agent status`
says the disk is full and lists the evictions."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from typer.testing import CliRunner

from doorwarden.agent.app import AgentApp
from doorwarden.agent.config.models import AgentConfig
from doorwarden.agent.delivery.sealer import SealedSpool
from doorwarden.agent.recording.room import read_room
from doorwarden.agent.recording.spool import Spool
from doorwarden.cli.agent import agent_app
from doorwarden.formats.clip_files import committed
from tests.tmpfs import fill, small_tmpfs
from tests.unit.agent.delivery.paired import paired
from tests.unit.agent.samples import make_video

KIB = 1024
DOWN = "http://127.0.0.1:9"  # the discard port: nothing listens, connections are refused


def test_a_full_spool_disk_keeps_the_newest_clips_and_says_so(tmp_path: Path) -> None:
    video = make_video(tmp_path / "door.mp4", seconds=40, gop=10)  # motion all along
    agent = paired(tmp_path / "agent", DOWN)
    with small_tmpfs(tmp_path / "disk", 1024 * KIB) as disk:
        config = AgentConfig.model_validate(
            {
                "spool_dir": str(disk / "spool"),
                "state_dir": str(agent.store.state_dir),
                "spool_min_free_bytes": 64 * KIB,
                "upload": {"backoff_initial_s": 0.05, "backoff_max_s": 0.2, "timeout_s": 2},
                "cameras": [
                    {
                        "name": "door",
                        "source": {"kind": "file", "path": str(video)},
                        "record": {
                            "pre_roll_s": 0,
                            "post_roll_s": 0.5,
                            "min_clip_s": 0.5,
                            "max_clip_s": 1,
                            "cooldown_s": 0,
                        },
                        "detect": {"kind": "none"},
                    }
                ],
            }
        )
        fill(disk, leave_bytes=200 * KIB)
        app = AgentApp.from_config(config, once=True)
        topped_up = threading.Event()

        def top_up() -> None:
            # Another program takes what is left once the camera is under way.
            deadline = time.monotonic() + 30
            while len(app.clips) < 10 and time.monotonic() < deadline:
                time.sleep(0.005)
            fill(disk, leave_bytes=4 * KIB)
            topped_up.set()

        filler = threading.Thread(target=top_up, daemon=True)
        filler.start()
        app.run_until(threading.Event())
        stopped = app.stop()
        filler.join(30)
        assert topped_up.is_set()
        assert not app.failed()

        recorded = [clip.entry.id for clip in app.clips]  # committed to the spool, in order
        assert len(recorded) >= 20
        spool = Spool(disk / "spool")
        plain = [e.id for e in spool.entries()]
        sealed_dir = disk / "spool" / "sealed"
        sealed = committed(sealed_dir)
        sources = [p.source.read_text() for p in sealed]
        kept = sources + plain

        # The newest clips are the ones kept, in recording order, and the newest is there.
        assert kept == recorded[len(recorded) - len(kept) :]
        assert recorded[-1] in kept
        assert 0 < len(kept) < len(recorded)
        sequences = [p.sequence for p in sealed]
        assert sequences == list(range(sequences[0], sequences[0] + len(sequences)))
        assert stopped.waiting == len(kept)

        # Nothing lost without a trace: every committed clip is kept or counted as evicted
        # (recordings that could not be written at all are counted too).
        room = read_room(agent.store.state_dir)
        evicted = sum(e["count"] for e in room["evictions"])
        assert len(kept) + evicted == len(recorded) + room["discarded"]
        assert room["disk_full"] is True
        assert {e["reason"] for e in room["evictions"]} == {"disk_full"}
        sealed_runs = [e for e in room["evictions"] if e["first"] is not None]
        assert sealed_runs and sealed_runs[0]["first"] == 0
        assert max(e["last"] for e in sealed_runs) == sequences[0] - 1

        # A consistent spool: a restart finds nothing to repair.
        assert Spool(disk / "spool").recover().removed == []
        check = SealedSpool(disk / "spool", agent.identity, agent.store.signing_key())
        recovery = check.recover(Spool(disk / "spool"))
        assert recovery.removed == [] and recovery.plain_removed == []
        assert recovery.head.next_sequence == sequences[-1] + 1

        status = CliRunner().invoke(
            agent_app,
            ["status", "--state", str(agent.store.state_dir), "--spool", str(disk / "spool")],
        )
        assert status.exit_code == 0, status.output
        assert "DISK FULL" in status.output
        assert (
            f"evicted:         {evicted} undelivered clip(s) in {len(room['evictions'])} time(s)"
            in status.output
        )
        newest = sealed_runs[-1]
        which = f"clip {newest['last']}" if newest["first"] == newest["last"] else "clips "
        assert f"{newest['at']}: {which}" in status.output
