"""Which optional parts of doorwarden are installed, and the one-line refusal when a
command needs a part that is not.

`pip install "doorwarden[agent]"` puts a camera agent on a small box without the server's
libraries, and `doorwarden[server]` a server without the video stack (pyproject.toml
says which package goes where). The CLI is the same program on both, so every command
that needs a part checks for it before importing anything from it: a camera box answers
`doorwarden serve` with the extra to install, not with a traceback from deep inside an
import.

What an extra contains is read from doorwarden's own installed metadata, so this file
never has to repeat pyproject.toml. Run from a source tree without metadata, nothing can
be told, and every command is let through.
"""

from __future__ import annotations

import functools
import importlib.metadata
import re
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from rich.markup import escape

P = ParamSpec("P")
R = TypeVar("R")

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

# What each part is, for the message.
PARTS = {"agent": "the camera agent", "server": "the server"}


def _requirements(extra: str) -> list[str]:
    """The distributions that `doorwarden[extra]` adds (self-references left out)."""
    try:
        requires = importlib.metadata.requires("doorwarden") or []
    except importlib.metadata.PackageNotFoundError:
        return []
    marker = re.compile(rf"""extra\s*==\s*["']{re.escape(extra)}["']""")
    names: list[str] = []
    for requirement in requires:
        spec, _, markers = requirement.partition(";")
        found = _NAME.match(spec.strip())
        if found and marker.search(markers) and found.group() != "doorwarden":
            names.append(found.group())
    return names


def _installed(name: str) -> bool:
    try:
        importlib.metadata.distribution(name)  # names are normalised (PEP 503) by the lookup
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def missing(extra: str) -> list[str]:
    """The distributions of `doorwarden[extra]` that are not installed here."""
    return [name for name in _requirements(extra) if not _installed(name)]


def install_hint(*extras: str) -> str:
    """`pip install "doorwarden[...]"` for what a command needs: `all` when it is both."""
    wanted = "all" if set(extras) >= set(PARTS) else ",".join(extras)
    return f'pip install "doorwarden[{wanted}]"'


def absent(*extras: str) -> str | None:
    """The refusal for a command that needs `extras`, or None when they are installed."""
    lacking = [extra for extra in extras if missing(extra)]
    if not lacking:
        return None
    parts = " and ".join(PARTS.get(extra, extra) for extra in lacking)
    return f"error: this command needs {parts}, not installed here: {install_hint(*extras)}"


def needs(*extras: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a command that needs the parts `extras`: without them it exits 3 with one
    line saying what to install. (3: apart from 1, a failed check, and 2, bad usage.)"""

    def decorate(command: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(command)  # Typer reads the parameters through __wrapped__
        def checked(*args: P.args, **kwargs: P.kwargs) -> R:
            refusal = absent(*extras)
            if refusal is not None:
                print(refusal, file=sys.stderr)
                raise typer.Exit(3)
            return command(*args, **kwargs)

        return checked

    return decorate


def add_unavailable(app: typer.Typer, name: str, extra: str, help_text: str) -> None:
    """Stand in for the command group `name` whose part is not installed: whatever follows
    its name (a sub-command, options, --help), it prints the refusal and exits 3."""

    def refuse() -> None:
        print(absent(extra) or f"error: {install_hint(extra)}", file=sys.stderr)
        raise typer.Exit(3)

    app.command(
        name,
        # Typer renders help as rich markup, where `[agent]` would be a style tag.
        help=escape(f"{help_text} (not installed here: {install_hint(extra)})"),
        context_settings={
            "allow_extra_args": True,
            "ignore_unknown_options": True,
            "help_option_names": [],
        },
    )(refuse)
