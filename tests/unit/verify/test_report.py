"""The report's text pieces: whatever an attacker put in a clip's files reaches the terminal
neither as a control sequence nor as rich markup."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from doorwarden.formats.clip_files import SealedPaths
from doorwarden.verify.clips import Check, ClipReport
from doorwarden.verify.report import clip_lines, safe


def _printed(markup: str) -> str:
    console = Console(record=True, width=300, color_system=None, highlight=False)
    console.print(markup)
    return console.export_text().rstrip("\n")


def test_control_characters_are_shown_escaped() -> None:
    assert _printed(safe("cam\x1b[2J\nfront")) == "cam\\x1b[2J\\nfront"


def test_markup_is_printed_as_text() -> None:
    assert _printed(safe("[red]evil[/]")) == "[red]evil[/]"


def test_long_text_is_cut() -> None:
    assert safe("x" * 500, 10) == "x" * 9 + "…"


def test_a_clip_prints_its_checks_and_only_the_details_that_say_something() -> None:
    clip = ClipReport(
        files=SealedPaths(Path("."), 7),
        device="[bold]cam",
        start_utc="2026-01-01T00:00:00Z",
        duration_ms=2500,
        labels=("motion",),
        checks=[
            Check("signature", "pass", "valid"),
            Check("clip", "fail", "hash differs", code="hash_mismatch"),
        ],
    )
    head, *details = [_printed(line) for line in clip_lines(clip)]
    assert head.startswith("✗ 000000000007  [bold]cam  2026-01-01T00:00:00Z  2.5 s  motion")
    assert "signature ✓" in head and "clip ✗" in head
    assert details == ["      ✗ clip: hash_mismatch: hash differs"]
