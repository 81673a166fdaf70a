"""The sealed spool: real files, real crypto, real process deaths.

Plain entries are made through the real Spool API from random bytes (the crypto does not
care what an MP4 holds); sealed clips are checked the way the server will check them:
signature with the device's public key, the hash chain, and decryption with the
household key back to the original bytes.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from doorwarden.agent.delivery.identity import DeviceIdentity, IdentityStore, Plan
from doorwarden.agent.delivery.sealer import CHAIN_FILE, CRASH_ENV, CRASH_STEPS, SealedSpool
from doorwarden.agent.recording.spool import Spool
from doorwarden.crypto.keys import RecipientKey, SigningKey, key_id
from doorwarden.crypto.manifest import GENESIS, Manifest, check_chain
from doorwarden.crypto.seal import open_clip, open_thumbnail
from doorwarden.formats.clip_files import SealedPaths, committed, read_manifest

# The agent as it starts: load the identity, recover, seal. The crash tests run it in a
# child process that the test hook (DOORWARDEN_TEST_CRASH_AT) kills with SIGKILL.
AGENT = """
import sys
from pathlib import Path
from doorwarden.agent.delivery.identity import IdentityStore
from doorwarden.agent.delivery.sealer import SealedSpool
from doorwarden.agent.recording.spool import Spool
store = IdentityStore(Path(sys.argv[1]))
spool = Spool(Path(sys.argv[2]))
sealed = SealedSpool(Path(sys.argv[2]), store.load(), store.signing_key())
sealed.recover(spool)
sealed.seal_pending(spool)
"""


@dataclass
class Rig:
    state: Path
    spool_dir: Path
    household: RecipientKey
    store: IdentityStore
    identity: DeviceIdentity

    @property
    def spool(self) -> Spool:
        return Spool(self.spool_dir)

    @property
    def key(self) -> SigningKey:
        return self.store.signing_key()

    def sealed(self, **kwargs: Any) -> SealedSpool:
        sealed = SealedSpool(self.spool_dir, self.identity, self.key, **kwargs)
        sealed.recover(self.spool)
        return sealed

    def run_agent(self, crash_at: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", AGENT, str(self.state), str(self.spool_dir)],
            env={**os.environ, CRASH_ENV: crash_at},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    return new_rig(tmp_path)


def new_rig(tmp_path: Path) -> Rig:
    household = RecipientKey.generate()
    store = IdentityStore(tmp_path / "state")
    store.signing_key()
    identity = DeviceIdentity(
        server="https://doorwarden.example",
        device_id="dev-front-door",
        household_id="hh-1",
        token="dwd_secret",
        mode="standard",
        recipients=[(key_id(household.public), household.public)],
        plan=Plan("recording", 30),
    )
    store.save(identity)
    return Rig(tmp_path / "state", tmp_path / "spool", household, store, identity)


def add_clips(
    spool: Spool, sizes: list[int], *, thumbs: bool = True, data: bytes | None = None
) -> list[str]:
    """Commit plain entries like the recorder's, of random bytes (or of `data`); the
    SHA-256 of each clip's bytes."""
    digests = []
    start = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    for n, size in enumerate(sizes):
        clip = os.urandom(size) if data is None else data
        path = spool.tmp_path()
        path.write_bytes(clip)
        begin = start + timedelta(minutes=n)
        spool.commit(
            path,
            b"\xff\xd8jpeg %d\xff\xd9" % n if thumbs and n % 2 == 0 else None,
            {
                "camera": "front-door",
                "start_utc": begin.isoformat(timespec="milliseconds"),
                "end_utc": (begin + timedelta(seconds=12.3456)).isoformat(timespec="milliseconds"),
                "duration_s": 12.3456,
                "labels": ["motion", "person"],
                "peak_score": 0.0421,
                "codec": "h264",
                "width": 768,
                "height": 576,
                "sha256": hashlib.sha256(clip).hexdigest(),
            },
        )
        digests.append(hashlib.sha256(clip).hexdigest())
    return digests


@dataclass
class Opened:
    sequence: int
    manifest: Manifest
    sha256: str
    thumbnail: bytes | None


def open_all(rig: Rig, public: bytes | None = None) -> list[Opened]:
    """Every committed sealed clip, verified and decrypted as the household would."""
    public = public or rig.key.public
    out = []
    for paths in committed(rig.spool_dir / "sealed"):
        signed = read_manifest(paths.manifest)
        manifest = signed.verify(public)
        assert manifest.sequence == paths.sequence
        digest = hashlib.sha256()
        with paths.clip.open("rb") as f:
            for chunk in open_clip(signed, public, iter(lambda: f.read(65536), b""), rig.household):
                digest.update(chunk)
        thumb = None
        if paths.thumbnail.exists():
            thumb = open_thumbnail(signed, public, paths.thumbnail.read_bytes(), rig.household)
        out.append(Opened(paths.sequence, manifest, digest.hexdigest(), thumb))
    return out


def sealed_names(rig: Rig) -> set[str]:
    return {p.name for p in (rig.spool_dir / "sealed").iterdir()}


def layout(sequences: list[int], thumbs: list[int]) -> set[str]:
    names = {CHAIN_FILE}
    for seq in sequences:
        names |= {f"{seq:012d}.manifest.json", f"{seq:012d}.clip.dws", f"{seq:012d}.source"}
        if seq in thumbs:
            names.add(f"{seq:012d}.thumb.dws")
    return names


def chain_json(rig: Rig) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((rig.spool_dir / "sealed" / CHAIN_FILE).read_text())
    return body


def test_seal_three_clips(rig: Rig) -> None:
    spool = rig.spool
    # 2.5 MiB: several 1 MiB reads and several 256 KiB chunks; 0 bytes: the edge case.
    originals = add_clips(spool, [2_621_440 + 7, 0, 4096])
    ids = [e.id for e in spool.entries()]

    assert rig.sealed().seal_pending(spool) == [0, 1, 2]

    opened = open_all(rig)
    assert [o.sha256 for o in opened] == originals
    assert [o.thumbnail for o in opened] == [
        b"\xff\xd8jpeg 0\xff\xd9",
        None,
        b"\xff\xd8jpeg 2\xff\xd9",
    ]
    assert check_chain([o.manifest for o in opened], from_start=True) == []
    first = opened[0].manifest
    assert (first.device, first.previous, first.mode) == ("dev-front-door", GENESIS, "standard")
    assert (first.duration_ms, first.motion_score, first.labels) == (
        12346,
        42,
        ("motion", "person"),
    )
    assert (first.codec, first.width, first.height) == ("h264", 768, 576)
    assert first.start_utc == "2024-05-01T12:00:00.000+00:00"
    assert first.size == 2_621_447

    assert spool.entries() == []
    assert sealed_names(rig) == layout([0, 1, 2], thumbs=[0, 2])
    sources = [SealedPaths(rig.spool_dir / "sealed", n).source.read_text() for n in range(3)]
    assert sources == ids
    assert chain_json(rig) == {
        "device": "dev-front-door",
        "next_sequence": 3,
        "previous": opened[2].manifest.digest,
    }
    assert rig.sealed().seal_pending(spool) == []  # nothing twice


def test_end_to_end_mode_wraps_to_every_member(rig: Rig) -> None:
    other = RecipientKey.generate()
    rig.identity = replace(
        rig.identity,
        mode="e2e",
        recipients=[*rig.identity.recipients, (key_id(other.public), other.public)],
    )
    originals = add_clips(rig.spool, [1000])
    rig.sealed().seal_pending(rig.spool)
    assert [o.sha256 for o in open_all(rig)] == originals
    assert open_all(rig)[0].manifest.mode == "e2e"
    rig.household = other
    assert [o.sha256 for o in open_all(rig)] == originals


@pytest.mark.parametrize("occurrence", [1, 2])
@pytest.mark.parametrize("step", CRASH_STEPS)
def test_a_crash_at_any_step_neither_loses_nor_duplicates(
    rig: Rig, step: str, occurrence: int
) -> None:
    originals = add_clips(rig.spool, [300_000, 5000, 70_000])
    ids = [e.id for e in rig.spool.entries()]

    died = rig.run_agent(f"{step}@{occurrence}")
    assert died.returncode == -signal.SIGKILL, died.stderr  # the hook fired

    # Which clip it died on (only clips 0 and 2 have thumbnails), and whether committed.
    clip = [0, 2][occurrence - 1] if step.startswith("thumb") else occurrence - 1
    after_commit = step in ("manifest", "chain", "plain_removed")
    sealed = SealedSpool(rig.spool_dir, rig.identity, rig.key)
    recovery = sealed.recover(rig.spool)
    assert recovery.head.next_sequence == clip + after_commit
    assert bool(recovery.removed) == (not after_commit)  # debris exactly when uncommitted
    if step in ("manifest", "chain"):  # committed, the plain entry not yet removed
        assert recovery.plain_removed == [ids[clip]]
    else:
        assert recovery.plain_removed == []

    sealed.seal_pending(rig.spool)
    opened = open_all(rig)
    assert sorted(o.sha256 for o in opened) == sorted(originals)  # each exactly once
    assert [o.sha256 for o in opened] == originals  # and in recording order
    assert [o.sequence for o in opened] == [0, 1, 2]
    assert check_chain([o.manifest for o in opened], from_start=True) == []
    assert rig.spool.entries() == []
    assert sealed_names(rig) == layout([0, 1, 2], thumbs=[0, 2])
    assert chain_json(rig)["next_sequence"] == 3


def test_crashing_again_and_again_still_seals_each_clip_once(rig: Rig) -> None:
    """Every restart recovers and dies at the next step; the last one finishes."""
    originals = add_clips(rig.spool, [40_000, 50_000, 60_000])
    for step in CRASH_STEPS:
        assert rig.run_agent(step).returncode == -signal.SIGKILL
    assert rig.run_agent("").returncode == 0
    opened = open_all(rig)
    assert [o.sha256 for o in opened] == originals
    assert check_chain([o.manifest for o in opened], from_start=True) == []


def test_the_crash_hook_is_inert_unless_set(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CRASH_ENV, raising=False)
    add_clips(rig.spool, [100])
    assert rig.sealed().seal_pending(rig.spool) == [0]
    monkeypatch.setenv(CRASH_ENV, "manifset")
    with pytest.raises(ValueError, match=CRASH_ENV):
        SealedSpool(rig.spool_dir, rig.identity, rig.key)


def test_the_chain_never_goes_back_after_uploads(rig: Rig) -> None:
    add_clips(rig.spool, [1000, 2000])
    sealed = rig.sealed()
    sealed.seal_pending(rig.spool)
    uploaded = [o.manifest for o in open_all(rig)]
    for paths in sealed.pending():
        sealed.remove(paths.sequence)  # the server verified them
    assert sealed_names(rig) == {CHAIN_FILE}

    add_clips(rig.spool, [3000])
    restarted = rig.sealed()  # a restart with nothing sealed left on disk
    assert restarted.seal_pending(rig.spool) == [2]
    later = open_all(rig)[0].manifest
    assert later.previous == uploaded[1].digest
    assert check_chain([*uploaded, later], from_start=True) == []


def test_eviction_drops_the_oldest_and_says_so(rig: Rig) -> None:
    add_clips(rig.spool, [100_000, 100_000, 100_000, 100_000])
    sealed = rig.sealed(max_bytes=250_000)
    sealed.seal_pending(rig.spool)
    with capture_logs() as logs:
        assert sealed.enforce_limit() == [0, 1]
    assert [p.sequence for p in sealed.pending()] == [2, 3]
    assert [(e["event"], e["log_level"], e["sequences"]) for e in logs] == [
        ("spool.evicted", "warning", [0, 1])
    ]
    assert sealed.enforce_limit() == []
    assert chain_json(rig)["next_sequence"] == 4
    assert rig.sealed().seal_pending(rig.spool) == []
    add_clips(rig.spool, [10])
    assert rig.sealed().seal_pending(rig.spool) == [4]


def test_pairing_again_starts_a_new_chain(rig: Rig) -> None:
    add_clips(rig.spool, [1000, 2000])
    rig.sealed().seal_pending(rig.spool)
    old_public = rig.key.public

    rig.store.forget()  # pairing again: a new key first (its public half goes to the server)
    assert rig.key.public != old_public
    rig.identity = replace(rig.identity, device_id="dev-front-door-2", token="dwd_new")
    rig.store.save(rig.identity)

    add_clips(rig.spool, [3000])
    with capture_logs() as logs:
        sealed = rig.sealed()
    assert ("spool.discarded", [0, 1]) in [(e["event"], e.get("sequences")) for e in logs]
    assert sealed.seal_pending(rig.spool) == [0]
    opened = open_all(rig)
    assert len(opened) == 1
    assert (opened[0].manifest.device, opened[0].manifest.previous) == ("dev-front-door-2", GENESIS)
    assert chain_json(rig)["device"] == "dev-front-door-2"
    assert sealed_names(rig) == layout([0], thumbs=[0])


def test_a_full_disk_leaves_the_clip_waiting(rig: Rig) -> None:
    """ENOSPC stand-in: RLIMIT_FSIZE makes a write past the limit fail with EFBIG (an
    OSError like ENOSPC, raised by the same write calls), without needing the privileges
    to mount a tiny file system. SIGXFSZ is ignored so the write fails instead of the
    process being killed."""
    originals = add_clips(rig.spool, [20_000, 400_000])
    script = AGENT.replace("sealed.seal_pending(spool)", "") + (
        "import json, resource, signal\n"
        "from structlog.testing import capture_logs\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, resource.RLIM_INFINITY))\n"
        "with capture_logs() as logs:\n"
        "    try:\n"
        "        sealed.seal_pending(spool)\n"
        "    except OSError as exc:\n"
        "        print(json.dumps({'errno': exc.errno, 'logs': logs}, default=str))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(rig.state), str(rig.spool_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    report = json.loads(result.stdout)
    assert report["errno"] == errno.EFBIG
    assert [(e["event"], e["sequence"]) for e in report["logs"]] == [("spool.seal_failed", 1)]

    assert len(rig.spool.entries()) == 1  # the big one waits in the plain spool
    assert [o.sha256 for o in open_all(rig)] == originals[:1]
    assert sealed_names(rig) == layout([0], thumbs=[0])  # no half-sealed files
    assert chain_json(rig)["next_sequence"] == 1

    assert rig.sealed().seal_pending(rig.spool) == [1]  # space again: it goes through
    opened = open_all(rig)
    assert [o.sha256 for o in opened] == originals
    assert check_chain([o.manifest for o in opened], from_start=True) == []


def test_unusable_metadata_is_left_for_a_person(rig: Rig) -> None:
    spool = rig.spool
    path = spool.tmp_path()
    path.write_bytes(b"x" * 10)
    broken = spool.commit(path, None, {"duration_s": float("nan")})
    originals = add_clips(spool, [1000])
    with capture_logs() as logs:
        assert rig.sealed().seal_pending(spool) == [0]
    assert [o.sha256 for o in open_all(rig)] == originals
    assert [e.id for e in spool.entries()] == [broken.id]
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["spool.seal_invalid"]


def test_nothing_runs_before_recover(rig: Rig) -> None:
    sealed = SealedSpool(rig.spool_dir, rig.identity, rig.key)
    assert sealed.pending() == []
    with pytest.raises(RuntimeError, match="recover"):
        sealed.seal_pending(rig.spool)
    with pytest.raises(RuntimeError, match="recover"):
        sealed.remove(0)


def test_plain_spool_recovery_keeps_the_sealed_spool(rig: Rig) -> None:
    add_clips(rig.spool, [1000])
    rig.sealed().seal_pending(rig.spool)
    rig.spool.recover()
    assert len(committed(rig.spool_dir / "sealed")) == 1
