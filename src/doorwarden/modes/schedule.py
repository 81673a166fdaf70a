"""A household's weekly schedule: switch to a mode at a local time on given weekdays.

Times are wall-clock times in the household's time zone (zoneinfo), so "07:00 home" is
07:00 in winter and in summer. Around a daylight-saving change: a time that does not
exist that day (the hour skipped in spring) happens at the same distance after the
change (02:30 becomes 03:30), and a time that happens twice (the hour repeated in
autumn) switches once, the first time. Pure functions: no database, no clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

HHMM = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
MAX_ENTRIES = 50
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # weekday() order


@dataclass(frozen=True)
class Entry:
    days: frozenset[int]  # 0 Monday .. 6 Sunday
    at: time
    mode: str

    def as_dict(self) -> dict[str, Any]:
        return {"days": sorted(self.days), "at": self.at.strftime("%H:%M"), "mode": self.mode}


def entries_of(raw: list[dict[str, Any]]) -> list[Entry]:
    """Stored entries (already validated by the schema) back into Entries."""
    out = []
    for item in raw:
        match = HHMM.match(str(item.get("at", "")))
        if match is None:
            continue
        at = time(int(match.group(1)), int(match.group(2)))
        out.append(Entry(frozenset(int(d) for d in item.get("days", [])), at, str(item["mode"])))
    return out


def zone_of(name: str) -> ZoneInfo:
    """The household's zone; UTC for a name this machine's zone database lacks."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _moment(day: date, at: time, zone: ZoneInfo) -> datetime:
    # fold=0: a repeated time is its first occurrence; a skipped one maps past the gap.
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def _moments(
    entries: list[Entry], zone: ZoneInfo, around: datetime, days: range
) -> list[tuple[datetime, str]]:
    today = around.astimezone(zone).date()
    found = []
    for offset in days:
        day = today + timedelta(days=offset)
        for entry in entries:
            if day.weekday() in entry.days:
                found.append((_moment(day, entry.at, zone), entry.mode))
    return found


def last_switch(entries: list[Entry], zone: ZoneInfo, at: datetime) -> tuple[datetime, str] | None:
    """The schedule's latest switch at or before `at` (within the last eight days)."""
    past = [m for m in _moments(entries, zone, at, range(-8, 1)) if m[0] <= at]
    return max(past, key=lambda m: m[0]) if past else None


def next_switch(entries: list[Entry], zone: ZoneInfo, at: datetime) -> tuple[datetime, str] | None:
    """The schedule's first switch after `at` (within the next eight days)."""
    future = [m for m in _moments(entries, zone, at, range(9)) if m[0] > at]
    return min(future, key=lambda m: m[0]) if future else None
