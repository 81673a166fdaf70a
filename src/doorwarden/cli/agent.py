"""`doorwarden agent ...`: the camera agent's commands."""

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

from doorwarden.agent.config.docs import describe_config
from doorwarden.agent.config.file import ConfigFileError, load_agent_config
from doorwarden.agent.config.models import AgentConfig, CameraConfig, FileSource
from doorwarden.agent.delivery.identity import DeviceIdentity, IdentityError, IdentityStore
from doorwarden.agent.delivery.pairing import PairingError
from doorwarden.agent.delivery.pairing import pair as pair_device
from doorwarden.agent.delivery.uploader import UploadStatus, pending_bytes
from doorwarden.agent.recording.spool import SEALED_DIR, SIDECAR_SUFFIX, Spool
from doorwarden.formats.clip_files import committed

if TYPE_CHECKING:
    # Video, numpy and model runtimes load only when `run` runs: every other
    # `doorwarden` command stays quick to start.
    from doorwarden.agent.cameras import CameraRunner, Handler
    from doorwarden.agent.capture.media import Sample
    from doorwarden.agent.capture.sources import VideoSource
    from doorwarden.agent.delivery.worker import Delivery
    from doorwarden.agent.live.link import LiveLink
    from doorwarden.agent.pipeline import CameraJob
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
        config = load_agent_config(path)
    except ConfigFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(2) from exc
    # Like spool_dir, a relative state_dir is relative to the file, not to the shell.
    state = config.state_dir.expanduser()
    if not state.is_absolute():
        config = config.model_copy(update={"state_dir": path.resolve().parent / state})
    return config


def _source(camera: CameraConfig) -> str:
    src = camera.source
    if src.kind == "file":
        return f"file {src.path}" + (" (looped)" if src.loop else "")
    if src.kind == "rtsp":
        # The URL usually carries the camera's password; a summary must not print it.
        scheme, _, rest = src.url.partition("://")
        return f"{scheme}://{rest.rsplit('@', 1)[-1]}"
    if src.kind == "v4l2":
        return f"v4l2 {src.device}"
    return f"synthetic {src.scene} {src.width}x{src.height} @ {src.fps:g} fps"


def summarise(config: AgentConfig) -> str:
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
            f"    motion:   {cam.motion.analysis_fps:g} fps at {cam.motion.analysis_width} px, "
            f"threshold {cam.motion.threshold}, {len(cam.motion.zones)} zone(s), "
            f"{len(cam.motion.ignore)} ignore area(s)",
            f"    privacy:  {len(cam.privacy_zones)} zone(s)",
            f"    record:   pre {cam.record.pre_roll_s:g} s, post {cam.record.post_roll_s:g} s, "
            f"{cam.record.min_clip_s:g}..{cam.record.max_clip_s:g} s clips",
            f"    detect:   {detect}, alert {cam.detect.alert}",
        ]
    return "\n".join(lines)


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


@agent_app.command("check-config")
def check_config(file: ConfigPath) -> None:
    """Validate a configuration file; print its cameras, or each problem with its line."""
    config = load_or_exit(file)
    print(f"{file}: OK")
    print(summarise(config))


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
        sealed = agent.spool_dir / SEALED_DIR if agent is not None else None
        undelivered = len(committed(sealed)) if sealed is not None and sealed.is_dir() else 0
        if undelivered:
            print(
                f"warning: {undelivered} sealed clip(s) of the previous pairing were not "
                "delivered; they cannot be any more and are deleted at the next start",
                file=sys.stderr,
            )
    print(f"paired with {identity.server} as {device_name!r}")
    print(_identity_summary(identity, store))


def _identity_summary(identity: DeviceIdentity, store: IdentityStore) -> str:
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
    """Show the pairing (never the token), the state of uploads and the spool backlog."""
    agent = load_or_exit(config) if config is not None else None
    store = IdentityStore(_state_dir(state, agent))
    spool_dir = spool or (agent.spool_dir if agent is not None else Path("spool"))
    try:
        identity = store.load()
    except IdentityError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(1) from exc
    refused: dict[int, dict[str, str]] = {}
    if identity is None:
        print(f"not paired ({store.identity_path} is missing)")
        print("  pair with: doorwarden agent pair --server URL --code CODE")
    else:
        upload = UploadStatus.load(store.state_dir, identity.device_id)
        refused = upload.refused
        print("paired")
        print(_identity_summary(identity, store))
        print(f"  uploads:    {_uploads_line(upload)}")
    print(_backlog(spool_dir, refused))


def _uploads_line(upload: UploadStatus) -> str:
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


def _backlog(spool_dir: Path, refused: dict[int, dict[str, str]]) -> str:
    """What waits in the spool, read without writing (the agent may be running)."""
    plain = len(list(spool_dir.glob(f"*{SIDECAR_SUFFIX}"))) if spool_dir.is_dir() else 0
    sealed_dir = spool_dir / SEALED_DIR
    pending = committed(sealed_dir) if sealed_dir.is_dir() else []
    waiting = [p for p in pending if p.sequence not in refused]
    size = sum(pending_bytes(p) for p in waiting)
    span = f" (clips {waiting[0].sequence}..{waiting[-1].sequence})" if waiting else ""
    lines = [
        f"spool: {spool_dir}",
        f"  not sealed yet:  {plain} clip(s)",
        f"  sealed, waiting: {len(waiting)} clip(s), {size / 1024:.0f} KiB{span}",
    ]
    for paths in pending:
        if paths.sequence in refused:
            why = refused[paths.sequence]
            lines.append(
                f"  refused, kept:   clip {paths.sequence}: {why.get('message')} "
                f"({why.get('code')})"
            )
    return "\n".join(lines)


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


def _duration(camera: CameraConfig) -> float | None:
    src = camera.source
    if src.kind == "synthetic":
        return src.duration_s
    if src.kind != "file" or src.loop:
        return None
    import av  # noqa: PLC0415 - only to size the progress bar

    try:
        with av.open(str(src.path)) as container:
            stream = container.streams.video[0]
            if stream.duration is not None and stream.time_base is not None:
                return float(stream.duration * stream.time_base)
            return container.duration / 1_000_000 if container.duration else None
    except (av.FFmpegError, OSError, IndexError):
        return None  # the camera's own thread reports what is wrong with the file


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
    if config is not None:
        agent = load_or_exit(config)
    else:
        assert source is not None  # noqa: S101 - checked just above; narrows the type
        cam = CameraConfig(
            name="file", source=FileSource(kind="file", path=source.resolve(), pace=False)
        )
        agent = AgentConfig(spool_dir=spool_dir, state_dir=state_dir, cameras=[cam])
    if once:  # files at full speed, not at their frame rate
        agent = agent.model_copy(update={"cameras": [_unpaced(c) for c in agent.cameras]})
    from doorwarden.agent.analysis.detect import DetectorError  # noqa: PLC0415
    from doorwarden.agent.cameras import CameraRunner, CameraState  # noqa: PLC0415
    from doorwarden.agent.pipeline import CameraJob  # noqa: PLC0415

    console = Console()
    try:
        spool = Spool(agent.spool_dir, max_bytes=agent.spool_max_bytes)
        spool.recover()  # before any camera commits: a killed run's work in progress
        delivery = _delivery(agent, spool, config)
        on_clip = delivery.notify if delivery is not None else None
        jobs = {cam.name: CameraJob(cam, spool, on_clip=on_clip) for cam in agent.cameras}
    except (OSError, DetectorError, IdentityError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(1) from exc
    # Live view needs a pairing and a long-running agent: not with --once.
    link = _live_link(agent, delivery.identity) if delivery is not None and not once else None
    runner = CameraRunner(
        [(cam.name, cam.source, _handler(jobs[cam.name], link)) for cam in agent.cameras],
        restart=not once,
        on_open=lambda name, src: _opened(jobs[name], link, name, src),
        on_close=lambda name: _closed(jobs[name], link, name),
    )
    stop = threading.Event()
    delivered = True
    with _stop_on_sigterm(stop):
        if delivery is not None:
            delivery.start()
        if link is not None:
            link.start()
        try:
            _drive(runner, agent.cameras, jobs, console, stop)
            if delivery is not None:
                delivered = _deliver(delivery, stop, console, deliver_timeout)
        finally:
            if link is not None:
                link.stop(timeout_s=5)
            if delivery is not None:
                delivery.stop(timeout_s=10)
    clips = [clip for job in jobs.values() for clip in job.clips]
    console.print(_events_table(sorted(clips, key=lambda c: (c.metadata["camera"], c.start))))
    failed = [s for s in runner.status().values() if s.state is CameraState.failed]
    for status in failed:
        print(f"error: {status.name}: {status.last_error}", file=sys.stderr)
    if failed or not delivered:
        raise typer.Exit(1)


def _delivery(agent: AgentConfig, spool: Spool, config: Path | None) -> Delivery | None:
    """The background delivery when the agent is paired; otherwise None, said once."""
    store = IdentityStore(agent.state_dir)
    identity = store.load()
    if identity is None:
        where = f"--config {config}" if config is not None else f"--state {agent.state_dir}"
        print(
            f"note: this agent is not paired ({store.identity_path} is missing): clips stay in "
            f"{agent.spool_dir}. Pair it with: doorwarden agent pair --server URL --code CODE "
            f"{where}",
            file=sys.stderr,
        )
        return None
    from doorwarden.agent.delivery.worker import Delivery  # noqa: PLC0415

    return Delivery(spool, store, agent.upload, identity=identity)


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
    if backlog.refused:
        print(f"error: {backlog.refused} clip(s) refused by the server (kept)", file=sys.stderr)
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


def _live_link(agent: AgentConfig, identity: DeviceIdentity) -> LiveLink | None:
    """The live-view connection for a paired agent; None (said once) when the server's
    address would carry the device token in clear."""
    from doorwarden.agent.analysis.privacy import PrivacyMask  # noqa: PLC0415
    from doorwarden.agent.live.link import LiveLink, LiveLinkError  # noqa: PLC0415

    # Sized lazily: the stream's size is known when its source opens.
    masks = {cam.name: PrivacyMask(cam.privacy_zones, 0, 0) for cam in agent.cameras}
    try:
        return LiveLink(identity, [cam.name for cam in agent.cameras], masks=masks)
    except LiveLinkError as exc:
        print(f"note: live view is off: {exc}", file=sys.stderr)
        return None


def _handler(job: CameraJob, link: LiveLink | None = None) -> Handler:
    if link is None:
        return lambda _name, sample: job.handle(sample)

    def handle(name: str, sample: Sample) -> None:
        # Live first: detection on this sample can take a while, a viewer should not wait.
        link.feed(name, sample)
        job.handle(sample)

    return handle


def _opened(job: CameraJob, link: LiveLink | None, name: str, source: VideoSource) -> None:
    job.opened(source)
    if link is not None:
        link.opened(name, source)


def _closed(job: CameraJob, link: LiveLink | None, name: str) -> None:
    if link is not None:
        link.closed(name)
    job.closed()


def _drive(
    runner: CameraRunner,
    cameras: list[CameraConfig],
    jobs: dict[str, CameraJob],
    console: Console,
    stop: threading.Event,
) -> None:
    """Run the cameras until all are done or `stop` (SIGTERM, Ctrl-C), showing progress."""
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        tasks = {c.name: progress.add_task(c.name, total=_duration(c)) for c in cameras}
        runner.start()
        try:
            while not runner.done() and not stop.wait(0.1):
                for name, task in tasks.items():
                    progress.update(task, completed=jobs[name].media_time)
        except KeyboardInterrupt:
            stop.set()
        finally:
            runner.stop(timeout_s=60)  # flushing a re-encoded clip takes a moment


def _unpaced(camera: CameraConfig) -> CameraConfig:
    src = camera.source
    if src.kind in ("file", "synthetic"):
        return camera.model_copy(update={"source": src.model_copy(update={"pace": False})})
    return camera
