"""A configuration stub from what discovery found (`doorwarden agent discover --write
FILE`): one camera per ONVIF device whose profiles were read, its source the main
stream's RTSP URI, its `substream` the sub profile's when it has one (detection runs on
that lighter stream, clips are the main stream's: docs/substreams.md), and an `onvif:`
section for its events with the password referenced by `password_file`, never inlined
there.

The RTSP URL must carry the credentials (an rtsp source has no password_file), so the
stub is written with mode 0600. The text is validated as an AgentConfig (through the
same loader `agent run` uses) before it is written, and an existing file is never
replaced without `force`: the stub is created next to it and linked into place, which
fails if the name is taken, so two writers cannot clobber each other either.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

from doorwarden.agent.config.file import ConfigFileError, load_agent_config
from doorwarden.agent.onvif.device import DeviceReport
from doorwarden.agent.onvif.discovery import Discovered


class StubError(Exception):
    """The stub cannot be written: the file exists, nothing to write, or invalid."""


@dataclass(frozen=True)
class StubCamera:
    name: str
    found: Discovered | None
    report: DeviceReport


def _q(value: str) -> str:
    """A YAML double-quoted scalar (JSON's string syntax is valid YAML)."""
    return json.dumps(value, ensure_ascii=False)


def camera_name(found: Discovered | None, report: DeviceReport, taken: set[str]) -> str:
    """A valid, unique camera name: from the ONVIF name scope, the model, or the host."""
    for candidate in (
        found.name if found else None,
        report.info.model or None,
        found.hardware if found else None,
        report.host,
    ):
        slug = re.sub(r"[^a-z0-9]+", "-", (candidate or "").lower()).strip("-")[:56]
        if slug and slug[0].isalnum():
            break
    else:
        slug = "camera"
    name, n = slug, 2
    while name in taken:
        name, n = f"{slug}-{n}", n + 1
    taken.add(name)
    return name


def with_credentials(uri: str, username: str | None, password: str | None) -> str:
    """The stream URI with user:password@ (percent-encoded), replacing any it had."""
    if not username:
        return uri
    parts = urlsplit(uri)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    auth = quote(username, safe="") + (f":{quote(password, safe='')}" if password else "")
    netloc = f"{auth}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def render(
    cameras: list[StubCamera],
    *,
    username: str | None,
    password: str | None,
    password_file: Path | None,
) -> str:
    """The stub's text (YAML); StubError when no camera has a stream URI to write."""
    if not any(c.report.main is not None for c in cameras):
        raise StubError("no camera with an RTSP stream to write (were its profiles read?)")
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    out = [
        f"# doorwarden agent configuration, written by `doorwarden agent discover` on {when}",
        "# from the ONVIF cameras that answered. Check it: doorwarden agent check-config FILE",
        "# The RTSP URLs carry the camera password (an rtsp source has no password_file):",
        "# keep this file private (it is written readable by its owner only).",
        "spool_dir: spool",
        "state_dir: state",
        "cameras:",
    ]
    for cam in cameras:
        report, main, sub = cam.report, cam.report.main, cam.report.sub
        if main is None or main.uri is None:
            continue
        info = report.info
        out += [
            f"  - name: {cam.name}",
            f"    # {' '.join(filter(None, (info.manufacturer, info.model))) or 'ONVIF camera'}"
            f"{f' (serial {info.serial})' if info.serial else ''}, ONVIF at "
            f"{report.host}:{report.port}",
            "    source:",
            "      kind: rtsp",
            f"      # main stream: {main.describe()}",
            f"      url: {_q(with_credentials(main.uri, username, password))}",
        ]
        if sub is not None and sub.uri is not None and sub.uri != main.uri:
            out += [
                "    substream:                   # detection runs on it, clips are the main"
                " stream's (docs/substreams.md)",
                "      kind: rtsp",
                f"      # sub-stream: {sub.describe()} (lighter, for a small box)",
                f"      url: {_q(with_credentials(sub.uri, username, password))}",
            ]
        out += [
            "    onvif:                       # its events trigger recordings (docs/onvif.md)",
            f"      host: {_q(report.host)}",
            f"      port: {report.port}",
        ]
        if username:
            out.append(f"      username: {_q(username)}")
            if password_file is not None:
                out.append(f"      password_file: {_q(str(password_file))}")
        out += [
            "      events:",
            "        motion: true        # the camera's motion: a clip labelled onvif-motion",
            "        tamper: true        # covered or turned away: a clip labelled tamper",
            "        doorbell: false     # true: its button's presses ring the doorbell",
        ]
    return "\n".join(out) + "\n"


def write_stub(path: Path, text: str, *, force: bool = False) -> None:
    """Validate `text` as an agent configuration and write it to `path` (mode 0600);
    StubError when `path` exists and not `force`, or the text does not validate."""
    if path.suffix.lower() not in (".yaml", ".yml"):
        raise StubError(f"{path}: the stub is YAML: name it .yaml or .yml")
    if path.exists() and not force:
        raise StubError(f"{path} exists: not replaced (use --force to replace it)")
    directory = path.resolve().parent
    fd, tmp_name = tempfile.mkstemp(prefix=".discover-", suffix=".yaml", dir=directory)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:  # mkstemp: mode 0600 already
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            load_agent_config(tmp)
        except ConfigFileError as exc:
            raise StubError(f"the stub does not validate: {exc.detail} ({exc.key})") from exc
        if force:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails if the name was taken meanwhile
            except FileExistsError as exc:
                raise StubError(f"{path} exists: not replaced (use --force)") from exc
    finally:
        tmp.unlink(missing_ok=True)
