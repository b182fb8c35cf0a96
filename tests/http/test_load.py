"""
Integration tests under load: the real C{twistd -n http} against many
loopback clients at once, each bounded in count and time.
"""

from __future__ import annotations

import select
import signal
import socket
import time
from collections.abc import Callable

from twisted.trial.unittest import SynchronousTestCase

from tests.support.files import temporaryDirectory
from tests.support.twistd import Twistd, startTwistd
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


def keepAliveLoad(
    address: tuple[str, int], clients: int, duration: float, stop: Callable[[], None]
) -> dict[str, int]:
    """
    Run C{clients} keep-alive clients, each sending its next C{GET /} as
    soon as it has the answer to the last, for about C{duration} seconds
    before calling C{stop} and on until every connection is closed
    (bounded). Count how each connection ended: C{clean} (EOF with no
    request outstanding, or right after the answer to the last one), or
    C{reset} (a reset, or EOF with a request sent but not answered once a
    response has begun: a partial answer).
    """
    one = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"
    buffers: dict[socket.socket, bytes] = {}
    for _ in range(clients):
        client = socket.create_connection(address, timeout=5.0)
        client.setblocking(False)
        # Two deep, as a browser pipelines: one request always in flight.
        client.send(one * 2)
        buffers[client] = b""
    outcome = {"clean": 0, "reset": 0, "answered": 0, "unanswered": 0}
    stopAt = time.monotonic() + duration
    stopped = False
    for remaining in polling(duration + 15.0, "the clients to be closed"):
        if not buffers:
            break
        if not stopped and time.monotonic() >= stopAt:
            stop()
            stopped = True
        readable, _, _ = select.select(list(buffers), [], [], min(remaining, 0.2))
        for client in readable:
            try:
                chunk = client.recv(65536)
            except ConnectionResetError:
                outcome["reset"] += 1
                del buffers[client]
                client.close()
                continue
            if not chunk:
                # EOF: fine between requests; a request sent and never
                # answered was closed on without being read (no reset).
                if buffers[client]:
                    outcome["reset"] += 1  # a partial response
                else:
                    outcome["unanswered"] += 1
                    outcome["clean"] += 1
                del buffers[client]
                client.close()
                continue
            data = buffers[client] + chunk
            if data.endswith(b"Hello World"):
                answered = data.count(b"Hello World")
                outcome["answered"] += answered
                buffers[client] = b""
                if b"Connection: close" in data:
                    continue  # the server closes next
                try:
                    client.send(one * answered)
                except (BrokenPipeError, ConnectionResetError):
                    outcome["reset"] += 1
                    del buffers[client]
                    client.close()
            else:
                buffers[client] = data
    return outcome


class GracefulStopTests(SynchronousTestCase):
    """SIGTERM under load answers or cleanly closes on every client."""

    def fiftyClients(self) -> tuple[Twistd, list[socket.socket]]:
        """twistd, and 50 keep-alive connections that each sent a C{GET /}."""
        twistd = startTwistd(self, "http", [*LOOPBACK, "--no-access-log"])
        address = twistd.listener("tcp").loopbackAddress
        clients = []
        for _ in range(50):
            client = socket.create_connection(address, timeout=5.0)
            self.addCleanup(client.close)
            client.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            clients.append(client)
        return twistd, clients

    def test_sigtermUnderKeepAliveLoad(self) -> None:
        """
        50 busy keep-alive clients when SIGTERM arrives: none gets a reset;
        each request is answered (the last with C{Connection: close}) or the
        connection closes cleanly, and twistd exits cleanly.
        """
        twistd = startTwistd(self, "http", [*LOOPBACK, "--no-access-log"])
        address = twistd.listener("tcp").loopbackAddress
        outcome = keepAliveLoad(
            address,
            50,
            duration=1.0,
            stop=lambda: twistd.process.send_signal(signal.SIGTERM),
        )
        status = twistd.process.wait(timeout=15.0)
        output = twistd.log()
        self.assertIn(status, (0, -signal.SIGTERM), output)
        self.assertNotIn("Traceback", output)
        self.assertGreater(outcome["answered"], 500, outcome)
        self.assertEqual(outcome["reset"], 0, outcome)
        self.assertEqual(outcome["clean"], 50, outcome)

    def test_sigtermWithRequestsInFlight(self) -> None:
        """
        SIGTERM while 50 keep-alive clients each have a response not yet read
        and a next request the server has not read: every client reads its
        response whole, then either an answer with C{Connection: close} or a
        clean close; none gets a reset, which would destroy the unread
        response. The server is stopped (SIGSTOP) while the requests land,
        so they are in its socket buffers when the SIGTERM is handled.
        """
        twistd, clients = self.fiftyClients()
        one = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"
        for client in clients:
            # The response is here, left unread.
            for remaining in polling(5.0, "a response to arrive"):
                client.settimeout(remaining)
                if client.recv(4096, socket.MSG_PEEK).endswith(b"Hello World"):
                    break
        twistd.process.send_signal(signal.SIGSTOP)
        try:
            for client in clients:
                client.sendall(one)
            twistd.process.send_signal(signal.SIGTERM)
        finally:
            twistd.process.send_signal(signal.SIGCONT)
        outcomes = []
        for client in clients:
            received = b""
            try:
                for remaining in polling(10.0, "the server to close"):
                    client.settimeout(remaining)
                    chunk = client.recv(65536)
                    if not chunk:
                        break
                    received += chunk
            except ConnectionResetError:
                outcomes.append(("reset", received.count(b"Hello World")))
                continue
            closing = received.count(b"Connection: close")
            outcomes.append(("clean", received.count(b"Hello World") - closing))
        # Every connection: the first response, and the second answered with
        # Connection: close or not at all; never a reset.
        self.assertEqual({outcome for outcome, _ in outcomes}, {"clean"}, outcomes)
        self.assertLessEqual({answered for _, answered in outcomes}, {1, 2}, outcomes)
        status = twistd.process.wait(timeout=15.0)
        self.assertIn(status, (0, -signal.SIGTERM), twistd.log())

    def test_sigtermRequestCrossingTheClose(self) -> None:
        """
        SIGTERM closes 50 idle keep-alive connections; each client, not yet
        having noticed, sends a request: it finds the connection cleanly
        closed (it can still send, and reads EOF), never reset.
        """
        twistd, clients = self.fiftyClients()
        one = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"
        for client in clients:
            self.assertTrue(client.recv(4096).endswith(b"Hello World"))
        twistd.process.send_signal(signal.SIGTERM)
        for client in clients:
            # The server's FIN is here, not yet read.
            client.settimeout(5.0)
            self.assertEqual(client.recv(4096, socket.MSG_PEEK), b"")
        resets = 0
        for client in clients:
            try:
                client.send(one)
                client.send(one)  # fails if the first drew a reset
                client.recv(4096)
            except (BrokenPipeError, ConnectionResetError):
                resets += 1
            client.close()
        self.assertEqual(resets, 0)
        status = twistd.process.wait(timeout=15.0)
        self.assertIn(status, (0, -signal.SIGTERM), twistd.log())


class AccessLogFileTests(SynchronousTestCase):
    """C{--access-log FILE} under load, stopped by SIGTERM."""

    def test_sigtermLosesNoLine(self) -> None:
        """
        Every request answered before SIGTERM, 2,000 of them on 4 keep-alive
        connections, has its line in the file once twistd has exited, and
        nothing goes to twistd's own log.
        """
        path = temporaryDirectory(self) / "access.log"
        twistd = startTwistd(self, "http", [*LOOPBACK, "--access-log", str(path)])
        address = twistd.listener("tcp").loopbackAddress
        one = b"GET /health HTTP/1.1\r\nHost: t\r\nUser-Agent: load\r\n\r\n"
        clients = [socket.create_connection(address, timeout=5.0) for _ in range(4)]
        for client in clients:
            self.addCleanup(client.close)
        for _ in range(500):
            for client in clients:
                client.sendall(one)
            for client in clients:
                data = b""
                for remaining in polling(5.0, "a response"):
                    client.settimeout(remaining)
                    data += client.recv(4096)
                    if data.endswith(b"}"):
                        break
        status = twistd.stop(signal.SIGTERM, timeout=15.0)
        self.assertIn(status, (0, -signal.SIGTERM), twistd.log())
        lines = path.read_bytes().splitlines()
        self.assertEqual(len(lines), 2000)
        self.assertTrue(
            all(b'"GET /health HTTP/1.1" 200 ' in each for each in lines), lines[:3]
        )
        self.assertNotIn("GET /health", twistd.log())

    def test_sighupReopens(self) -> None:
        """
        After logrotate renames the file and sends SIGHUP, the next lines go
        to a new file by the same name; the renamed one keeps the old lines.
        """
        path = temporaryDirectory(self) / "access.log"
        twistd = startTwistd(self, "http", [*LOOPBACK, "--access-log", str(path)])
        address = twistd.listener("tcp").loopbackAddress

        def get(target: str) -> None:
            with socket.create_connection(address, timeout=5.0) as client:
                client.sendall(
                    f"GET {target} HTTP/1.1\r\nHost: t\r\n"
                    "Connection: close\r\n\r\n".encode()
                )
                client.recv(4096)

        get("/?before")
        path.rename(path.with_suffix(".log.1"))
        twistd.process.send_signal(signal.SIGHUP)
        twistd.waitForLog(r"SIGHUP: reopened the log files of .*AccessLog")
        get("/?after")
        status = twistd.stop(signal.SIGTERM, timeout=15.0)
        self.assertIn(status, (0, -signal.SIGTERM), twistd.log())
        [old] = path.with_suffix(".log.1").read_bytes().splitlines()
        [new] = path.read_bytes().splitlines()
        self.assertIn(b'"GET /?before HTTP/1.1" 200 11', old)
        self.assertIn(b'"GET /?after HTTP/1.1" 200 11', new)
