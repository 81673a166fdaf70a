"""doorwarden command line: the commands of both programs in one Typer app. Every command
has --help.

Importing this module loads neither the server nor the video stack: server commands
(cli/server.py, cli/log.py, cli/demo.py) import what they run inside their bodies and
refuse with the extra to install when their part is missing (cli/extras.py); the agent's
commands are registered only where the agent's part is installed, and stand in with the
same refusal where it is not.
"""

from __future__ import annotations

from typing import Annotated

import typer

from doorwarden import __version__
from doorwarden.cli import server
from doorwarden.cli.demo import demo
from doorwarden.cli.extras import add_unavailable, missing
from doorwarden.cli.keys import decrypt, keys_app
from doorwarden.cli.log import log_app, verify_log
from doorwarden.cli.verify import verify

AGENT_HELP = "The camera agent: turn video streams into event clips, sealed and uploaded."

app = typer.Typer(
    name="doorwarden",
    help="Self-hostable video doorbell and home security camera platform.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(server.db_app, name="db")
app.add_typer(server.admin_app, name="admin")
if missing("agent"):
    add_unavailable(app, "agent", "agent", AGENT_HELP)
else:
    from doorwarden.cli.agent import agent_app  # only where the agent is installed

    app.add_typer(agent_app, name="agent")
app.command()(demo)
app.command()(verify)
app.command()(decrypt)
app.add_typer(keys_app, name="keys")
app.add_typer(log_app, name="log")
app.command("verify-log")(verify_log)
app.command()(server.serve)
app.command()(server.retention)
app.add_typer(server.legal_app, name="legal")
app.command()(server.settings)


def _version(value: bool) -> None:
    if value:
        print(f"doorwarden {__version__}")
        raise typer.Exit


@app.callback()
def root(
    _version_flag: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """doorwarden: cameras that record when they see motion, owned by their owners."""
