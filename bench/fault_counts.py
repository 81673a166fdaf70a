"""Counting every clip from the camera's spool to the server's `verified` row.

Per camera (agent), from outside its code:

* recorded -- sidecars renamed into the plain spool (inotify, fault_rig.Agent.recorded):
  every clip the camera committed, whatever happened to it afterwards;
* on the camera -- plain entries not sealed yet, and committed sealed clips
  (`sealed/*.manifest.json`); of these, the ones the status file lists as held or
  deferred (`upload-status.json`: `held`, `deferred`, or an older agent's `refused`) are
  kept on purpose, the others are still waiting to go;
* evicted -- what the agent deleted undelivered, from its own log (`spool.evicted`), and
  which of those it recorded for the owner (`spool.eviction_recorded` lines and the
  room state `spool-room.json`: what `agent status` shows and the health report sends).

Per device, on the server's database: rows, verified rows, distinct recordings among them
(by the manifest's start time, which one camera never repeats: the same recording sealed
twice under two sequence numbers is a duplicate even though (device, sequence) is
unique), and integrity alerts. An alert is *explained* when it tells what the camera did
and reported: a gap whose every sequence was evicted and reported or is held/deferred on
the camera, or an alert from the camera's health report (a held clip, an eviction, its
disk full) that matches its own log and status; every other alert is *false*.

A camera is counted at a quiet moment: it has no clip waiting, and it committed none
while the server was read, so everything it recorded before is verified, kept on purpose
or evicted; `lost` = recorded - verified - kept on the camera - evicted and reported.
The difference of two tallies is what happened in between (one fault phase).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from bench.fault_rig import Agent
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from doorwarden.clips.models import AlertKind, Clip, ClipStatus, IntegrityAlert
from doorwarden.formats.clip_files import committed

STATUS_FILE = "upload-status.json"  # held, deferred (an older agent: refused)
ROOM_FILE = "spool-room.json"  # disk_full, evictions (the newest 50)
_LIST = re.compile(r"\b(?:sequences|clips)=\[([^\]]*)\]")
_FIELD = re.compile(r"\b(first|last|count)=(\d+|None)\b")
_AT = re.compile(r"\bat=(\S+)")  # an eviction record's start: the same as it grows


@dataclass(frozen=True)
class CameraSide:
    plain: int  # committed plain entries, not sealed yet
    sealed: frozenset[int]  # committed sealed clips on disk
    kept: frozenset[int]  # held or deferred by the agent (listed in its status file)
    evicted_logged: int  # committed clips the agent deleted undelivered (its log)
    evicted_reported: frozenset[int]  # sealed sequences recorded as evicted (room state)
    evicted_reported_unsealed: int  # plain clips recorded as evicted
    disk_full: bool | None  # the room state says so now
    disk_full_logged: bool  # the agent ever logged its disk full (or no longer full)

    @property
    def waiting(self) -> int:
        return self.plain + len(self.sealed - self.kept)


def _json(path: Path) -> dict[str, Any]:
    try:
        body = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def camera_side(agent: Agent) -> CameraSide:
    # Plain first, then sealed: a clip is sealed (manifest committed) before its plain
    # entry is removed, so read in this order it is seen at least once.
    plain = len(list(agent.spool.glob("*.json")))
    sealed_dir = agent.spool / "sealed"
    sealed = [p.sequence for p in committed(sealed_dir)] if sealed_dir.is_dir() else []
    status = _json(agent.state / STATUS_FILE)
    kept: set[int] = set()
    for key in ("held", "deferred", "refused"):
        entries = status.get(key)
        if isinstance(entries, dict):
            kept.update(int(k) for k in entries if str(k).isdigit())
    logged, reported, unsealed, full_logged = read_evictions(agent.log)
    room = _json(agent.state / ROOM_FILE)
    for entry in room.get("evictions") or []:  # the log has them all; this, the newest
        first, last = entry.get("first"), entry.get("last")
        if isinstance(first, int) and isinstance(last, int):
            reported.update(range(first, last + 1))
    disk_full = room.get("disk_full")
    return CameraSide(
        plain=plain,
        sealed=frozenset(sealed),
        kept=frozenset(kept),
        evicted_logged=logged,
        evicted_reported=frozenset(reported),
        evicted_reported_unsealed=unsealed,
        disk_full=disk_full if isinstance(disk_full, bool) else None,
        disk_full_logged=full_logged,
    )


def read_evictions(log: Path) -> tuple[int, set[int], int, bool]:
    """From an agent's log: committed clips it evicted (`spool.evicted`, with the sealed
    `sequences=[...]` or `plain=True`; an older agent's `spool.plain_evicted clips=[...]`),
    the sealed sequences it recorded for the owner (`spool.eviction_recorded first=..
    last=..`), and the plain clips it recorded so (those lines with first=None, less the
    recordings it discarded before their commit, `spool.recording_discarded`, which were
    never recorded clips); and whether it ever logged its disk full (`spool.disk_full`)."""
    if not log.exists():
        return 0, set(), 0, False
    logged, unsealed = 0, 0
    reported: set[int] = set()
    episodes: dict[str, int] = {}  # unsealed eviction records by their `at`
    text = log.read_text(errors="replace")
    for line in text.splitlines():
        if "spool.evicted" in line or "spool.plain_evicted" in line:
            lists = _LIST.findall(line)
            if lists:
                logged += sum(len([i for i in found.split(",") if i.strip()]) for found in lists)
            elif "plain=True" in line:
                logged += 1
        elif "spool.eviction_recorded" in line:
            fields_ = dict(_FIELD.findall(line))
            first, last = fields_.get("first", "None"), fields_.get("last", "None")
            if first != "None" and last != "None":
                reported.update(range(int(first), int(last) + 1))
            else:
                # One episode is one record, logged again as it grows (same `at`, the
                # count so far): its last line holds its whole count.
                at = _AT.search(line)
                episodes[at.group(1) if at else line] = int(fields_.get("count", "0"))
        elif "spool.recording_discarded" in line:
            unsealed -= 1
    unsealed += sum(episodes.values())
    return logged, reported, unsealed, "spool.disk_full" in text or "spool.disk_ok" in text


@dataclass(frozen=True)
class ServerSide:
    rows: int
    verified_sequences: frozenset[int]
    verified_recordings: int  # distinct recording start times among verified rows
    alerts: tuple[tuple[int, str, dict[str, Any]], ...]  # (sequence, kind, extra)


async def server_side(database_url: str, device_ids: Sequence[str]) -> dict[str, ServerSide]:
    engine = create_async_engine(database_url, poolclass=NullPool)
    ids = [uuid.UUID(d) for d in device_ids]
    try:
        async with engine.connect() as conn:
            clips = (
                await conn.execute(
                    select(Clip.device_id, Clip.sequence, Clip.status, Clip.manifest).where(
                        Clip.device_id.in_(ids)
                    )
                )
            ).all()
            alerts = (
                await conn.execute(
                    select(
                        IntegrityAlert.device_id,
                        IntegrityAlert.sequence,
                        IntegrityAlert.kind,
                        IntegrityAlert.extra,
                    ).where(IntegrityAlert.device_id.in_(ids))
                )
            ).all()
    finally:
        await engine.dispose()
    out = {}
    for device in ids:
        mine = [c for c in clips if c.device_id == device]
        verified = [c for c in mine if c.status == ClipStatus.verified]
        recordings = set()
        for clip in verified:
            body = json.loads(clip.manifest)
            facts = body.get("manifest", body)
            recordings.add(facts.get("start_utc"))
        out[str(device)] = ServerSide(
            rows=len(mine),
            verified_sequences=frozenset(c.sequence for c in verified),
            verified_recordings=len(recordings),
            alerts=tuple(
                (a.sequence, str(a.kind), dict(a.extra or {}))
                for a in alerts
                if a.device_id == device
            ),
        )
    return out


@dataclass(frozen=True)
class Tally:
    """Cumulative counts over every camera at one moment."""

    recorded: int = 0
    verified: int = 0  # distinct recordings verified on the server
    rows: int = 0  # clip rows on the server (any status)
    duplicated: int = 0
    kept: int = 0  # held or deferred on the cameras, reported
    waiting: int = 0  # still to be sent (0 at a quiet moment)
    evicted: int = 0  # logged by the agents
    evicted_reported: int = 0
    alerts: int = 0
    false_alerts: int = 0
    explained_alerts: int = 0  # gaps of clips the agent evicted or holds, and reported

    @property
    def lost(self) -> int:
        return self.recorded - self.verified - self.kept - self.waiting - self.evicted_reported

    def __sub__(self, other: Tally) -> Tally:
        return Tally(
            **{f.name: getattr(self, f.name) - getattr(other, f.name) for f in fields(self)}
        )


class Ledger:
    """Tallies for a set of agents and the server's database."""

    def __init__(self, agents: Sequence[Agent], database_url: str) -> None:
        self.agents = list(agents)
        self.database_url = database_url
        # Sequences an agent ever reported as evicted or kept: a gap alert naming only
        # these was the camera's own doing, told to the owner.
        self.reported: dict[str, set[int]] = {a.device_id: set() for a in self.agents}
        self.quiet = True  # the last tally was taken at a quiet moment

    def tally(self, timeout_s: float = 60.0) -> Tally:
        """Wait (up to `timeout_s` in all) for a quiet moment of each camera in turn and
        count it then; a camera that has none in time is counted anyway, its waiting clips
        as such (`quiet` is then False). Each camera has its own moment: twenty cameras
        are seldom all idle at once, and a phase's clips are counted per camera anyway."""
        deadline = time.monotonic() + timeout_s
        totals: dict[str, int] = {f.name: 0 for f in fields(Tally)}
        self.quiet = True
        for agent in self.agents:
            while True:
                before = agent.recorded()
                camera = camera_side(agent)
                servers = asyncio.run(server_side(self.database_url, [agent.device_id]))
                after = agent.recorded()
                quiet = before == after and not camera.waiting
                if quiet or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            self.quiet = self.quiet and quiet
            for name, value in self._count(agent, after, camera, servers[agent.device_id]).items():
                totals[name] += value
        return Tally(**totals)

    def _count(
        self, agent: Agent, recorded: int, camera: CameraSide, server: ServerSide
    ) -> dict[str, int]:
        reported = self.reported[agent.device_id]
        reported |= camera.evicted_reported | camera.kept
        false = explained = 0
        for sequence, kind, extra in server.alerts:
            if _explained(kind, sequence, extra, camera, reported):
                explained += 1
            else:
                false += 1
        return {
            "recorded": recorded,
            "verified": server.verified_recordings,
            "rows": server.rows,
            # The same recording verified under two sequence numbers.
            "duplicated": len(server.verified_sequences) - server.verified_recordings,
            "kept": len(camera.kept & camera.sealed),
            "waiting": camera.waiting,
            "evicted": camera.evicted_logged,
            "evicted_reported": len(camera.evicted_reported) + camera.evicted_reported_unsealed,
            "alerts": len(server.alerts),
            "false_alerts": false,
            "explained_alerts": explained,
        }


def _explained(
    kind: str, sequence: int, extra: dict[str, Any], camera: CameraSide, reported: set[int]
) -> bool:
    """Whether an alert tells the owner what the camera itself did and reported: a gap
    of clips it evicted or keeps, or its own health report (held, evicted, disk full)."""
    if kind == AlertKind.gap:
        gap = range(extra.get("missing_from", sequence), extra.get("missing_to", -1) + 1)
        return len(gap) > 0 and all(s in reported for s in gap)
    if kind == "clip_held":
        return sequence in reported
    if kind == "clips_evicted":
        return camera.evicted_logged > 0
    if kind == "camera_disk_full":
        return camera.disk_full_logged
    return False
