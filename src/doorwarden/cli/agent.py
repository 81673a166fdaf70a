"""`doorwarden agent ...`: the camera agent's commands. This module parses and prints:
`run` builds the agent with agent/app.py, `status` and `check-config` read and word its
state with agent/report.py."""

from __future__ import annotations

import contextlib
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from doorwarden.agent import report
from doorwarden.agent.config.docs import describe_config
from doorwarden.agent.config.file import ConfigFileError, load_agent_config
from doorwarden.agent.config.models import AgentConfig
from doorwarden.agent.delivery.identity import IdentityError, IdentityStore
from doorwarden.agent.delivery.pairing import PairingError
from doorwarden.agent.delivery.pairing import pair as pair_device
from doorwarden.agent.delivery.upload_status import UploadStatus, request_retry
from doorwarden.agent.settings.report import settings_lines
from doorwarden.cli.agent_discover import discover

if TYPE_CHECKING:
    # Video, numpy and model runtimes load only when `run` runs (agent/app.py): every
    # other `doorwarden` command stays quick to start.
    from doorwarden.agent.app import AgentApp
    from doorwarden.agent.delivery.worker import Delivery
    from doorwarden.agent.recording.recorder import FinishedClip

agent_app = typer.Typer(
    help="The camera agent: turn video streams into event clips, sealed and uploaded.",
    no_args_is_help=True,
    add_completion=False,
)

ConfigPath = Annotated[
    Path,
    typer.Argument(help="Agent configuration file (.yaml, .yml or .toml).", show_default=False),
]


def load_or_exit(path: Path) -> AgentConfig:
    """The configuration, or exit 2 with `FILE:LINE:COL: key: problem` on stderr."""
    try:
        return load_agent_config(path)
    except ConfigFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(2) from exc


@agent_app.callback(invoke_without_command=True)
def agent_main(
    ctx: typer.Context,
    check_config_file: Annotated[
        Path | None,
        typer.Option(
            "--check-config",
            help="Validate this configuration file and exit (same as `check-config FILE`).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """The camera agent: turn video streams into event clips in a spool directory."""
    if check_config_file is not None:
        if ctx.invoked_subcommand is not None:
            print("error: --check-config takes no command after it", file=sys.stderr)
            raise typer.Exit(2)
        check_config(check_config_file)
        raise typer.Exit(0)
    if ctx.invoked_subcommand is None:
        print(ctx.get_help())
        raise typer.Exit(2)


agent_app.command("discover")(discover)


@agent_app.command("check-config")
def check_config(file: ConfigPath) -> None:
    """Validate a configuration file; print its cameras, or each problem with its line."""
    config = load_or_exit(file)
    print(f"{file}: OK")
    print(report.summarise(config))


@agent_app.command("describe-config")
def describe_config_command() -> None:
    """Print the configuration reference (Markdown; docs/agent-config.md is this output)."""
    sys.stdout.write(describe_config())


StateOption = Annotated[
    Path | None,
    typer.Option(
        "--state",
        help="State directory (the device key and pairing); default: the configuration's "
        "state_dir, else ./state.",
        show_default=False,
    ),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="Agent configuration file (for its state_dir and spool_dir)."),
]


def _state_dir(state: Path | None, config: AgentConfig | None) -> Path:
    if state is not None:
        return state
    return config.state_dir if config is not None else Path("state")


@agent_app.command()
def pair(
    server: Annotated[
        str, typer.Option(help="The doorwarden server, e.g. https://doorwarden.example.org.")
    ],
    code: Annotated[
        str, typer.Option(help="The one-time pairing code from the household's Cameras page.")
    ],
    name: Annotated[
        str | None,
        typer.Option(help="The camera's name in the household; default: this host's name."),
    ] = None,
    state: StateOption = None,
    config: ConfigOption = None,
    insecure_http: Annotated[
        bool,
        typer.Option(
            "--insecure-http",
            help="Allow plain http to a server that is not on this machine (the device "
            "token and keys then cross the network unencrypted).",
        ),
    ] = False,
) -> None:
    """Pair this agent with a household: a new device key, registered with a one-time code.

    Pairing again replaces the previous pairing (and its key) once the server accepted
    the new code; sealed clips not yet delivered under the old pairing are then dropped.
    """
    agent = load_or_exit(config) if config is not None else None
    store = IdentityStore(_state_dir(state, agent))
    try:
        previous = store.load()
    except IdentityError:
        previous = None  # unusable: replaced by the new pairing
    device_name = (name or socket.gethostname() or "camera")[:100]
    try:
        identity = pair_device(
            store, server=server, code=code, name=device_name, insecure_http=insecure_http
        )
    except (PairingError, IdentityError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(1) from exc
    if previous is not None:
        print(f"replaced the previous pairing (device {previous.device_id})")
        undelivered = report.sealed_count(agent.spool_dir) if agent is not None else 0
        if undelivered:
            print(
                f"warning: {undelivered} sealed clip(s) of the previous pairing were not "
                "delivered; they cannot be any more and are deleted at the next start",
                file=sys.stderr,
            )
    print(f"paired with {identity.server} as {device_name!r}")
    print(report.identity_summary(identity, store))


@agent_app.command()
def status(
    state: StateOption = None,
    config: ConfigOption = None,
    spool: Annotated[
        Path | None,
        typer.Option(
            "--spool", help="Spool directory; default: the configuration's, else ./spool."
        ),
    ] = None,
) -> None:
    """Show the pairing (never the token), the state of uploads, the spool backlog and
    where each camera's settings come from (the web or the file)."""
    agent = load_or_exit(config) if config is not None else None
    store = IdentityStore(_state_dir(state, agent))
    spool_dir = spool or (agent.spool_dir if agent is not None else Path("spool"))
    try:
        identity = store.load()
    except IdentityError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(1) from exc
    upload: UploadStatus | None = None
    if identity is None:
        print(f"not paired ({store.identity_path} is missing)")
        print("  pair with: doorwarden agent pair --server URL --code CODE")
    else:
        upload = UploadStatus.load(store.state_dir, identity.device_id)
        print("paired")
        print(report.identity_summary(identity, store))
        print(f"  uploads:    {report.uploads_line(upload)}")
    print(report.backlog(spool_dir, upload, store.state_dir))
    # Each camera's web-settable fields: value, and "web (vN)" or "file".
    print("camera settings:")
    print("\n".join(settings_lines(agent, store.state_dir)))


@agent_app.command()
def retry(
    sequences: Annotated[
        list[int] | None,
        typer.Argument(help="Sequence numbers of held or deferred clips.", show_default=False),
    ] = None,
    all_clips: Annotated[bool, typer.Option("--all", help="Every held and deferred clip.")] = False,
    state: StateOption = None,
    config: ConfigOption = None,
) -> None:
    """Offer held or deferred clips to the server again at once.

    A held clip (its data did not match its signature on the server, or its local copy
    was unreadable) is not offered again by itself. Run `retry --all` once after
    upgrading: older servers answered some of their own storage failures as
    hash_mismatch. The running agent takes the request at its next pass; a stopped one
    at its next start.
    """
    if all_clips == bool(sequences):
        print("error: give sequence numbers or --all (not both)", file=sys.stderr)
        raise typer.Exit(2)
    agent = load_or_exit(config) if config is not None else None
    store = IdentityStore(_state_dir(state, agent))
    try:
        identity = store.load()
    except IdentityError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(1) from exc
    if identity is None:
        print(f"error: not paired ({store.identity_path} is missing)", file=sys.stderr)
        raise typer.Exit(1)
    listed = UploadStatus.load(store.state_dir, identity.device_id).refused
    unknown = sorted(set(sequences or []) - set(listed))
    if unknown:
        print(
            f"note: clip(s) {', '.join(map(str, unknown))} are neither held nor deferred now",
            file=sys.stderr,
        )
    try:
        request_retry(store.state_dir, None if all_clips else list(sequences or []))
    except OSError as exc:
        print(f"error: cannot write the request: {exc}", file=sys.stderr)
        raise typer.Exit(1) from exc
    which = "every held and deferred clip" if all_clips else f"clip(s) {sequences}"
    print(
        f"{which} will be offered again at the agent's next pass (or its next start); "
        f"{len(listed)} clip(s) are held or deferred now"
    )


@agent_app.command()
def ring(
    camera: Annotated[str, typer.Argument(help="The camera whose doorbell rings.")],
    state: StateOption = None,
    config: ConfigOption = None,
) -> None:
    """Ring a camera's doorbell, as its button would (scripts, tests, the demo).

    The running agent (found by its socket in the state directory) records a clip
    labelled ring and sends the event to the server at once. When no agent runs, the
    ring is queued in the state directory with its time, and the agent sends it when it
    starts. Presses within the debounce (3 s by default) of the last count once.
    """
    from datetime import UTC, datetime  # noqa: PLC0415 - keeps the module's imports light

    from doorwarden.agent.ring.control import AgentNotRunning, request, socket_path  # noqa: PLC0415
    from doorwarden.agent.ring.queue import CAMERA_RE, EventQueue, RingEvent  # noqa: PLC0415

    agent = load_or_exit(config) if config is not None else None
    cameras = {c.name: c for c in agent.cameras} if agent is not None else {}
    if agent is not None and camera not in cameras:
        print(f"error: no camera {camera!r} in {config} ({', '.join(cameras)})", file=sys.stderr)
        raise typer.Exit(2)
    if not CAMERA_RE.match(camera):
        print(f"error: {camera!r} is not a camera name", file=sys.stderr)
        raise typer.Exit(2)
    state_dir = _state_dir(state, agent)
    try:
        reply = request(state_dir, {"op": "ring", "camera": camera})
    except AgentNotRunning:
        reply = None
    except (OSError, ValueError) as exc:
        print(
            f"error: the agent did not answer on {socket_path(state_dir)}: {exc}", file=sys.stderr
        )
        raise typer.Exit(1) from exc
    if reply is not None:
        if not isinstance(reply, dict) or not reply.get("ok"):
            error = reply.get("error") if isinstance(reply, dict) else reply
            print(f"error: the agent refused the ring: {error}", file=sys.stderr)
            raise typer.Exit(1)
        if reply.get("status") == "debounced":
            print(f"{camera}: debounced (its doorbell rang moments ago; this press counts once)")
            return
        print(
            f"rang {camera}: event {reply.get('id')} at {reply.get('at')}, sent to the server now"
        )
        return
    # No agent: queue it with its real time for the next start.
    queue = EventQueue(state_dir)
    window = cameras[camera].ring.debounce_s if camera in cameras else 3.0
    now = datetime.now(UTC)
    if any(e.camera == camera and (now - e.at).total_seconds() < window for e in queue.pending()):
        print(f"{camera}: debounced (a ring of this camera is queued from moments ago)")
        return
    event = RingEvent.new(camera, "cli", now)
    try:
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        queue.put(event)
    except OSError as exc:
        print(f"error: cannot queue the ring in {queue.directory}: {exc}", file=sys.stderr)
        raise typer.Exit(1) from exc
    print(
        f"no agent is running ({socket_path(state_dir)} does not answer): the ring of {camera} "
        f"at {event.message()['at']} is queued in {queue.directory} and goes to the server, "
        "with that time, when the agent starts"
    )


def _events_table(rows: list[FinishedClip]) -> Table:
    table = Table(title=f"{len(rows)} event(s)")
    for column in ("camera", "start", "end", "duration", "labels"):
        table.add_column(column)
    table.add_column("clip", overflow="fold")  # the path is what one copies: never cut it
    for clip in rows:
        table.add_row(
            str(clip.metadata.get("camera", "")),
            f"{clip.start:.1f} s",
            f"{clip.end:.1f} s",
            f"{clip.duration:.1f} s",
            ", ".join(clip.metadata.get("labels", [])) or "-",
            str(clip.entry.clip),
        )
    return table


@agent_app.command()
def run(
    config: Annotated[
        Path | None, typer.Option(help="Agent configuration file: run its cameras.")
    ] = None,
    source: Annotated[
        Path | None, typer.Option(help="A video file to process with default settings.")
    ] = None,
    once: Annotated[
        bool,
        typer.Option(
            help="Process file and synthetic sources as fast as possible to their end, "
            "deliver the clips (when paired), then exit; a camera that fails is reported, "
            "not restarted."
        ),
    ] = False,
    spool_dir: Annotated[
        Path, typer.Option("--spool", help="Spool directory (with --source).")
    ] = Path("spool"),
    state_dir: Annotated[
        Path, typer.Option("--state", help="State directory of the pairing (with --source).")
    ] = Path("state"),
    deliver_timeout: Annotated[
        float,
        typer.Option(
            help="With --once: how long to keep trying to deliver the clips after the "
            "sources ended (seconds).",
            min=0,
        ),
    ] = 300.0,
) -> None:
    """Run the agent: cameras from --config, or one file from --source; print the events.

    Each camera runs on its own thread; without --once a camera whose source fails is
    restarted with backoff while the others carry on. Once paired (`doorwarden agent
    pair`), finished clips are sealed and uploaded in the background; otherwise they stay
    in the spool. Ctrl-C or SIGTERM stops the agent after finishing the clip in progress.
    """
    if (config is None) == (source is None):
        print("error: give exactly one of --config FILE or --source FILE", file=sys.stderr)
        raise typer.Exit(2)
    agent = load_or_exit(config) if config is not None else None  # a bad file fails fast
    # The video stack loads only now: every other `doorwarden` command stays quick to start.
    from doorwarden.agent.app import AgentApp, BuildError, file_config  # noqa: PLC0415

    if agent is None:
        assert source is not None  # noqa: S101 - checked above; narrows the type
        agent = file_config(source, spool_dir=spool_dir, state_dir=state_dir)
    try:
        app = AgentApp.from_config(agent, once=once)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(1) from exc
    if app.identity is None:
        where = f"--config {config}" if config is not None else f"--state {agent.state_dir}"
        print(
            f"note: this agent is not paired ({IdentityStore(agent.state_dir).identity_path} "
            f"is missing): clips stay in {agent.spool_dir}. Pair it with: doorwarden agent "
            f"pair --server URL --code CODE {where}",
            file=sys.stderr,
        )
    if app.live_off is not None:
        print(f"note: live view is off: {app.live_off}", file=sys.stderr)
    console = Console()
    stop = threading.Event()
    delivered = True
    with _stop_on_sigterm(stop):
        try:
            _drive(app, console, stop)
            if app.delivery is not None:
                delivered = _deliver(app.delivery, stop, console, deliver_timeout)
        finally:
            app.stop()
    console.print(_events_table(app.clips))
    failed = app.failed()
    for status in failed:
        print(f"error: {status.name}: {status.last_error}", file=sys.stderr)
    if failed or not delivered:
        raise typer.Exit(1)


def _deliver(delivery: Delivery, stop: threading.Event, console: Console, timeout_s: float) -> bool:
    """After the cameras: deliver what is pending (unless stopped by a signal); False if
    clips were left undelivered that should have gone."""
    server = delivery.identity.server
    if stop.is_set():
        delivery.stop(timeout_s=10)
        backlog = delivery.backlog()
        console.print(
            f"delivered {delivery.delivered} clip(s) to {server}; "
            f"{backlog.plain + backlog.sealed} wait for the next start"
        )
        return True
    try:
        with console.status(f"delivering clips to {server} ..."):
            drained = delivery.finish(timeout_s, abort=stop)
    except KeyboardInterrupt:
        stop.set()
        drained = False
    backlog = delivery.backlog()
    console.print(f"delivered {delivery.delivered} clip(s) to {server}")
    if delivery.blocked is not None:
        print(f"error: uploads stopped: {delivery.blocked.message}", file=sys.stderr)
    if backlog.held:
        print(
            f"error: {backlog.held} clip(s) held: refused by the server for their own data "
            "(kept; `doorwarden agent status` says why, `doorwarden agent retry` offers "
            "them again)",
            file=sys.stderr,
        )
    if backlog.deferred:
        print(
            f"error: {backlog.deferred} clip(s) deferred: refused for now (kept; offered "
            "again later, `doorwarden agent status` says why)",
            file=sys.stderr,
        )
    if not drained and (backlog.plain or backlog.sealed):
        print(
            f"error: {backlog.plain + backlog.sealed} clip(s) not delivered yet; they stay in "
            "the spool and go at the next start",
            file=sys.stderr,
        )
    return drained and not backlog.refused


@contextlib.contextmanager
def _stop_on_sigterm(stop: threading.Event) -> Iterator[None]:
    """SIGTERM sets `stop` (signals are the main thread's to catch)."""
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set()) if in_main else None
    try:
        yield
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)


def _drive(app: AgentApp, console: Console, stop: threading.Event) -> None:
    """Run the cameras until all are done or `stop` (SIGTERM, Ctrl-C), showing progress."""
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        names = [camera.name for camera in app.config.cameras]
        tasks = {name: progress.add_task(name, total=app.length_s(name)) for name in names}

        def tick() -> None:
            for name, task in tasks.items():
                progress.update(task, completed=app.media_time(name))

        app.run_until(stop, tick)
