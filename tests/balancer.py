"""An ordered failover TCP balancer on loopback, in front of several server instances.

    balancer = FailoverBalancer([("127.0.0.1", a), ("127.0.0.1", b), ("127.0.0.1", c)])
    port = balancer.start()

Each new connection goes to the first backend that accepts it (A, else B, else C): a
backend whose process died refuses the connection and is skipped, as a load balancer's
health check would skip it, so an agent connected through it lands on A and, after A is
killed, reconnects to B. Connections already open stay on their backend until it closes
them (a killed process closes them all).

It is tests/tcp_proxy.py's TcpProxy with a list of targets instead of one: the same
selector thread, the same refuse/cut/stall commands. Only the dial differs.
"""

from __future__ import annotations

import socket

from tests.tcp_proxy import TcpProxy, _Pair


class FailoverBalancer(TcpProxy):
    def __init__(self, backends: list[tuple[str, int]], *, connect_timeout: float = 2.0) -> None:
        if not backends:
            raise ValueError("a balancer needs at least one backend")
        super().__init__(*backends[0], connect_timeout=connect_timeout)
        self.backends = list(backends)
        # Which backend each accepted connection went to, in order (index into backends;
        # -1: none accepted it): lets a test see the agent moved from A to B.
        self.placements: list[int] = []

    def _dial(self, pair: _Pair) -> bool:
        for index, target in enumerate(self.backends):
            try:
                upstream = socket.create_connection(target, timeout=self.connect_timeout)
            except OSError:
                continue  # refused (the process is gone) or unreachable: try the next one
            upstream.setblocking(False)
            upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pair.upstream = upstream
            pair.pending[upstream] = bytearray()
            self._pairs[upstream] = pair
            self.placements.append(index)
            return True
        self.placements.append(-1)
        self._close_pair(pair, reset=False)  # every backend is down: say so at once
        return False
