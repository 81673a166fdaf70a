"""The fault-injecting TCP proxy the fault tests rely on (tests/tcp_proxy.py): each
command does what it says to real sockets, against a real echo server."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator

import pytest

from tests.tcp_proxy import TcpProxy


@pytest.fixture
def echo_port() -> Iterator[int]:
    """A threaded echo server on loopback."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)  # accept() wakes to see `stop`: close() would not wake it
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        conn.settimeout(None)
        with conn, contextlib.suppress(OSError):
            while data := conn.recv(65536):
                conn.sendall(data)

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    server.close()
    thread.join(timeout=5)


@pytest.fixture
def proxy(echo_port: int) -> Iterator[TcpProxy]:
    with TcpProxy("127.0.0.1", echo_port) as running:
        yield running


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def _echo(sock: socket.socket, data: bytes) -> bytes:
    sock.sendall(data)
    received = bytearray()
    while len(received) < len(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    return bytes(received)


def test_forwards_both_ways_including_large_transfers(proxy: TcpProxy) -> None:
    with _connect(proxy.port) as sock:
        assert _echo(sock, b"hello") == b"hello"
        big = os.urandom(4 * 1024 * 1024)  # more than the socket buffers: backpressure
        assert _echo(sock, big) == big


def test_refuse_closes_connections_and_refuses_new_ones_until_restored(proxy: TcpProxy) -> None:
    sock = _connect(proxy.port)
    assert _echo(sock, b"a") == b"a"
    proxy.refuse()
    with sock:
        assert sock.recv(10) == b""  # the connection was closed
    with pytest.raises(ConnectionRefusedError):
        _connect(proxy.port)
    proxy.restore()
    with _connect(proxy.port) as again:  # the same port, forwarding again
        assert _echo(again, b"back") == b"back"


@pytest.mark.parametrize("reset", [False, True])
def test_cut_closes_connections_and_keeps_accepting(proxy: TcpProxy, reset: bool) -> None:
    sock = _connect(proxy.port)
    assert _echo(sock, b"a") == b"a"
    proxy.cut(reset=reset)
    with sock:
        if reset:
            with pytest.raises(ConnectionResetError):
                sock.recv(10)
        else:
            assert sock.recv(10) == b""
    with _connect(proxy.port) as fresh:
        assert _echo(fresh, b"still here") == b"still here"


def test_stall_holds_connections_until_restored(proxy: TcpProxy) -> None:
    held = _connect(proxy.port)
    assert _echo(held, b"a") == b"a"
    proxy.stall()
    held.sendall(b"old")
    new = _connect(proxy.port)  # accepted, but forwarded nowhere
    new.sendall(b"new")
    for sock in (held, new):
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            sock.recv(10)
        sock.settimeout(5)
    proxy.restore()
    with held, new:  # what was sent meanwhile goes through, on both
        assert held.recv(10) == b"old"
        assert new.recv(10) == b"new"


def test_stall_after_refuse_accepts_again(proxy: TcpProxy) -> None:
    proxy.refuse()
    proxy.stall()
    with _connect(proxy.port) as sock:  # accepted (not refused), held
        sock.sendall(b"x")
        sock.settimeout(0.3)
        with pytest.raises(TimeoutError):
            sock.recv(10)
        sock.settimeout(5)
        proxy.restore()
        assert sock.recv(10) == b"x"


def test_upstream_down_closes_the_client(echo_port: int) -> None:
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        nobody = spare.getsockname()[1]  # bound, not listening: connects are refused
        with TcpProxy("127.0.0.1", nobody) as proxy, _connect(proxy.port) as sock:
            assert sock.recv(10) == b""
            assert proxy.accepted == 1


def test_commands_need_a_running_proxy(echo_port: int) -> None:
    proxy = TcpProxy("127.0.0.1", echo_port)
    with pytest.raises(RuntimeError):
        proxy.refuse()
    proxy.start()
    proxy.close()
    with pytest.raises(RuntimeError):
        proxy.restore()
