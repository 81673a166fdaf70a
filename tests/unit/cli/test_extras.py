"""A command whose part of the install is missing refuses in one line that names the extra
to install (pyproject.toml: `doorwarden[agent]`, `doorwarden[server]`, `[all]` for both).
Here the metadata lookup is replaced; tests/functional/packaging runs real installs."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib

import pytest
import typer
from typer.testing import CliRunner

from doorwarden.cli import extras
from doorwarden.cli.app import app
from tests.paths import ROOT


@pytest.fixture
def without(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """The extras named in the returned set count as not installed."""
    gone: set[str] = set()
    monkeypatch.setattr(extras, "missing", lambda extra: ["x"] if extra in gone else [])
    return gone


SERVER_LIBRARIES = {"fastapi", "starlette", "sqlalchemy", "alembic", "uvicorn", "asyncpg"}


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=\[;! ]", r, maxsplit=1)[0].lower() for r in requirements}


def test_the_extras_split_the_two_programs() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core, optional = _names(project["dependencies"]), project["optional-dependencies"]
    agent, server = _names(optional["agent"]), _names(optional["server"])
    assert not (core | agent) & SERVER_LIBRARIES
    assert server >= SERVER_LIBRARIES
    assert not server & {"av", "opencv-python-headless", "onnxruntime", "pyyaml"}
    assert {"typer", "rich", "cryptography"} <= core
    assert "doorwarden[agent,server]" in optional["dev"]  # dev.py installs everything
    assert optional["all"] == ["doorwarden[agent,server]"]


def test_an_extra_is_read_from_the_installed_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    metadata = [
        "pydantic>=2.7",
        'sqlalchemy[asyncio]>=2.0.30; extra == "server"',
        "fastapi>=0.121 ; extra == 'server'",
        'opencv-python-headless<5,>=4.8; extra == "agent"',
        'doorwarden[agent,server]; extra == "dev"',
        'pytest>=8.2; extra == "dev"',
    ]
    monkeypatch.setattr(importlib.metadata, "requires", lambda name: metadata)
    assert extras._requirements("server") == ["sqlalchemy", "fastapi"]
    assert extras._requirements("agent") == ["opencv-python-headless"]
    assert extras._requirements("dev") == ["pytest"]  # the self-reference is left out
    monkeypatch.setattr(extras, "_installed", lambda name: name != "fastapi")
    assert extras.missing("server") == ["fastapi"]
    assert extras.missing("agent") == []


def test_the_development_install_lacks_no_part() -> None:
    assert extras.missing("agent") == [] and extras.missing("server") == []


def test_without_metadata_nothing_counts_as_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_metadata(name: str) -> list[str]:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "requires", no_metadata)
    assert extras.missing("server") == []


def test_the_hint_names_all_when_a_command_needs_both() -> None:
    assert extras.install_hint("server") == 'pip install "doorwarden[server]"'
    assert extras.install_hint("server", "agent") == 'pip install "doorwarden[all]"'


@pytest.mark.parametrize(
    "command",
    [
        ["serve"],
        ["db", "upgrade"],
        ["db", "check"],
        ["admin", "create-user", "--email", "a@example.org"],
        ["settings"],
        ["retention"],
        ["legal", "run"],
        ["log", "key"],
        ["log", "append"],
        ["log", "export", "log.json"],
    ],
    ids=" ".join,
)
def test_a_server_command_without_the_server_names_the_extra(
    command: list[str], without: set[str]
) -> None:
    without.add("server")
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 3, result.output
    lines = result.output.strip().splitlines()
    assert lines == [
        'error: this command needs the server, not installed here: pip install "doorwarden[server]"'
    ]


def test_the_demo_needs_both_parts(without: set[str]) -> None:
    without.add("agent")
    result = CliRunner().invoke(app, ["demo"])
    assert result.exit_code == 3
    assert 'needs the camera agent, not installed here: pip install "doorwarden[all]"' in (
        result.output
    )


def test_help_still_works_without_the_part(without: set[str]) -> None:
    without.add("server")
    result = CliRunner().invoke(app, ["db", "upgrade", "--help"])
    assert result.exit_code == 0 and "Apply database migrations" in result.output


@pytest.mark.parametrize(
    "args", [[], ["--help"], ["run", "--source", "x.avi", "--once"], ["status"]], ids=str
)
def test_the_agent_group_stands_in_when_the_agent_is_missing(
    args: list[str], without: set[str]
) -> None:
    without.add("agent")
    stand_in = typer.Typer()
    stand_in.command()(lambda: None)  # two commands, so that `agent` is a sub-command
    stand_in.command("other")(lambda: None)
    extras.add_unavailable(stand_in, "agent", "agent", "The camera agent.")
    result = CliRunner().invoke(stand_in, ["agent", *args])
    assert result.exit_code == 3, result.output
    assert 'pip install "doorwarden[agent]"' in result.output
    listed = CliRunner().invoke(stand_in, ["--help"])
    assert 'The camera agent. (not installed here: pip install "doorwarden[agent]")' in " ".join(
        listed.output.replace("│", " ").split()
    )
