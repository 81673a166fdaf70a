"""`doorwarden log ...` (the server's side) and `doorwarden verify-log` (anyone's: it needs
no more than `pip install doorwarden`)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from doorwarden.cli.extras import needs
from doorwarden.cli.server import load_settings, require_current_schema

if TYPE_CHECKING:
    from doorwarden.formats.checkpoint import NoteKey

log_app = typer.Typer(
    help="The tamper-evident audit log, from the server's shell.", no_args_is_help=True
)


@log_app.command("append")
@needs("server")
def append() -> None:
    """Append the audit events not yet in the log and sign a checkpoint, now. The server
    does this every DOORWARDEN_LOG_INTERVAL_S; use this from cron when that is 0."""
    from doorwarden.audit.tasks import run_append  # noqa: PLC0415
    from doorwarden.db import create_engine, create_sessionmaker  # noqa: PLC0415
    from doorwarden.main import log_signer  # noqa: PLC0415

    settings = load_settings()
    require_current_schema(settings)

    async def _run() -> int:
        engine = create_engine(settings.effective_database_url)
        try:
            return await run_append(create_sessionmaker(engine), log_signer(settings))
        finally:
            await engine.dispose()

    print(f"appended {asyncio.run(_run())} event(s)")


@log_app.command("key")
@needs("server")
def key() -> None:
    """Print the log's verifier key, to publish where verifiers can pin it."""
    from doorwarden.main import log_signer  # noqa: PLC0415

    print(log_signer(load_settings()).key.verifier())


@log_app.command("export")
@needs("server")
def export(
    path: Annotated[Path, typer.Argument(help="The file to write (JSON).")],
) -> None:
    """Write the whole log (the newest checkpoint and every entry) to a file that
    `doorwarden verify-log FILE` checks offline."""
    from doorwarden.audit import log  # noqa: PLC0415
    from doorwarden.db import create_engine, create_sessionmaker  # noqa: PLC0415
    from doorwarden.main import log_signer  # noqa: PLC0415

    settings = load_settings()
    require_current_schema(settings)
    signer = log_signer(settings)

    async def _run() -> dict[str, Any]:
        engine = create_engine(settings.effective_database_url)
        try:
            async with create_sessionmaker(engine)() as db:
                note = (await log.latest_checkpoint(db, signer)).decode()
                size = int(note.split("\n")[1])
                leaves: list[str] = []
                while len(leaves) < size:
                    end = min(size, len(leaves) + log.MAX_ENTRIES_PER_PAGE)
                    leaves += [leaf for _, leaf in await log.entries(db, len(leaves), end)]
                return {"origin": signer.origin, "key": signer.key.verifier(),
                        "checkpoint": note, "entries": leaves}  # fmt: skip
        finally:
            await engine.dispose()

    data = asyncio.run(_run())
    path.write_text(json.dumps(data) + "\n")
    print(f"wrote {len(data['entries'])} entries to {path}")


def verify_log(
    source: Annotated[
        str, typer.Argument(help="An instance's URL, or a file from `doorwarden log export`.")
    ],
    key: Annotated[
        str,
        typer.Option(
            help="The log's verifier key (`doorwarden log key` on the server; publish and pin it)."
        ),
    ],
    state: Annotated[
        Path | None,
        typer.Option(
            help="Saved state: read to check incrementally from the last run, then updated."
        ),
    ] = None,
    origin: Annotated[str | None, typer.Option(help="Require this log origin.")] = None,
    entries: Annotated[
        Path | None,
        typer.Option(
            help="Instead: check a household's own entries, as downloaded from its activity "
            "page (GET /api/v1/households/ID/log-entries): each one unchanged and in the log."
        ),
    ] = None,
) -> None:
    """Check a tamper-evident audit log: its signature, every entry against the signed
    root, and — with --state from an earlier run — that nothing was rolled back, forked,
    edited, deleted or reordered since. Exit status 1 on any failure."""
    from doorwarden.formats.checkpoint import CheckpointError, NoteKey  # noqa: PLC0415
    from doorwarden.verify import log as verifier  # noqa: PLC0415

    try:
        pinned = NoteKey.from_verifier(key)
        saved = verifier.SavedState.load(state) if state is not None and state.exists() else None
        if entries is not None:
            _check_entries(source, pinned, entries, origin)
            return
        if source.startswith(("http://", "https://")):
            with verifier.HttpSource(source) as served:
                report = verifier.verify_log(served, pinned, saved=saved, origin=origin)
        else:
            exported = verifier.FileSource(Path(source))
            report = verifier.verify_log(exported, pinned, saved=saved, origin=origin)
    except (verifier.VerifyFailed, CheckpointError) as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        raise typer.Exit(1) from exc
    except Exception as exc:  # a network failure is no verdict on the log
        print(f"error: could not check {source}: {exc}", file=sys.stderr)
        raise typer.Exit(2) from exc
    cp = report.checkpoint
    print(f"ok: {cp.origin}: {cp.size} entries, root {cp.root.hex()}")
    print(
        f"    checked entries {report.checked_from}..{cp.size - 1}"
        if cp.size > report.checked_from
        else "    no new entries"
    )
    if state is not None:
        state.write_text(report.state.dump())
        print(f"    saved the state in {state}")


def _check_entries(source: str, key: NoteKey, path: Path, origin: str | None) -> None:
    from doorwarden.verify import log as verifier  # noqa: PLC0415

    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise verifier.VerifyFailed(f"{path}: not readable as JSON ({exc})") from exc
    if not isinstance(found, list):
        raise verifier.VerifyFailed(f"{path}: expected the list of entries the server gave")
    if source.startswith(("http://", "https://")):
        with verifier.HttpSource(source) as served:
            report = verifier.verify_entries(served, key, found, origin=origin)
    else:
        report = verifier.verify_entries(
            verifier.FileSource(Path(source)), key, found, origin=origin
        )
    cp = report.checkpoint
    print(f"ok: {report.verified} entries unchanged and in {cp.origin} at size {cp.size}")
    if report.pending:
        print(f"    {report.pending} newer than the checkpoint: check again in a minute")
