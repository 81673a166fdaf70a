"""The agent runs near the camera without the server: it never imports server code
(../shared/DESIGN.md), so a small board needs neither the database drivers nor the web
stack, and a server bug cannot reach the agent through an import. It may use what is
shared by design: crypto/ (sealing), formats/ (the sealed layout) and the kernel's
fileio (writes that land whole or fail loudly, for the server and the agent alike)."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import doorwarden.agent

AGENT_MODULES = sorted(
    m.name for m in pkgutil.walk_packages(doorwarden.agent.__path__, "doorwarden.agent.")
)


def test_agent_modules_import_nothing_from_the_server() -> None:
    code = (
        "import json, sys\n"
        f"for name in {AGENT_MODULES!r}:\n"
        "    __import__(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('doorwarden', "
        "'sqlalchemy', 'fastapi', 'starlette')))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    loaded = json.loads(result.stdout)
    shared = ("doorwarden.agent", "doorwarden.crypto", "doorwarden.formats")
    outside = [
        m
        for m in loaded
        if m not in ("doorwarden", "doorwarden.fileio") and not m.startswith(shared)
    ]
    assert len(AGENT_MODULES) >= 10
    assert outside == []
