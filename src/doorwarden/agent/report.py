"""The agent's configuration and state in words (`doorwarden agent check-config`, `pair`,
`status`). Everything here only reads: the agent may be running while `status` looks at
its spool. Loads no video library, so those commands start quickly.
"""

from __future__ import annotations

from pathlib import Path

from doorwarden.agent.config.models import AgentConfig, CameraConfig, SourceConfig
from doorwarden.agent.delivery.identity import DeviceIdentity, IdentityStore
from doorwarden.agent.delivery.upload_status import UploadStatus
from doorwarden.agent.delivery.uploader import pending_bytes
from doorwarden.agent.recording.room import disk_usage, read_room
from doorwarden.agent.recording.spool import SEALED_DIR, SIDECAR_SUFFIX
from doorwarden.formats.clip_files import committed


def summarise(config: AgentConfig) -> str:
    """The spool, the state and each camera's settings, one line per concern."""
    lines = [
        f"spool: {config.spool_dir}",
        f"state: {config.state_dir}",
        f"{len(config.cameras)} camera(s):",
    ]
    for cam in config.cameras:
        detect = cam.detect.kind.value
        if cam.detect.model_path is not None:
            detect += f" {cam.detect.model_path} ({', '.join(cam.detect.labels)})"
        lines += [
            f"  {cam.name}",
            f"    source:   {_source(cam)}",
            *(
                [f"    detect on: {_describe(cam.substream)} (sub-stream; clips from source)"]
                if cam.substream is not None
                else []
            ),
            f"    decode:   {_decode(cam)}",
            f"    motion:   {cam.motion.analysis_fps:g} fps at {cam.motion.analysis_width} px, "
            f"threshold {cam.motion.threshold}, {len(cam.motion.zones)} zone(s), "
            f"{len(cam.motion.ignore)} ignore area(s)",
            f"    privacy:  {len(cam.privacy_zones)} zone(s)",
            f"    record:   pre {cam.record.pre_roll_s:g} s, post {cam.record.post_roll_s:g} s, "
            f"{cam.record.min_clip_s:g}..{cam.record.max_clip_s:g} s clips",
            f"    detect:   {detect}, alert {cam.detect.alert}",
        ]
    return "\n".join(lines)


def _decode(camera: CameraConfig) -> str:
    """The decode a camera asks for (hardware falls back to software when it fails). Read
    from the configuration only: whether an accelerator opens is known when a stream is
    decoded on it, and the agent logs `capture.hwaccel_fallback` then."""
    accel = camera.decode.hwaccel
    if accel == "off":
        return "software"
    if accel == "auto":
        return "auto: first of vaapi, v4l2m2m, videotoolbox, cuda, qsv that opens, else software"
    where = f" on {camera.decode.device}" if camera.decode.device else ""
    return f"{accel}{where} (software if it cannot be opened or fails)"


def _source(camera: CameraConfig) -> str:
    return _describe(camera.source)


def _describe(src: SourceConfig) -> str:
    if src.kind == "file":
        return f"file {src.path}" + (" (looped)" if src.loop else "")
    if src.kind == "rtsp":
        # The URL usually carries the camera's password; a summary must not print it.
        scheme, _, rest = src.url.partition("://")
        return f"{scheme}://{rest.rsplit('@', 1)[-1]}"
    if src.kind == "v4l2":
        return f"v4l2 {src.device}"
    return f"synthetic {src.scene} {src.width}x{src.height} @ {src.fps:g} fps"


def identity_summary(identity: DeviceIdentity, store: IdentityStore) -> str:
    """The pairing, never its token."""
    plan = identity.plan
    days = f", clips kept {plan.retention_days} days" if plan.retention_days is not None else ""
    return "\n".join(
        [
            f"  server:     {identity.server}",
            f"  device:     {identity.device_id}",
            f"  household:  {identity.household_id}",
            f"  plan:       {plan.kind}{days}",
            f"  mode:       {identity.mode}",
            f"  state:      {store.state_dir} (private: holds the device key and token)",
        ]
    )


def uploads_line(upload: UploadStatus) -> str:
    if upload.stopped is not None:
        stopped = upload.stopped
        return (
            f"STOPPED since {stopped.get('since', '?')}: {stopped.get('message')} "
            f"({stopped.get('code')})"
        )
    line = "ok"
    if upload.retrying is not None:
        retrying = upload.retrying
        line = f"retrying since {retrying.get('since', '?')}: {retrying.get('error', '')}"
    if upload.last_delivered is not None:
        last = upload.last_delivered
        line += f" (last delivered: clip {last.get('sequence')} at {last.get('at')})"
    return line


def sealed_count(spool_dir: Path) -> int:
    """Sealed clips in the spool (committed, not yet delivered)."""
    sealed = spool_dir / SEALED_DIR
    return len(committed(sealed)) if sealed.is_dir() else 0


def backlog(spool_dir: Path, upload: UploadStatus | None, state_dir: Path) -> str:
    """What waits in the spool, read without writing (the agent may be running): the
    backlog, the held and deferred clips, the disk and the recent evictions."""
    held = upload.held if upload is not None else {}
    deferred = upload.deferred if upload is not None else {}
    plain = len(list(spool_dir.glob(f"*{SIDECAR_SUFFIX}"))) if spool_dir.is_dir() else 0
    sealed_dir = spool_dir / SEALED_DIR
    pending = committed(sealed_dir) if sealed_dir.is_dir() else []
    waiting = [p for p in pending if p.sequence not in held and p.sequence not in deferred]
    size = sum(pending_bytes(p) for p in waiting)
    span = f" (clips {waiting[0].sequence}..{waiting[-1].sequence})" if waiting else ""
    lines = [
        f"spool: {spool_dir}",
        f"  not sealed yet:  {plain} clip(s)",
        f"  sealed, waiting: {len(waiting)} clip(s), {size / 1024:.0f} KiB{span}",
    ]
    on_disk = {p.sequence for p in pending}
    for sequence, why in sorted(held.items()):
        if sequence in on_disk:
            lines.append(
                f"  refused, kept:   clip {sequence}: {why.get('message')} ({why.get('code')}); "
                f"held since {why.get('since', '?')}: not offered again until "
                f"`doorwarden agent retry {sequence}`"
            )
    for sequence, why in sorted(deferred.items()):
        if sequence in on_disk:
            lines.append(
                f"  deferred:        clip {sequence}: {why.get('message')} ({why.get('code')}); "
                f"next attempt {why.get('next_attempt', '?')}"
            )
    lines += disk_lines(spool_dir, state_dir)
    return "\n".join(lines)


def disk_lines(spool_dir: Path, state_dir: Path) -> list[str]:
    """The spool's disk and what was evicted from it (recording/room.py's state file)."""
    room = read_room(state_dir)
    lines = []
    try:
        usage = disk_usage(spool_dir if spool_dir.is_dir() else spool_dir.parent)
        full = " -- DISK FULL: the oldest clips are being deleted" if room.get("disk_full") else ""
        lines.append(
            f"  disk:            {_mib(usage.free_bytes)} free of {_mib(usage.total_bytes)}{full}"
        )
    except OSError as exc:
        lines.append(f"  disk:            unknown ({exc})")
    if room.get("discarded"):
        lines.append(f"  lost recordings: {room['discarded']} (no room to write them)")
    evictions = [e for e in room.get("evictions") or [] if isinstance(e, dict)]
    if evictions:
        total = sum(int(e.get("count") or 0) for e in evictions)
        lines.append(
            f"  evicted:         {total} undelivered clip(s) in {len(evictions)} time(s) "
            f"since {evictions[0].get('at')}; the latest:"
        )
    for item in evictions[-10:]:
        first, last, count = item.get("first"), item.get("last"), item.get("count")
        which = (
            f"clips {first}..{last}" if first is not None and first != last
            else f"clip {first}" if first is not None
            else f"{count} unsealed clip(s)"
        )  # fmt: skip
        lines.append(f"    {item.get('at')}: {which} ({item.get('reason')})")
    return lines


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"
