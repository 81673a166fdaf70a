"""The command line, run as a user runs it: a subprocess with the environment as config."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from doorwarden import __version__
from tests.factories import PASSWORD, SECRET


def run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("DOORWARDEN_")}
    return subprocess.run(
        [sys.executable, "-m", "doorwarden", *args],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"doorwarden {__version__}"


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["serve"],
        ["db"],
        ["db", "upgrade"],
        ["db", "check"],
        ["admin"],
        ["admin", "create-user"],
        ["settings"],
        ["agent"],
        ["agent", "run"],
        ["agent", "check-config"],
        ["agent", "describe-config"],
        ["legal"],
        ["legal", "run"],
    ],
)
def test_every_command_has_help(command: list[str]) -> None:
    result = run(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout and len(result.stdout.splitlines()) > 4


def test_a_missing_secret_is_a_clear_error(tmp_path: Path) -> None:
    result = run("db", "upgrade", env={"DOORWARDEN_DATA_DIR": str(tmp_path)})
    assert result.returncode == 2
    assert "DOORWARDEN_SECRET_KEY" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_serve_refuses_an_unmigrated_database_then_upgrade_and_create_user_work(
    tmp_path: Path,
) -> None:
    # The default database: a SQLite file in the data directory, created on demand.
    env = {
        "DOORWARDEN_SECRET_KEY": SECRET,
        "DOORWARDEN_DATA_DIR": str(tmp_path / "data"),
        "PW": PASSWORD,
        "DOORWARDEN_BIND_PORT": "1",
    }
    refused = run("serve", env=env)
    assert refused.returncode == 1
    assert "not migrated" in refused.stderr and "doorwarden db upgrade" in refused.stderr
    assert run("db", "check", env=env).returncode == 1
    upgraded = run("db", "upgrade", env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert run("db", "check", env=env).returncode == 0
    assert (tmp_path / "data" / "doorwarden.db").is_file()
    created = run(
        "admin", "create-user", "--email", "root@example.org", "--password-env", "PW", env=env
    )
    assert created.returncode == 0, created.stderr
    assert "Created operator_admin root@example.org" in created.stdout
    again = run(
        "admin", "create-user", "--email", "root@example.org", "--password-env", "PW", env=env
    )
    assert again.returncode == 1 and "already exists" in again.stderr
    weak = run(
        "admin", "create-user", "--email", "w@example.org", "--password-env", "NOPE", env=env
    )
    assert weak.returncode == 2 and "NOPE" in weak.stderr
    bad_agency = run(
        "admin",
        "create-user",
        "--email",
        "o@example.org",
        "--role",
        "agency_officer",
        "--agency-id",
        "not-a-uuid",
        "--password-env",
        "PW",
        env=env,
    )
    assert bad_agency.returncode == 2
