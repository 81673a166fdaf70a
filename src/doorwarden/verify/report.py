"""The pieces of a verification report as terminal text, shared by the two printers
(`doorwarden verify DIR` in cli/verify.py, `doorwarden verify PACKAGE.zip` in
cli/verify_package.py), which otherwise would have to borrow from each other.

Every string in a report may come from an attacker's files: a device id could carry
terminal escapes or rich markup such as `[red]`, so every such string goes through
`safe` before it is printed with rich.
"""

from __future__ import annotations

from rich.markup import escape

from doorwarden.verify.clips import Check, ClipReport

MARKS = {"pass": "[green]✓[/]", "fail": "[red]✗[/]", "skip": "[dim]-[/]", "warn": "[yellow]![/]"}


def safe(text: object, limit: int = 200) -> str:
    """Printable and markup-free, cut to `limit` characters."""
    cleaned = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in str(text))
    if len(cleaned) > limit:
        cleaned = cleaned[: limit - 1] + "…"
    return escape(cleaned)


def shown(check: Check) -> bool:
    """Details worth a line: problems, warnings, and skips that say something."""
    return check.status in ("fail", "warn") or check.code is not None


def clip_lines(clip: ClipReport) -> list[str]:
    """One clip: a head line with every check's mark, then a line per check worth one."""
    duration = "?" if clip.duration_ms is None else f"{clip.duration_ms / 1000:.1f} s"
    labels = ", ".join(clip.labels) or "-"
    marks = "  ".join(f"{c.name} {MARKS[c.status]}" for c in clip.checks)
    head = (
        f"{MARKS['pass' if clip.ok else 'fail']} {clip.sequence:012d}  "
        f"{safe(clip.device or '?', 40)}  {safe(clip.start_utc or '?', 40)}  {duration}  "
        f"{safe(labels, 60)}  {marks}"
    )
    details = [
        f"      {MARKS[c.status]} {c.name}: {safe(c.code) + ': ' if c.code else ''}"
        f"{safe(c.message)}"
        for c in clip.checks
        if shown(c)
    ]
    return [head, *details]
