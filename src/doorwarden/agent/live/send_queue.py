"""Live view's send queue: what the live link (live_link.py) has yet to write to its socket.

Camera threads put their streams' output in and the link's sender thread takes it out,
so a camera thread never waits on the network. When the uplink is slow the queue fills,
and then a camera's fragments are dropped until its next keyframe: a fragment that
depends on a dropped frame would only decode to garbage.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import structlog

log = structlog.get_logger("doorwarden.agent.live.send_queue")


@dataclass(frozen=True)
class _Item:
    camera: int  # -1: about the link, not a camera
    payload: bytes | str
    size: int = 0  # counted against the limit: media only


class SendQueue:
    """What waits for the socket, at most `max_bytes` of media.

    Control messages (init, errors) are always taken: they are small and a stream is
    useless without them. A fragment that does not fit is dropped, and so is every later
    fragment of that camera until a keyframe fits (logged once per episode). Bounded by
    bytes, not count: the queue is latency, and a second of 4K is not a second of VGA.
    """

    def __init__(self, cameras: Sequence[str], max_bytes: int = 1024 * 1024) -> None:
        self.cameras = list(cameras)
        self.max_bytes = max_bytes
        self.dropped = [0] * len(self.cameras)  # fragments dropped, per camera, in total
        self._items: collections.deque[_Item] = collections.deque()
        self._bytes = 0
        self._dropping: dict[int, int] = {}  # camera -> dropped in the current episode
        self._cond = threading.Condition()

    def __len__(self) -> int:
        return len(self._items)

    @property
    def size(self) -> int:
        return self._bytes

    def put_control(self, camera: int, *payloads: bytes | str) -> None:
        """Messages that go out together, in order: the server takes an init segment
        only right after its init message, so another camera's must not come between."""
        with self._cond:
            self._items.extend(_Item(camera, payload) for payload in payloads)
            self._cond.notify()

    def put_fragment(self, camera: int, payload: bytes, keyframe: bool) -> bool:
        """False when dropped."""
        with self._cond:
            fits = not self._bytes or self._bytes + len(payload) <= self.max_bytes
            if camera in self._dropping and not (keyframe and fits):
                self._drop(camera)
                return False
            if not fits:
                self._dropping[camera] = 0
                log.warning(
                    "live.dropping", camera=self.cameras[camera], queued_bytes=self._bytes,
                    effect="frames are dropped until the next keyframe (a slow uplink?)",
                )  # fmt: skip
                self._drop(camera)
                return False
            if camera in self._dropping:
                log.info(
                    "live.resumed", camera=self.cameras[camera],
                    dropped=self._dropping.pop(camera),
                )  # fmt: skip
            self._items.append(_Item(camera, payload, len(payload)))
            self._bytes += len(payload)
            self._cond.notify()
            return True

    def get(self, timeout: float) -> _Item | None:
        with self._cond:
            if not self._items:
                self._cond.wait(timeout)
            if not self._items:
                return None
            item = self._items.popleft()
            self._bytes -= item.size
            return item

    def discard(self, camera: int | None = None) -> None:
        """Forget what waits for one camera (stopped), or for all (disconnected)."""
        with self._cond:
            keep = [i for i in self._items if camera is not None and i.camera != camera]
            self._items = collections.deque(keep)
            self._bytes = sum(i.size for i in keep)
            if camera is None:
                self._dropping.clear()
            else:
                self._dropping.pop(camera, None)
            self._cond.notify_all()

    def _drop(self, camera: int) -> None:
        self._dropping[camera] = self._dropping.get(camera, 0) + 1
        self.dropped[camera] += 1
