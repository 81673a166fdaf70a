"""Command payloads from the broker (anyone on the home network may publish): only the
exact options are taken; and the owner's token file."""

from __future__ import annotations

from pathlib import Path

import pytest

from doorwarden.agent.mqtt.commands import parse_mode, parse_switch, read_token

MODES = ["home", "away", "disarmed"]


@pytest.mark.parametrize(
    ("payload", "expected"),
    [(b"ON", True), (b"OFF", False), (b" ON\n", True), (b"on", None), (b"1", None),
     (b"", None), (b"\xff\xfe", None), (b"ON" * 100, None), (b'{"state":"ON"}', None)],
)  # fmt: skip
def test_switch_payloads(payload: bytes, expected: bool | None) -> None:
    assert parse_switch(payload) is expected


@pytest.mark.parametrize(
    ("payload", "expected"),
    [(b"away", "away"), (b"home\n", "home"), (b"AWAY", None), (b"vacation", None),
     (b"", None), (b"\x00away", None), (b"away" * 40, None)],
)  # fmt: skip
def test_mode_payloads(payload: bytes, expected: str | None) -> None:
    assert parse_mode(payload, MODES) == expected


def test_the_token_file(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("dwt_abcdef123\n")
    assert read_token(path) == "dwt_abcdef123"
    path.write_text("not-a-token")
    with pytest.raises(ValueError, match="does not hold an API token"):
        read_token(path)
    path.write_text("dwt_" + "a" * 600)
    with pytest.raises(ValueError, match="does not hold an API token"):
        read_token(path)
    with pytest.raises(ValueError, match="cannot read"):
        read_token(tmp_path / "missing")
