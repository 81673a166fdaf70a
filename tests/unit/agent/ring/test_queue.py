"""The durable queue of rings and the per-camera debounce."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from doorwarden.agent.ring.debounce import Debouncer
from doorwarden.agent.ring.queue import EventQueue, RingEvent


def test_events_survive_a_new_queue_oldest_first_with_their_time(tmp_path: Path) -> None:
    at = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
    late, early = (
        RingEvent.new("front", "gpio", at),
        RingEvent.new("back", "cli", at - timedelta(1)),
    )
    queue = EventQueue(tmp_path)
    queue.put(late)
    queue.put(early)
    assert stat_mode(tmp_path / "events") == 0o700
    again = EventQueue(tmp_path).pending()  # as after a restart
    assert [(e.id, e.camera, e.at, e.source) for e in again] == [
        (early.id, "back", early.at, "cli"),
        (late.id, "front", at, "gpio"),
    ]
    assert queue.remove(late.id) and not queue.remove(late.id)
    assert [e.id for e in queue.pending()] == [early.id]


def test_a_torn_write_and_foreign_files_are_never_sent(tmp_path: Path) -> None:
    queue = EventQueue(tmp_path)
    good = RingEvent.new("front", "cli")
    queue.put(good)
    (queue.directory / ".tmp-x.json-abc").write_text("{")  # a crash mid-write
    bad = queue.directory / "5d0c1f4e-4a2b-4c7e-9a61-1f0e8b9c2d3a.json"
    bad.write_text("not json")
    other = RingEvent.new("front", "cli")
    (queue.directory / f"{RingEvent.new('x', 'cli').id}.json").write_text(
        json.dumps(other.message())  # a file whose name is not its id
    )
    assert [e.id for e in queue.pending()] == [good.id]
    assert bad.with_suffix(".bad").exists()
    queue.recover()
    assert not list(queue.directory.glob(".tmp-*"))


@pytest.mark.parametrize(
    "body",
    [
        [], {"id": "../../etc/passwd", "camera": "front", "at": "2026-01-01T00:00:00+00:00",
             "source": "cli"},
        {"id": "5D0C1F4E-4A2B-4C7E-9A61-1F0E8B9C2D3A", "camera": "front",
         "at": "2026-01-01T00:00:00+00:00", "source": "cli"},
        {"id": "5d0c1f4e-4a2b-4c7e-9a61-1f0e8b9c2d3a", "camera": "Front!",
         "at": "2026-01-01T00:00:00+00:00", "source": "cli"},
        {"id": "5d0c1f4e-4a2b-4c7e-9a61-1f0e8b9c2d3a", "camera": "front",
         "at": "2026-01-01T00:00:00", "source": "cli"},
        {"id": "5d0c1f4e-4a2b-4c7e-9a61-1f0e8b9c2d3a", "camera": "front",
         "at": "2026-01-01T00:00:00+00:00", "source": "telepathy"},
    ],
)  # fmt: skip
def test_malformed_events_are_refused(body: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each is a different problem
        RingEvent.from_message(body)


def test_an_ack_with_a_bad_id_removes_nothing(tmp_path: Path) -> None:
    queue = EventQueue(tmp_path)
    queue.put(RingEvent.new("front", "cli"))
    with pytest.raises(ValueError):  # noqa: PT011
        queue.remove("../events")
    assert len(queue.pending()) == 1


def test_debounce_counts_a_flood_once_per_window_per_camera() -> None:
    now = [100.0]
    debounce = Debouncer(3.0, clock=lambda: now[0])
    accepted = []
    for step in range(100):  # 10 s of presses every 0.1 s on the front door
        now[0] = 100.0 + step * 0.1
        accepted.append(debounce.allow("front"))
    assert sum(accepted) == 4  # at 0, 3, 6 and 9 s
    assert debounce.allow("back")  # another camera has its own window
    assert debounce.dropped["front"] == 96


def stat_mode(path: Path) -> int:
    return os.stat(path).st_mode & 0o777
