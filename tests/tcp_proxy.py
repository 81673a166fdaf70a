"""A TCP proxy on loopback that can fail on command, for fault tests against real services
(PostgreSQL, a doorwarden server): the service stays up, the path to it breaks.

    proxy = TcpProxy("127.0.0.1", 5432)
    port = proxy.start()     # listens on 127.0.0.1:<port>, forwards to 127.0.0.1:5432
    proxy.refuse()           # the service is down: connections closed, new ones refused
    proxy.cut()              # the network dropped them: connections closed, new ones accepted
    proxy.stall()            # a black hole: connections accepted and held, nothing forwarded
    proxy.restore()          # forward normally again
    proxy.close()

One selector thread (a daemon) does all the work, so the commands need no locks: each is
handed to that thread and returns once it has taken effect (after refuse() returns a
connect is refused). Usable from sync and async tests alike; the commands block for
milliseconds only.
"""

from __future__ import annotations

import contextlib
import queue
import selectors
import socket
import struct
import threading
from collections.abc import Callable
from types import TracebackType

_CHUNK = 64 * 1024
_FORWARD, _STALL, _REFUSE = "forward", "stall", "refuse"


class _Pair:
    """A client connection and its connection upstream (None while stalled before the
    upstream was dialled). pending[s] holds bytes read from the other side, not yet
    written to s: while it is non-empty the other side is not read (backpressure)."""

    def __init__(self, client: socket.socket) -> None:
        self.client = client
        self.upstream: socket.socket | None = None
        self.pending: dict[socket.socket, bytearray] = {client: bytearray()}
        self.eof = False  # one side closed: flush what is pending to the other, then close

    def peer(self, sock: socket.socket) -> socket.socket | None:
        return self.upstream if sock is self.client else self.client

    def sockets(self) -> list[socket.socket]:
        return [self.client] if self.upstream is None else [self.client, self.upstream]


class TcpProxy:
    def __init__(self, host: str, port: int, *, connect_timeout: float = 5.0) -> None:
        self.target = (host, port)
        self.connect_timeout = connect_timeout
        self.port = 0
        self.accepted = 0  # connections accepted so far (lets a test see a client came)
        self._mode = _FORWARD
        self._selector = selectors.DefaultSelector()
        self._listener: socket.socket | None = None
        self._pairs: dict[socket.socket, _Pair] = {}
        self._commands: queue.Queue[tuple[Callable[[], None], threading.Event]] = queue.Queue()
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread: threading.Thread | None = None
        self._running = False

    # -- the public commands ------------------------------------------------------------

    def start(self) -> int:
        """Listen on a free loopback port and forward to the target; returns the port."""
        if self._thread is not None:
            raise RuntimeError("the proxy is already started")
        self._listen()
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._running = True
        self._thread = threading.Thread(target=self._loop, name="tcp-proxy", daemon=True)
        self._thread.start()
        return self.port

    def refuse(self) -> None:
        """The service is down: close every connection and refuse new ones (the listening
        socket is closed, so a connect gets ECONNREFUSED, as from a stopped server)."""
        self._command(self._do_refuse)

    def cut(self, *, reset: bool = False) -> None:
        """Close every connection (FIN, as when the server process dies; with reset=True
        an RST, as from a middlebox that forgot them) and keep accepting new ones."""
        self._command(lambda: self._do_cut(reset))

    def stall(self) -> None:
        """Accept and hold connections, forward nothing either way (a black hole)."""
        self._command(self._do_stall)

    def restore(self) -> None:
        """Forward normally again: held connections resume, new ones are accepted (on the
        same port after refuse())."""
        self._command(self._do_restore)

    def close(self) -> None:
        if self._thread is None:
            self._wake_r.close()
            self._wake_w.close()
            self._selector.close()
            return
        self._command(self._do_close)
        self._thread.join(timeout=10)
        self._thread = None
        self._wake_r.close()
        self._wake_w.close()
        self._selector.close()

    @property
    def connections(self) -> int:
        """Connections open through the proxy now (read from another thread: a snapshot)."""
        return len({id(pair) for pair in list(self._pairs.values())})

    def __enter__(self) -> TcpProxy:
        if self._thread is None:
            self.start()
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()

    def _command(self, action: Callable[[], None]) -> None:
        if self._thread is None or not self._thread.is_alive():
            raise RuntimeError("the proxy is not running")
        done = threading.Event()
        self._commands.put((action, done))
        self._wake_w.send(b"x")
        if not done.wait(timeout=10):
            raise RuntimeError("the proxy did not carry out the command")

    # -- run in the proxy's thread only -------------------------------------------------

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))  # 0 the first time; the same port after
        listener.listen(128)
        listener.setblocking(False)
        self.port = listener.getsockname()[1]
        self._listener = listener

    def _do_refuse(self) -> None:
        self._mode = _REFUSE
        if self._listener is not None:
            self._selector.unregister(self._listener)
            self._listener.close()  # connections waiting in its backlog get an RST
            self._listener = None
        self._close_all(reset=False)

    def _do_cut(self, reset: bool) -> None:
        self._close_all(reset=reset)

    def _do_stall(self) -> None:
        self._reopen()
        self._mode = _STALL
        for pair in set(self._pairs.values()):
            self._watch(pair)

    def _do_restore(self) -> None:
        self._reopen()
        self._mode = _FORWARD
        for pair in set(self._pairs.values()):
            if pair.upstream is None and not self._dial(pair):
                continue
            self._watch(pair)

    def _reopen(self) -> None:
        """Listen again (on the same port) after refuse()."""
        if self._listener is None:
            self._listen()
            assert self._listener is not None
            self._selector.register(self._listener, selectors.EVENT_READ)

    def _do_close(self) -> None:
        self._running = False
        if self._listener is not None:
            self._selector.unregister(self._listener)
            self._listener.close()
            self._listener = None
        self._close_all(reset=False)

    def _loop(self) -> None:
        if self._listener is not None:
            self._selector.register(self._listener, selectors.EVENT_READ)
        while self._running:
            for key, events in self._selector.select(timeout=1.0):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is self._wake_r:
                    self._run_commands()
                elif sock is self._listener:
                    self._accept()
                elif sock in self._pairs:  # not closed by an earlier event of this round
                    self._service(self._pairs[sock], sock, events)
                if not self._running:
                    break

    def _run_commands(self) -> None:
        with contextlib.suppress(BlockingIOError):
            self._wake_r.recv(4096)
        while True:
            try:
                action, done = self._commands.get_nowait()
            except queue.Empty:
                return
            try:
                action()
            finally:
                done.set()

    def _accept(self) -> None:
        assert self._listener is not None
        try:
            client, _addr = self._listener.accept()
        except BlockingIOError:
            return
        self.accepted += 1
        client.setblocking(False)
        pair = _Pair(client)
        self._pairs[client] = pair
        # Stalled: the upstream is dialled on restore(), so a black hole holds nothing there.
        if self._mode == _FORWARD and not self._dial(pair):
            return
        self._watch(pair)

    def _dial(self, pair: _Pair) -> bool:
        try:
            upstream = socket.create_connection(self.target, timeout=self.connect_timeout)
        except OSError:
            self._close_pair(pair, reset=False)  # the service itself is down: say so at once
            return False
        upstream.setblocking(False)
        upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pair.upstream = upstream
        pair.pending[upstream] = bytearray()
        self._pairs[upstream] = pair
        return True

    def _watch(self, pair: _Pair) -> None:
        """Register each socket for what it may do now: read while its peer has nothing
        pending (and we forward), write while something is pending for it."""
        for sock in pair.sockets():
            events = 0
            if self._mode == _FORWARD and pair.upstream is not None:
                peer = pair.peer(sock)
                assert peer is not None
                if not pair.pending[peer] and not pair.eof:
                    events |= selectors.EVENT_READ
                if pair.pending[sock]:
                    events |= selectors.EVENT_WRITE
            registered = sock in self._selector.get_map()
            if events and registered:
                self._selector.modify(sock, events)
            elif events:
                self._selector.register(sock, events)
            elif registered:
                self._selector.unregister(sock)

    def _service(self, pair: _Pair, sock: socket.socket, events: int) -> None:
        peer = pair.peer(sock)
        assert peer is not None
        try:
            if events & selectors.EVENT_WRITE and pair.pending[sock]:
                sent = sock.send(pair.pending[sock])
                del pair.pending[sock][:sent]
            if events & selectors.EVENT_READ:
                data = sock.recv(_CHUNK)
                if not data:
                    pair.eof = True
                else:
                    pair.pending[peer] += data
                    sent = peer.send(pair.pending[peer])  # most often all of it, at once
                    del pair.pending[peer][:sent]
        except BlockingIOError:
            pass
        except OSError:
            self._close_pair(pair, reset=False)
            return
        if pair.eof and not any(pair.pending.values()):
            self._close_pair(pair, reset=False)
            return
        self._watch(pair)

    def _close_all(self, *, reset: bool) -> None:
        for pair in set(self._pairs.values()):
            self._close_pair(pair, reset=reset)

    def _close_pair(self, pair: _Pair, *, reset: bool) -> None:
        for sock in pair.sockets():
            self._pairs.pop(sock, None)
            if sock in self._selector.get_map():
                self._selector.unregister(sock)
            if reset:  # linger on, timeout 0: close() sends an RST
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
