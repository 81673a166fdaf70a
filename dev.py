#!/usr/bin/env python3
"""Set up and run doorwarden with nothing but Python 3.11+.

    python3 dev.py demo    # set up, then start the demo server and print how to sign in
    python3 dev.py test    # set up, then run the whole test suite (what CI runs)

Setup makes .venv/ and installs the package with its development dependencies (again
only when pyproject.toml changes). `test` also installs the Debian packages some
tests need (chromium, GStreamer's RTSP server) where it can (root with apt-get), and
runs the database tests a second time on PostgreSQL (DOORWARDEN_TEST_DATABASE_URL,
default the local server's `test` database). Outside CI a missing package or database
skips those tests with the reason printed; with CI=true they are required.
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


# Debian packages the tests use: the browser for the web tests, GStreamer's RTSP server
# (run with Debian's own python3, which has `gi`) for the camera-stream tests.
SYSTEM_PACKAGES = [
    "chromium",
    "ffmpeg",
    "python3-gi",
    "gstreamer1.0-rtsp",
    "gir1.2-gst-rtsp-server-1.0",
    "gstreamer1.0-plugins-base",
    "gstreamer1.0-plugins-good",
    "gstreamer1.0-plugins-bad",
    "gstreamer1.0-plugins-ugly",
    "gstreamer1.0-libav",
    "libportaudio2",  # talk's speaker output (sounddevice) loads it
    "mosquitto",  # the MQTT tests' broker (a private one is started where none runs)
    "nats-server",  # between server instances (tests/nats.py starts a private one)
]


def _installed(package: str) -> bool:
    query = shutil.which("dpkg-query")
    if query is None:
        return False
    result = subprocess.run(
        [query, "-W", "-f=${Status}", package], capture_output=True, text=True, check=False
    )
    return result.stdout.strip().endswith("installed")


def ensure_system_packages() -> None:
    missing = [p for p in SYSTEM_PACKAGES if not _installed(p)]
    if not missing:
        return
    apt = shutil.which("apt-get")
    if apt and hasattr(os, "geteuid") and os.geteuid() == 0:
        say(f"installing Debian packages for the tests: {' '.join(missing)}")
        env = {"DEBIAN_FRONTEND": "noninteractive"}
        if run(apt, "update", "-q", env=env) == 0:
            run(apt, "install", "-y", "-q", "--no-install-recommends", *missing, env=env)
    missing = [p for p in missing if not _installed(p)]
    if missing:
        consequence = "FAIL (CI requires them)" if IN_CI else "be skipped"
        say(f"not installed: {' '.join(missing)}; the tests that need them will {consequence}")


def parallel() -> list[str]:
    """pytest-xdist options. Most tests wait on processes, sockets and the database more
    than they compute, so twice as many workers as cores pays (BENCHMARKS.md, test suite).
    Each test file stays on one worker (its module fixtures are made once).
    DOORWARDEN_TEST_WORKERS=N sets the count; 0 runs in this process (for a debugger)."""
    workers = os.environ.get("DOORWARDEN_TEST_WORKERS") or str(min(8, 2 * (os.cpu_count() or 1)))
    return [] if workers == "0" else ["-n", workers, "--dist", "loadfile"]


def test(extra: list[str]) -> int:
    ensure_system_packages()
    say("ruff")
    lint = run(BIN / "ruff", "check", "src", "tests", "bench")
    say("mypy")
    types = run(BIN / "mypy")
    # DESIGN.md's rules as import contracts (pyproject.toml, [tool.importlinter]). No cache:
    # the whole graph takes well under a second, and a cache would be one more folder to
    # keep out of git.
    say("import contracts (lint-imports)")
    contracts = run(BIN / "lint-imports", "--no-cache", "--no-logo")
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
    sqlite = run(PYTHON, "-m", "pytest", *parallel(), *extra, env=clean_env)
    say(f"database tests on PostgreSQL ({pg_url})")
    postgres = run(
        PYTHON,
        "-m",
        "pytest",
        "-m",
        "db",
        *parallel(),
        *extra,
        env={"DOORWARDEN_TEST_DATABASE_URL": pg_url},
    )
    results = {
        "ruff": lint,
        "mypy": types,
        "import contracts": contracts,
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
