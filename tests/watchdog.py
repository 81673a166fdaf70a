"""A test that hangs says where: past WATCHDOG_S, every thread's stack and every pending
asyncio task's are printed on the real stderr (which pytest-xdist's workers share with the
run's output), and pytest-timeout (pyproject.toml, `timeout`) ends the test a minute later.

Thread stacks alone say little here: the tests share one event loop per worker, so a hung
async test shows its main thread idle in `select`, and the await that never returns is
only in the tasks' stacks. DOORWARDEN_TEST_WATCHDOG_S changes the delay (0: off).
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import gc
import os
import sys
import threading
from collections.abc import Iterator

import pytest

WATCHDOG_S = float(os.environ.get("DOORWARDEN_TEST_WATCHDOG_S", "540"))


def _pending_tasks() -> list[asyncio.Task[object]]:
    # asyncio.all_tasks() sees only this thread's loop; the hung one runs in another.
    return [o for o in gc.get_objects() if isinstance(o, asyncio.Task) and not o.done()]


def _await_chain(coro: object) -> list[str]:
    """Where a coroutine waits, outermost first: its frame, then what it awaits, down to
    the innermost (Task.print_stack shows only the outermost frame of a coroutine)."""
    lines: list[str] = []
    while coro is not None and len(lines) < 40:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            lines.append(f"{frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return lines


def dump(nodeid: str, config: pytest.Config) -> None:
    capture = config.pluginmanager.getplugin("capturemanager")
    with contextlib.suppress(Exception):  # the captured fds are the test's; ours is stderr
        capture.suspend_global_capture(in_=True)
    out = sys.__stderr__ or sys.stderr
    out.write(f"\n==== watchdog: {nodeid} still running after {WATCHDOG_S:.0f} s ====\n")
    out.flush()
    faulthandler.dump_traceback(file=out, all_threads=True)
    for task in _pending_tasks():
        out.write(f"\n---- {task.get_name()}: awaiting\n")
        with contextlib.suppress(Exception):
            out.writelines(f"  {line}\n" for line in _await_chain(task.get_coro()))
    out.write(f"==== watchdog: end of {nodeid} ====\n")
    out.flush()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    if WATCHDOG_S <= 0:
        return (yield)
    timer = threading.Timer(WATCHDOG_S, dump, args=(item.nodeid, item.config))
    timer.daemon = True
    timer.start()
    try:
        return (yield)
    finally:
        timer.cancel()
