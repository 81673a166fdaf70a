#!/usr/bin/env python3
"""Set up and run doorwarden with nothing but Python 3.11+.

    python3 dev.py demo    # set up, then start the demo server and print how to sign in
    python3 dev.py test    # set up, then run the whole test suite (what CI runs)

Setup makes .venv/ and installs the package with its development dependencies (again
only when pyproject.toml changes). `test` also installs Debian's chromium for the
browser tests where it can (root with apt-get), and runs the database tests a second
time on PostgreSQL (DOORWARDEN_TEST_DATABASE_URL, default the local server's `test`
database). Outside CI a missing browser or database skips those tests with the reason
printed; with CI=true they are required.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"
STAMP = VENV / ".doorwarden-installed"
DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
CHROMIUM = Path("/usr/bin/chromium")
IN_CI = os.environ.get("CI") == "true"


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def run(*args: str | Path, env: dict[str, str] | None = None) -> int:
    return subprocess.call([str(a) for a in args], cwd=ROOT, env={**os.environ, **(env or {})})


def must(*args: str | Path, env: dict[str, str] | None = None) -> None:
    code = run(*args, env=env)
    if code != 0:
        sys.exit(code)


def setup() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - run by whatever python3 the user has
        sys.exit("doorwarden needs Python 3.11 or newer")
    if not PYTHON.exists():
        say("creating .venv")
        venv.create(VENV, with_pip=True)
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    say("installing doorwarden and its development dependencies into .venv")
    must(PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    must(PYTHON, "-m", "pip", "install", "--quiet", "-e", ".[dev]")
    STAMP.write_text(wanted)


def ensure_chromium() -> None:
    if CHROMIUM.exists():
        return
    apt = shutil.which("apt-get")
    if apt and hasattr(os, "geteuid") and os.geteuid() == 0:
        say("installing Debian's chromium for the browser tests")
        env = {"DEBIAN_FRONTEND": "noninteractive"}
        if run(apt, "update", "-q", env=env) == 0:
            run(apt, "install", "-y", "-q", "chromium", env=env)
    if not CHROMIUM.exists():
        say(
            "chromium is not installed (apt-get install chromium): browser tests will "
            + ("FAIL (CI requires them)" if IN_CI else "be skipped")
        )


def test(extra: list[str]) -> int:
    ensure_chromium()
    say("ruff")
    lint = run(BIN / "ruff", "check", "src", "tests", "bench")
    say("mypy")
    types = run(BIN / "mypy")
    say("alembic check (models and migrations agree)")
    with_tmp = ROOT / ".pytest-alembic.db"
    with_tmp.unlink(missing_ok=True)
    env = {
        "DOORWARDEN_DATABASE_URL": f"sqlite+aiosqlite:///{with_tmp}",
        "DOORWARDEN_DEVELOPMENT": "1",
    }
    migrations = run(BIN / "doorwarden", "db", "upgrade", env=env) or run(
        BIN / "alembic", "check", env=env
    )
    with_tmp.unlink(missing_ok=True)
    pg_url = os.environ.get("DOORWARDEN_TEST_DATABASE_URL", DEFAULT_PG)
    clean_env = {"DOORWARDEN_TEST_DATABASE_URL": ""}
    say("test suite on SQLite")
    sqlite = run(PYTHON, "-m", "pytest", *extra, env=clean_env)
    say(f"database tests on PostgreSQL ({pg_url})")
    postgres = run(
        PYTHON, "-m", "pytest", "-m", "db", *extra, env={"DOORWARDEN_TEST_DATABASE_URL": pg_url}
    )
    results = {
        "ruff": lint,
        "mypy": types,
        "alembic check": migrations,
        "tests on SQLite": sqlite,
        "database tests on PostgreSQL": postgres,
    }
    say("summary")
    for name, code in results.items():
        print(f"    {name:<30} {'ok' if code == 0 else f'FAILED (exit {code})'}")
    return 0 if all(code == 0 for code in results.values()) else 1


def main() -> None:
    command, extra = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("", [])
    if command not in ("demo", "test"):
        sys.exit(__doc__)
    setup()
    if command == "demo":
        os.execv(BIN / "doorwarden", [str(BIN / "doorwarden"), "demo", *extra])  # noqa: S606
    sys.exit(test(extra))


if __name__ == "__main__":
    main()
