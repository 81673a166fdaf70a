"""`doorwarden agent ...`: the camera agent's commands."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from doorwarden.agent.config import AgentConfig, CameraConfig, FileSource
from doorwarden.agent.config_docs import describe_config
from doorwarden.agent.config_file import ConfigFileError, load_agent_config

if TYPE_CHECKING:
    # Video, numpy and model runtimes load only when `run` runs: every other
    # `doorwarden` command stays quick to start.
    from doorwarden.agent.cameras import CameraRunner, Handler
    from doorwarden.agent.pipeline import CameraJob
    from doorwarden.agent.recorder import FinishedClip

agent_app = typer.Typer(
    help="The camera agent: turn video streams into event clips in a spool directory.",
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
    lines = [f"spool: {config.spool_dir}", f"{len(config.cameras)} camera(s):"]
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
            help="Process file and synthetic sources as fast as possible to their end, then "
            "exit; a camera that fails is reported, not restarted."
        ),
    ] = False,
    spool_dir: Annotated[
        Path, typer.Option("--spool", help="Spool directory (with --source).")
    ] = Path("spool"),
) -> None:
    """Run the agent: cameras from --config, or one file from --source; print the events.

    Each camera runs on its own thread; without --once a camera whose source fails is
    restarted with backoff while the others carry on. Ctrl-C or SIGTERM stops the agent
    after finishing the clip in progress.
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
        agent = AgentConfig(spool_dir=spool_dir, cameras=[cam])
    if once:  # files at full speed, not at their frame rate
        agent = agent.model_copy(update={"cameras": [_unpaced(c) for c in agent.cameras]})
    from doorwarden.agent.cameras import CameraRunner, CameraState  # noqa: PLC0415
    from doorwarden.agent.detect import DetectorError  # noqa: PLC0415
    from doorwarden.agent.pipeline import CameraJob  # noqa: PLC0415
    from doorwarden.agent.spool import Spool  # noqa: PLC0415

    console = Console()
    try:
        spool = Spool(agent.spool_dir)
        jobs = {cam.name: CameraJob(cam, spool) for cam in agent.cameras}
    except (OSError, DetectorError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(1) from exc
    runner = CameraRunner(
        [(cam.name, cam.source, _handler(jobs[cam.name])) for cam in agent.cameras],
        restart=not once,
        on_open=lambda name, src: jobs[name].opened(src),
        on_close=lambda name: jobs[name].closed(),
    )
    _drive(runner, agent.cameras, jobs, console)
    clips = [clip for job in jobs.values() for clip in job.clips]
    console.print(_events_table(sorted(clips, key=lambda c: (c.metadata["camera"], c.start))))
    failed = [s for s in runner.status().values() if s.state is CameraState.failed]
    for status in failed:
        print(f"error: {status.name}: {status.last_error}", file=sys.stderr)
    if failed:
        raise typer.Exit(1)


def _handler(job: CameraJob) -> Handler:
    return lambda _name, sample: job.handle(sample)


def _drive(
    runner: CameraRunner,
    cameras: list[CameraConfig],
    jobs: dict[str, CameraJob],
    console: Console,
) -> None:
    """Run the cameras until all are done or a stop signal, showing progress."""
    stop = threading.Event()
    in_main = threading.current_thread() is threading.main_thread()  # signals need it
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set()) if in_main else None
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=console, transient=True) as progress:
            tasks = {c.name: progress.add_task(c.name, total=_duration(c)) for c in cameras}
            runner.start()
            try:
                while not runner.done() and not stop.wait(0.1):
                    for name, task in tasks.items():
                        progress.update(task, completed=jobs[name].media_time)
            except KeyboardInterrupt:
                pass
            finally:
                runner.stop(timeout_s=60)  # flushing a re-encoded clip takes a moment
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)


def _unpaced(camera: CameraConfig) -> CameraConfig:
    src = camera.source
    if src.kind in ("file", "synthetic"):
        return camera.model_copy(update={"source": src.model_copy(update={"pace": False})})
    return camera
