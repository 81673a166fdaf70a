"""The two installs of pyproject.toml, each in a fresh virtualenv (no system packages):

* `doorwarden[agent]`, a camera box: the agent cuts clips from real footage, and neither
  FastAPI nor SQLAlchemy is there at all; a server command names the extra to install.
* `doorwarden[server]`: the command line starts and migrates a new SQLite database; the
  video stack is not there, and the agent's commands name the extra to install.

pip installs from the index (on an idle machine about 20 s per install, both side by side;
about 90 s under a parallel suite on two cores). Outside CI a machine that cannot reach an
index skips with the reason printed; in CI (CI=true) this test must run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import venv
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.factories import SECRET
from tests.paths import ROOT, VTEST

IN_CI = os.environ.get("CI") == "true"
SERVER_ONLY = ("fastapi", "sqlalchemy", "alembic", "starlette", "uvicorn", "asyncpg")
AGENT_ONLY = ("av", "cv2", "onnxruntime", "yaml")
INSTALL_TIMEOUT_S = 600

pytestmark = pytest.mark.slow


def _environment(**extra: str) -> dict[str, str]:
    """The user's environment without this test run's: no virtualenv, no doorwarden
    settings, nothing on PYTHONPATH that could stand in for a missing package."""
    drop = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")
    base = {k: v for k, v in os.environ.items() if k not in drop}
    base = {k: v for k, v in base.items() if not k.startswith("DOORWARDEN_")}
    return {**base, **extra}


@dataclass(frozen=True)
class Venv:
    path: Path

    def bin(self, name: str) -> Path:
        return self.path / "bin" / name

    def run(
        self, *args: str | Path, cwd: Path, timeout: float = 300, **env: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(a) for a in args],
            cwd=cwd,
            env=_environment(**env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def importable(self, modules: tuple[str, ...], cwd: Path) -> list[str]:
        code = f"import importlib.util as u; print(*[m for m in {modules!r} if u.find_spec(m)])"
        result = self.run(self.bin("python"), "-c", code, cwd=cwd)
        assert result.returncode == 0, result.stderr
        return result.stdout.split()


def _source_copy(target: Path) -> Path:
    """What a build reads, apart from the working tree: two installs building side by side
    in one tree would share its build/ and egg-info."""
    shutil.copy(ROOT / "pyproject.toml", target / "pyproject.toml")
    shutil.copy(ROOT / "README.md", target / "README.md")
    shutil.copytree(
        ROOT / "src", target / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    return target


def _skip_or_fail(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason}; CI must test both installs")
    print(f"\nSKIP: {reason}")  # noqa: T201 - the reason must be visible, not only in -ra
    pytest.skip(reason)


@pytest.fixture(scope="module")
def installs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Venv]:
    """Both virtualenvs, installed side by side (pip mostly waits on the network)."""
    base = tmp_path_factory.mktemp("installs")
    source = _source_copy(base)
    venvs = {extra: Venv(base / f"venv-{extra}") for extra in ("agent", "server")}
    for env in venvs.values():
        venv.create(env.path, with_pip=True, system_site_packages=False, clear=True)
    probe = venvs["agent"].run(
        venvs["agent"].bin("python"), "-m", "pip", "download", "--quiet", "--no-deps",
        "--retries", "1", "--timeout", "30", "--dest", base / "probe", "setuptools>=77",
        cwd=base, timeout=120,
    )  # fmt: skip
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["no output"])[-1]
        _skip_or_fail(f"pip cannot reach a package index ({last})")
    started = time.monotonic()
    running = {
        extra: subprocess.Popen(
            [str(env.bin("python")), "-m", "pip", "install", "--quiet", f"{source}[{extra}]"],
            cwd=base,
            env=_environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for extra, env in venvs.items()
    }
    for extra, process in running.items():
        output, _ = process.communicate(timeout=INSTALL_TIMEOUT_S)
        assert process.returncode == 0, f"pip install .[{extra}] failed:\n{output}"
    # Printed for BENCHMARKS.md and for whoever wonders why this test takes its time.
    print(f"\nboth installs took {time.monotonic() - started:.1f} s")  # noqa: T201
    return venvs


@pytest.mark.skipif(not VTEST.is_file() and not IN_CI, reason=f"{VTEST} not found")
def test_the_agent_install_runs_the_agent_without_the_server(
    installs: dict[str, Venv], tmp_path: Path
) -> None:
    agent = installs["agent"]
    assert agent.importable(SERVER_ONLY, cwd=tmp_path) == []
    for module in ("fastapi", "sqlalchemy"):
        refused = agent.run(agent.bin("python"), "-c", f"import {module}", cwd=tmp_path)
        assert refused.returncode == 1 and "ModuleNotFoundError" in refused.stderr

    started = time.monotonic()
    ran = agent.run(
        agent.bin("doorwarden"), "agent", "run", "--source", VTEST, "--once",
        "--spool", tmp_path / "spool", "--state", tmp_path / "state", cwd=tmp_path,
    )  # fmt: skip
    print(f"\nagent run --once on vtest.avi: {time.monotonic() - started:.1f} s")  # noqa: T201
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "event(s)" in ran.stdout
    assert list((tmp_path / "spool").glob("*.mp4"))

    for command in (["db", "upgrade"], ["serve"]):
        refused = agent.run(agent.bin("doorwarden"), *command, cwd=tmp_path)
        assert refused.returncode == 3, refused.stdout + refused.stderr
        assert refused.stderr.strip() == (
            "error: this command needs the server, not installed here: "
            'pip install "doorwarden[server]"'
        )


def test_the_server_install_migrates_a_database_without_the_video_stack(
    installs: dict[str, Venv], tmp_path: Path
) -> None:
    server = installs["server"]
    assert server.importable(AGENT_ONLY, cwd=tmp_path) == []

    shown = server.run(server.bin("doorwarden"), "--help", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "serve" in shown.stdout and "agent" in shown.stdout

    database = tmp_path / "doorwarden.db"
    upgraded = server.run(
        server.bin("doorwarden"), "db", "upgrade", cwd=tmp_path,
        DOORWARDEN_SECRET_KEY=SECRET,
        DOORWARDEN_DATA_DIR=str(tmp_path / "data"),
        DOORWARDEN_DATABASE_URL=f"sqlite+aiosqlite:///{database}",
    )  # fmt: skip
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    assert "Database is at head." in upgraded.stdout and database.is_file()

    refused = server.run(server.bin("doorwarden"), "agent", "run", "--once", cwd=tmp_path)
    assert refused.returncode == 3, refused.stdout + refused.stderr
    assert 'pip install "doorwarden[agent]"' in refused.stderr
    assert "Traceback" not in refused.stderr
