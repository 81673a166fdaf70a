"""`doorwarden demo`: the whole system on one machine, offline: a server, three cameras
in three homes playing real footage, one account of every kind, and (--scenario) the
story of a legal request from the camera to the transparency report. The parts are in
doorwarden.demo (docs/demo.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from doorwarden.cli.extras import needs

# Importable without the server or the video stack: what the demo seeds.
from doorwarden.demo.cast import ACCOUNTS, DEMO_PASSWORD

__all__ = ["ACCOUNTS", "DEMO_PASSWORD", "demo"]


@needs("server", "agent")  # a server and cameras in one process
def demo(
    port: Annotated[
        int, typer.Option(help="Port to serve on (127.0.0.1).", min=1, max=65535)
    ] = 8000,
    data_dir: Annotated[
        Path, typer.Option(help="Where the demo keeps everything; reused by the next run.")
    ] = Path("data/demo"),
    scenario: Annotated[
        bool,
        typer.Option(
            "--scenario",
            help="Also walk through the story: clips recorded, a community request and a "
            "warrant filed, the warrant narrowed, packages built and verified, the resident "
            "told, the transparency report and the log updated; each step says where to look.",
        ),
    ] = False,
    fresh: Annotated[
        bool,
        typer.Option("--fresh", help="Empty the data directory first (prints what it removes)."),
    ] = False,
    people: Annotated[
        bool,
        typer.Option(
            "--people",
            help="Label people on the Front door camera (OpenCV's HOG detector: about a third "
            "of a CPU core more).",
        ),
    ] = False,
    mqtt: Annotated[
        str | None,
        typer.Option(
            "--mqtt",
            metavar="URL",
            help="Also publish the cameras' motion, rings, clips and availability to this MQTT "
            "broker (mqtt://host:1883), with Home Assistant discovery; the select and switches "
            "act as each home's owner (docs/mqtt.md).",
        ),
    ] = None,
    footage: Annotated[
        Path | None,
        typer.Option(
            help="OpenCV's vtest.avi, if it is not in ../shared/data/ or Debian's opencv-doc.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Start a demo instance with seeded accounts and live cameras; print how to sign in.

    Ctrl-C stops it cleanly (the cameras finish their clips first); a second run reuses
    the data directory, accounts and camera pairings.
    """
    from doorwarden.demo.runner import Options, run  # noqa: PLC0415 - server and video stack

    if mqtt is not None:
        from pydantic import ValidationError  # noqa: PLC0415

        from doorwarden.agent.config.mqtt import MqttConfig  # noqa: PLC0415

        try:
            MqttConfig(url=mqtt)
        except ValidationError as exc:
            raise typer.BadParameter(exc.errors()[0]["msg"], param_hint="--mqtt") from None

    options = Options(
        data_dir=data_dir, port=port, scenario=scenario, fresh=fresh, footage=footage,
        people=people, mqtt=mqtt,
    )  # fmt: skip
    raise typer.Exit(run(options))
