"""`<state_dir>/settings.json` (agent/settings/store.py): written whole, read back."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from doorwarden.agent.settings.store import SETTINGS_FILE, SettingsStore, Stored

FRONT = Stored(3, '{"version":3}', "sig-front", {"privacy_zones": [[[0, 0], [1, 0], [1, 1]]]})
BACK = Stored(1, '{"version":1}', "sig-back", {})


def test_saved_entries_come_back_in_a_new_store_as_a_restart_reads_them(tmp_path: Path) -> None:
    store = SettingsStore(tmp_path)
    assert store.load() == {}
    store.save("front", FRONT)
    store.save("back", BACK)
    store.save("front", Stored(4, '{"version":4}', "sig4", {"record.pre_roll_s": 1.0}))
    again = SettingsStore(tmp_path).load()
    assert again["back"] == BACK
    assert again["front"].version == 4 and again["front"].overrides == {"record.pre_roll_s": 1.0}


def test_the_file_is_private_whole_json_and_no_temporary_file_is_left(tmp_path: Path) -> None:
    store = SettingsStore(tmp_path)
    for version in range(1, 20):
        store.save("front", Stored(version, "{}", "s", {"motion.sensitivity": version / 20}))
    path = tmp_path / SETTINGS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["cameras"]["front"]["version"] == 19
    assert [p.name for p in tmp_path.iterdir()] == [SETTINGS_FILE]


def test_a_crash_before_the_rename_leaves_the_previous_file_in_force(tmp_path: Path) -> None:
    store = SettingsStore(tmp_path)
    store.save("front", FRONT)
    # What write_atomic leaves when the process dies before its rename: a temporary file.
    debris = tmp_path / f".tmp-{SETTINGS_FILE}-0123456789ab"
    debris.write_text('{"cameras": {"front": {"version": 99')
    assert SettingsStore(tmp_path).load() == {"front": FRONT}


def test_a_failed_save_changes_nothing_on_disk_or_in_memory(tmp_path: Path) -> None:
    store = SettingsStore(tmp_path)
    store.save("front", FRONT)
    before = (tmp_path / SETTINGS_FILE).read_bytes()
    store.path = tmp_path / "missing-dir" / "x" / SETTINGS_FILE
    (tmp_path / "missing-dir").write_text("a file where the directory should be")
    with pytest.raises(NotADirectoryError):
        store.save("front", BACK)
    assert (tmp_path / SETTINGS_FILE).read_bytes() == before
    store.path = tmp_path / SETTINGS_FILE
    store.save("back", BACK)
    assert SettingsStore(tmp_path).load() == {"front": FRONT, "back": BACK}


def test_a_corrupt_file_or_entry_is_logged_and_left_out(tmp_path: Path) -> None:
    path = tmp_path / SETTINGS_FILE
    path.write_text("{ not json")
    with capture_logs() as logs:
        assert SettingsStore(tmp_path).load() == {}
    assert logs[0]["event"] == "settings.unreadable"
    body = {"cameras": {"front": FRONT.to_json(), "back": {"version": "two"}}}
    path.write_text(json.dumps(body))
    with capture_logs() as logs:
        assert SettingsStore(tmp_path).load() == {"front": FRONT}
    assert [(e["event"], e["camera"]) for e in logs] == [("settings.bad_entry", "back")]
