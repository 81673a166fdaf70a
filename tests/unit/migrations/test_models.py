"""`import_all_models` is what Alembic sees (migrations/env.py, `alembic check`): in a
fresh interpreter it must register every table that any models module declares, with
every foreign key resolvable. A model module it forgets breaks `alembic check` and the
migration autogenerate only when nothing else happened to import it first, which is why
this runs in fresh interpreters."""

from __future__ import annotations

import json
import subprocess
import sys

THROUGH_IMPORT_ALL = """
import json
from doorwarden.db import Base
from doorwarden.migrations.models import import_all_models
import_all_models()
print(json.dumps([t.name for t in Base.metadata.sorted_tables]))
"""

EVERY_MODELS_MODULE = """
import importlib, json, pkgutil
import doorwarden
from doorwarden.db import Base
for info in pkgutil.walk_packages(doorwarden.__path__, "doorwarden."):
    leaf = info.name.rsplit(".", 1)[-1]
    if (leaf == "models" or leaf.endswith("_models")) and not info.name.startswith(
        ("doorwarden.agent.", "doorwarden.migrations.")
    ):
        importlib.import_module(info.name)
print(json.dumps(sorted(Base.metadata.tables)))
"""


def _tables(code: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    loaded: list[str] = json.loads(result.stdout)
    return loaded


def test_import_all_models_registers_every_table_with_its_foreign_keys() -> None:
    # sorted_tables resolves every foreign key: a table whose target was not imported fails
    registered = _tables(THROUGH_IMPORT_ALL)
    declared = _tables(EVERY_MODELS_MODULE)
    assert sorted(registered) == declared
    assert {"agencies", "legal_documents", "municipal_approvals", "users"} <= set(declared)
