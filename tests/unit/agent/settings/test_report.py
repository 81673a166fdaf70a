"""`doorwarden agent status`: each camera's web-settable fields, value and source."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from doorwarden.agent.settings.store import SettingsStore, Stored
from doorwarden.cli.app import app as cli_app

ZONE = [[0.0, 0.0], [0.5, 0.0], [0.5, 1.0]]


def test_status_says_which_value_came_from_the_web_and_which_from_the_file(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    config = tmp_path / "agent.yaml"
    config.write_text(json.dumps({
        "state_dir": str(state), "spool_dir": str(tmp_path / "spool"),
        "cameras": [{"name": "front", "source": {"kind": "synthetic"}},
                    {"name": "back", "source": {"kind": "synthetic"},
                     "detect": {"kind": "hog", "alert": "person_only"}}],
    }))  # fmt: skip
    store = SettingsStore(state)
    store.save(
        "front", Stored(4, "{}", "sig", {"privacy_zones": [ZONE], "motion.sensitivity": 0.25})
    )
    store.save("back", Stored(2, "{}", "sig", {"detect.person": False}))  # no longer valid
    result = CliRunner().invoke(cli_app, ["agent", "status", "--config", str(config)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    front = lines[lines.index("  front: web settings v4") + 1 :]
    assert any("privacy_zones" in x and "1 polygon(s)" in x and "web (v4)" in x for x in front)
    assert any("motion.sensitivity" in x and "0.25" in x and "web (v4)" in x for x in front)
    assert any(x.split()[0] == "record.pre_roll_s" and x.endswith("file") for x in front)
    # A kept document the YAML now refuses is said, and the file's values shown.
    assert any("web settings v2 not applied" in x and "detect.person" in x for x in lines)
    without_config = CliRunner().invoke(cli_app, ["agent", "status", "--state", str(state)])
    assert "motion.sensitivity" in without_config.output and "web (v4)" in without_config.output
