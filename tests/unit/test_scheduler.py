"""Job locks: every server instance, of every release, must compute the same lock for a
job, or two instances would both lead it."""

from __future__ import annotations

from doorwarden.scheduler import lock_key


def test_lock_keys_are_fixed_64_bit_numbers_named_by_the_job() -> None:
    # Pinned: a change here lets an old and a new instance run a job at the same time.
    assert lock_key("clips.retention") == -1601542656310625048
    assert lock_key("legal.deadlines") == 4425593957152466927
    assert lock_key("audit.log_append") == -3673967504965795928
    keys = {lock_key(f"job {n}") for n in range(1000)}
    assert len(keys) == 1000
    assert all(-(2**63) <= key < 2**63 for key in keys)
