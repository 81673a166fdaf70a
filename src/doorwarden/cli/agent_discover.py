"""`doorwarden agent discover`: ONVIF cameras on the LAN (docs/onvif.md), apart from the
agent's other commands because it needs the ONVIF extra and speaks to no server."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table


def discover(
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, max=60, help="Seconds to wait for answers.")
    ] = 3.0,
    address: Annotated[
        list[str] | None,
        typer.Option(
            "--address",
            help="Probe this camera (IP or IP:PORT) instead of the LAN's multicast group "
            "(a camera on another subnet); repeatable.",
        ),
    ] = None,
    user: Annotated[
        str | None, typer.Option("--user", help="ONVIF user name, to read profiles and URLs.")
    ] = None,
    password_file: Annotated[
        Path | None,
        typer.Option("--password-file", help="File holding that user's password (one line)."),
    ] = None,
    write: Annotated[
        Path | None,
        typer.Option("--write", help="Write a configuration stub (YAML) for the cameras read."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing --write file.")
    ] = False,
) -> None:
    """Find ONVIF cameras (WS-Discovery), print their RTSP URLs and profiles (main and
    sub-stream), and optionally write a configuration stub (docs/onvif.md)."""
    from doorwarden.agent.config.onvif import read_password_file  # noqa: PLC0415

    try:  # lxml and onvif-zeep-async: the ONVIF extra, loaded only for this command
        from doorwarden.agent.onvif import stub  # noqa: PLC0415
        from doorwarden.agent.onvif.discovery import discover as probe  # noqa: PLC0415
        from doorwarden.agent.onvif.survey import survey  # noqa: PLC0415
    except ImportError as exc:
        print(f"error: {exc}: pip install 'doorwarden[agent-ring]'", file=sys.stderr)
        raise typer.Exit(1) from exc

    if (user is None) != (password_file is None) or (write is not None and user is None):
        print("error: --user and --password-file go together (and --write needs them)",
              file=sys.stderr)  # fmt: skip
        raise typer.Exit(2)
    password = None
    if password_file is not None:
        try:
            password = read_password_file(password_file)
        except (OSError, ValueError) as exc:
            print(f"error: cannot read the password: {exc}", file=sys.stderr)
            raise typer.Exit(2) from exc
    try:
        found = probe(timeout, address or None)
    except (OSError, ValueError) as exc:
        print(f"error: cannot send the probe: {exc}", file=sys.stderr)
        raise typer.Exit(1) from exc
    where = ", ".join(address) if address else "the LAN (239.255.255.250:3702)"
    if not found.cameras:
        print(f"no ONVIF camera answered on {where} within {timeout:g} s"
              + (f" ({found.ignored} other repl(ies) ignored)" if found.ignored else ""),
              file=sys.stderr)  # fmt: skip
        raise typer.Exit(1)
    rows = survey(found.cameras, username=user, password=password, timeout_s=max(timeout, 5.0))
    table = Table(title=f"{len(rows)} ONVIF camera(s) on {where}")
    for column in ("camera", "address", "hardware", "profiles (main, sub)"):
        table.add_column(column, overflow="fold")
    urls = []  # printed whole below the table: a URL is what one copies
    for row in rows:
        report = row.report
        name = row.found.name or (report.info.model if report else "") or row.found.endpoint
        main, sub = (report.main, report.sub) if report else (None, None)
        table.add_row(
            name, f"{row.host}:{row.port}" if row.host else "-",
            row.found.hardware or (report.info.model if report else "") or "-",
            "\n".join(
                p.describe() + (" (main)" if p is main else " (sub)" if p is sub else "")
                for p in report.profiles
            ) if report else "-",
        )  # fmt: skip
        urls += [f"{name}: {kind} {p.uri}" for kind, p in (("main", main), ("sub", sub)) if p]
    Console().print(table)
    for line in urls:
        print(line)
    for row in rows:
        if row.error:
            print(f"error: {row.error}", file=sys.stderr)
    if user is None:
        print("profiles and RTSP URLs need the camera's credentials: "
              "--user USER --password-file FILE")  # fmt: skip
    if write is None:
        raise typer.Exit(1 if any(r.error for r in rows) else 0)
    taken: set[str] = set()
    cameras = [
        stub.StubCamera(stub.camera_name(r.found, r.report, taken), r.found, r.report)
        for r in rows
        if r.report is not None and r.report.main is not None
    ]
    try:
        secret_file = password_file.resolve() if password_file else None
        text = stub.render(cameras, username=user, password=password, password_file=secret_file)
        stub.write_stub(write, text, force=force)
    except (stub.StubError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(1) from exc
    print(f"wrote {write} with {len(cameras)} camera(s); check it with: "
          f"doorwarden agent check-config {write}")  # fmt: skip
