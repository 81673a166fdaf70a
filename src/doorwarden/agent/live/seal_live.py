"""Which of a link's camera streams are sealed end to end, and with which session.

A stream is sealed when the device state says the household is end-to-end ("e2e") at
the moment the stream starts (its init segment): a fresh `LiveSealer` (crypto/live.py),
so a session key never outlives one stream. At each keyframe the link asks `changed`:
when the household switched mode or its member keys changed since the stream started
(a member removed, a key rotated), the stream restarts with a new init, so a switch to
end-to-end stops the clear stream within a GOP and a removed member's key opens nothing
after it. When a stream must be sealed and cannot be (no device key, no
member key), it is blocked: its fragments are dropped here, before the send queue, and
the viewers are told why (`E2EUnavailable`). Standard mode costs one dict lookup a frame.
"""

from __future__ import annotations

from collections.abc import Callable

from doorwarden.agent.delivery.identity import DeviceIdentity
from doorwarden.crypto.keys import SigningKey
from doorwarden.crypto.live import LiveSealer

MESSAGE = "This household is end-to-end encrypted and the camera cannot seal its video: {why}."


class E2EUnavailable(Exception):
    """An e2e stream that cannot be sealed; str() is what its viewers read."""


class StreamSeals:
    def __init__(
        self, identity_of: Callable[[], DeviceIdentity], signing_key: SigningKey | None
    ) -> None:
        self.identity_of = identity_of
        self.signing_key = signing_key
        self._streams: dict[int, LiveSealer | None] = {}  # absent: plain; None: blocked
        self._started_for: dict[int, tuple[str, tuple[bytes, ...]]] = {}

    @property
    def sealing(self) -> bool:
        """The household is end-to-end now (nothing in clear may reach the server)."""
        return self.identity_of().mode == "e2e"

    def new_stream(self, camera: int) -> LiveSealer | None:
        """A stream (re)starts: None in standard mode, else its fresh sealer; raises
        E2EUnavailable (the stream is then blocked until its next start)."""
        identity = self.identity_of()
        self._started_for[camera] = _basis(identity)
        if identity.mode != "e2e":
            self._streams.pop(camera, None)
            return None
        self._streams[camera] = None
        if self.signing_key is None:
            raise E2EUnavailable(MESSAGE.format(why="it was started without its device key"))
        if not identity.recipients:
            why = "no member of the household has an end-to-end key yet"
            raise E2EUnavailable(MESSAGE.format(why=why))
        try:
            sealer = LiveSealer(
                [public for _, public in identity.recipients], identity.device_id, self.signing_key
            )
        except ValueError as exc:
            raise E2EUnavailable(MESSAGE.format(why=exc)) from None
        self._streams[camera] = sealer
        return sealer

    def changed(self, camera: int) -> bool:
        """The mode or the member keys differ from the stream's start: restart it."""
        started = self._started_for.get(camera)
        return started is not None and started != _basis(self.identity_of())

    def fragment(self, camera: int, kind: int, data: bytes) -> bytes | None:
        """What goes on the wire for a fragment: as muxed (plain), sealed, or None (a
        blocked stream: dropped)."""
        if camera not in self._streams:
            return data
        sealer = self._streams[camera]
        return None if sealer is None else sealer.seal(kind, data)


def _basis(identity: DeviceIdentity) -> tuple[str, tuple[bytes, ...]]:
    """What a stream's sealing depends on: the mode, and in e2e the member keys."""
    if identity.mode != "e2e":
        return (identity.mode, ())
    return (identity.mode, tuple(sorted(public for _, public in identity.recipients)))
