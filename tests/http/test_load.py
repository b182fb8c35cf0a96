"""
Integration tests under load: the real C{twistd -n http} against many
loopback clients at once, each bounded in count and time.
"""

from __future__ import annotations

import select
import socket

from twisted.trial.unittest import SynchronousTestCase

from tests.support.twistd import startTwistd
from tests.support.waiting import polling

LOOPBACK = ["--port", "0", "--interface", "127.0.0.1"]
MiB = 1024 * 1024
PIPELINED = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n" * 2048


def stalledPipeliners(
    address: tuple[str, int], clients: int, perClient: int, timeout: float
) -> list[socket.socket]:
    """
    Connect C{clients} sockets that pipeline C{GET /} without ever reading,
    each until the server stops taking its requests (its sends stall for
    half a second) or it has sent C{perClient} bytes; bounded by C{timeout}.
    """
    sockets = []
    for _ in range(clients):
        client = socket.create_connection(address, timeout=5.0)
        # A small receive buffer: the responses back up into the server.
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.setblocking(False)
        sockets.append(client)
    sent = dict.fromkeys(sockets, 0)
    active = set(sockets)
    for remaining in polling(timeout, "the pipelining clients to stall"):
        if not active:
            break
        _, writable, _ = select.select([], list(active), [], min(remaining, 0.5))
        if not writable:
            break  # nobody could send for half a second: all stalled
        for client in writable:
            try:
                sent[client] += client.send(PIPELINED)
            except BlockingIOError:
                continue
            if sent[client] >= perClient:
                active.discard(client)
    return sockets


class PipeliningMemoryTests(SynchronousTestCase):
    """A client that pipelines and never reads costs the server little."""

    def test_nonReadingPipeliners(self) -> None:
        """
        100 clients pipelining C{GET /} and never reading, with the access
        log on (the default), add less than 10 MiB to the server's RSS: it
        stops parsing while a connection's responses are queued.
        """
        twistd = startTwistd(self, "http", LOOPBACK)
        address = twistd.listener("tcp").loopbackAddress
        # Warm up: one client served normally, so the baseline includes
        # what any traffic allocates once.
        with socket.create_connection(address, timeout=5.0) as warm:
            warm.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            warm.recv(4096)
        before = twistd.rss()
        clients = stalledPipeliners(address, 100, 4 * MiB, timeout=30.0)
        for client in clients:
            self.addCleanup(client.close)
        after = twistd.rss()
        self.assertLess(after - before, 10 * MiB, f"{before} -> {after}")
        # Still serving everyone else.
        with socket.create_connection(address, timeout=5.0) as other:
            other.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            self.assertIn(b"Hello World", other.recv(4096))
