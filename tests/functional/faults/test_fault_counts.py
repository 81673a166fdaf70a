"""The fault harness's reading of an agent's log: what it counts as evicted must add up."""

from __future__ import annotations

from pathlib import Path

from bench.fault_counts import read_evictions

# As an agent logs a full disk: three sealed clips evicted at once, then one episode of
# unsealed evictions that grows (the same record, logged again with its count so far),
# two of whose three were recordings discarded before their commit.
LOG = """\
16:10:10 [warning] spool.evicted sequences=[0, 1, 2]
16:10:10 [info] spool.eviction_recorded at=16:10:06 count=3 first=0 last=2
16:10:10 [warning] spool.evicted plain=True
16:10:10 [info] spool.eviction_recorded at=16:10:10 count=1 first=None last=None
16:10:14 [warning] spool.recording_discarded camera=cam error="full"
16:10:14 [info] spool.eviction_recorded at=16:10:10 count=2 first=None last=None
16:10:18 [warning] spool.recording_discarded camera=cam error="full"
16:10:18 [info] spool.eviction_recorded at=16:10:10 count=3 first=None last=None
16:11:00 [info] spool.eviction_recorded at=16:11:00 count=1 first=None last=None
"""


def test_a_growing_eviction_record_counts_once(tmp_path: Path) -> None:
    log = tmp_path / "agent.log"
    log.write_text(LOG)
    logged, reported, unsealed, _ = read_evictions(log)
    assert logged == 4  # three sealed, one plain
    assert reported == {0, 1, 2}
    # The first episode's last line (3) less its two discards, plus a second episode (1).
    assert unsealed == 2
