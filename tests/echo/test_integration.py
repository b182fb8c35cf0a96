"""
Integration tests: the real C{twistd -n echo} in a subprocess, driven over
loopback TCP, UDP and UNIX sockets.

Every wait has a deadline and every loop a step limit; nothing sleeps.
"""

from __future__ import annotations

import hashlib
import os
import select
import signal
import socket
import time

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from tests.support.files import temporaryDirectory
from tests.support.shared import SharedTwistdTestCase, sharedTwistd
from tests.support.sockets import (
    MiB,
    canBind,
    closedByPeer,
    recvExactly,
    recvUntilEOF,
    udpClient,
)
from tests.support.twistd import Bound, Twistd, runTwistd, startTwistd
from tests.support.waiting import polling

LOOPBACK = ["--interface", "127.0.0.1"]


class EchoTestCase(SynchronousTestCase):
    """Starting C{twistd -n echo} and talking to it, for the tests below."""

    def startEcho(self, arguments: list[str], listeners: int = 1) -> Twistd:
        return startTwistd(self, "echo", arguments, listeners)

    def connect(self, bound: Bound) -> socket.socket:
        client = bound.connect(timeout=5.0)
        self.addCleanup(client.close)
        return client

    def assertEchoes(self, client: socket.socket, data: bytes) -> None:
        client.sendall(data)
        self.assertEqual(recvExactly(client, len(data)), data)

    def stalledClient(self, bound: Bound, timeout: float = 5.0) -> socket.socket:
        """
        A client that has written until the server stopped reading from it,
        so its connection has a full write buffer and a paused producer.
        """
        client = self.connect(bound)
        client.setblocking(False)
        chunk = b"x" * 65536
        for _ in polling(timeout, "stalling a client"):
            _, writable, _ = select.select([], [client], [], 0.3)
            if not writable:
                return client
            try:
                client.send(chunk)
            except BlockingIOError:
                pass
        raise AssertionError("unreachable")  # polling() raises first


class ServingTests(EchoTestCase, SharedTwistdTestCase):
    """What C{twistd -n echo} serves, and to how many clients."""

    def sharedEcho(self) -> Bound:
        """
        The listener of an echo with default options that the tests of this
        class share: each uses connections of its own and leaves none open.
        """
        return sharedTwistd(self, "echo", ["--port", "0", *LOOPBACK]).listener("tcp")

    def test_logsBoundPortAndServesIt(self) -> None:
        """C{--port 0} binds a free port, logs it, and echoes on it."""
        bound = self.sharedEcho()
        self.assertEqual((bound.service, bound.host), ("echo", "127.0.0.1"))
        self.assertNotEqual(bound.port, 0)
        self.assertEchoes(self.connect(bound), b"hello, echo\r\n\x00\xff")

    def test_concurrentClients(self) -> None:
        """Fifty clients sending in turn each get back exactly their own bytes."""
        bound = self.sharedEcho()
        clients = [self.connect(bound) for _ in range(50)]
        sent = [b""] * len(clients)
        # Small enough in all that no one blocks on unread echoes.
        for turn in range(4):
            for index, client in enumerate(clients):
                message = b"%d/%d:" % (index, turn) + os.urandom(64 + 97 * index)
                client.sendall(message)
                sent[index] += message
        for index, client in enumerate(clients):
            self.assertEqual(recvExactly(client, len(sent[index])), sent[index])

    def test_largePayload(self) -> None:
        """
        16 MiB sent while reading the echo comes back whole and in order,
        then the server closes after the client's half-close.
        """
        bound = self.sharedEcho()
        client = self.connect(bound)
        client.setblocking(False)
        payload = memoryview(os.urandom(16 * MiB))
        sent = received = 0
        echoed = hashlib.sha256()
        for remaining in polling(20.0, "16 MiB round trip"):
            writers = [client] if sent < len(payload) else []
            readable, writable, _ = select.select([client], writers, [], remaining)
            if writable:
                sent += client.send(payload[sent : sent + 256 * 1024])
                if sent == len(payload):
                    client.shutdown(socket.SHUT_WR)
            if readable:
                chunk = client.recv(256 * 1024)
                if not chunk:
                    break
                received += len(chunk)
                echoed.update(chunk)
        self.assertEqual(received, len(payload))
        self.assertEqual(echoed.hexdigest(), hashlib.sha256(payload).hexdigest())

    def test_halfClose(self) -> None:
        """After the client shuts down writing, its data is echoed, then EOF."""
        bound = self.sharedEcho()
        client = self.connect(bound)
        client.sendall(b"hi\n")
        client.shutdown(socket.SHUT_WR)
        self.assertEqual(recvUntilEOF(client), b"hi\n")

    def test_unixAndTCP6Listeners(self) -> None:
        """
        C{--listen unix:PATH} and C{--listen tcp6:0:interface=\\:\\:1} both
        serve, from one process.
        """
        if not canBind(socket.AF_INET6, "::1"):
            raise SkipTest("no IPv6 loopback")
        path = str(temporaryDirectory(self, "echo-") / "echo.sock")
        twistd = self.startEcho(
            ["--listen", f"unix:{path}", "--listen", r"tcp6:0:interface=\:\:1"],
            listeners=2,
        )
        unix, tcp6 = twistd.listener("unix"), twistd.listener("tcp")
        self.assertEqual(unix.path, path)
        self.assertEqual(tcp6.host, "::1")
        self.assertEqual(tcp6.family, socket.AF_INET6)
        self.assertEchoes(self.connect(unix), b"over a UNIX socket\n")
        self.assertEchoes(self.connect(tcp6), b"over IPv6\n")

    def test_maxConnections(self) -> None:
        """
        Past C{--max-connections} a connection is accepted and closed at
        once, and logged; those already open keep working, and a freed slot
        is usable again.
        """
        twistd = self.startEcho(["--port", "0", *LOOPBACK, "--max-connections", "2"])
        bound = twistd.listener("tcp")
        first, second = self.connect(bound), self.connect(bound)
        self.assertEchoes(first, b"one")
        self.assertEchoes(second, b"two")

        third = self.connect(bound)
        self.assertTrue(closedByPeer(third, timeout=2.0), "third closed at once")
        twistd.waitForLog(r"echo: refused 1 connection\(s\): limit of 2 reached")
        self.assertEchoes(first, b"still one")
        self.assertEchoes(second, b"still two")

        # The server has dropped the first once the client sees it close.
        first.shutdown(socket.SHUT_WR)
        self.assertEqual(recvUntilEOF(first), b"")
        self.assertEchoes(self.connect(bound), b"three")

    def test_idleTimeout(self) -> None:
        """C{--idle-timeout} closes a connection whose client stays silent."""
        bound = self.startEcho(
            ["--port", "0", *LOOPBACK, "--idle-timeout", "0.3"]
        ).listener("tcp")
        client = self.connect(bound)
        self.assertEchoes(client, b"then silence")
        self.assertTrue(closedByPeer(client, timeout=3.0), "idle client closed")


class DatagramTests(EchoTestCase):
    """C{--udp-port}: RFC 862's datagram echo, and its reflection guard."""

    def startUDP(self, *arguments: str) -> Bound:
        twistd = self.startEcho(
            ["--port", "0", *LOOPBACK, "--udp-port", "0", *arguments], listeners=2
        )
        return twistd.listener("udp")

    def test_echoesDatagram(self) -> None:
        """A datagram from an unprivileged source port is echoed to it."""
        bound = self.startUDP()
        self.assertEqual(bound.host, "127.0.0.1")
        client = udpClient(self)
        self.assertGreaterEqual(client.getsockname()[1], 1024)
        client.sendto(b"ping \x00\xff", bound.loopbackAddress)
        data, source = client.recvfrom(65536)
        self.assertEqual((data, source), (b"ping \x00\xff", bound.loopbackAddress))

    def test_rateLimitPerSource(self) -> None:
        """
        One source gets at most C{--udp-burst} replies at once; another
        source is answered meanwhile.
        """
        if not canBind(socket.AF_INET, "127.0.0.2"):
            raise SkipTest("127.0.0.2 is not a loopback address here")
        bound = self.startUDP("--udp-rate", "0.01", "--udp-burst", "3")
        flooder = udpClient(self)
        for number in range(10):
            flooder.sendto(b"%d" % number, bound.loopbackAddress)
        # The server reads its one socket in order: once the other source's
        # echo is back, every reply to the flooder has been sent.
        other = udpClient(self, host="127.0.0.2")
        other.sendto(b"marker", bound.loopbackAddress)
        self.assertEqual(other.recv(65536), b"marker")
        flooder.setblocking(False)
        replies = []
        for _ in range(10):
            try:
                replies.append(flooder.recv(65536))
            except BlockingIOError:
                break
        self.assertEqual(replies, [b"0", b"1", b"2"])


class BackpressureTests(EchoTestCase):
    """A client that writes and never reads cannot make the server buffer."""

    # Without flow control loopback takes gigabytes within this deadline.
    DEADLINE = 10.0
    # Stalled: neither the client's writes nor the server's memory have
    # moved (grown by more than RSS_SLACK) for this long.
    QUIET_SECONDS = 1.0
    RSS_SLACK = MiB
    MAX_GROWTH = 50 * MiB
    MAX_WRITTEN = 64 * MiB

    def test_clientThatNeverReads(self) -> None:
        """
        Writing without reading, the client is soon stalled: its writes stop
        being accepted and the server's memory stops growing, under 50 MiB
        above where it was; other clients are still served, and once the
        client reads, every byte it sent comes back.
        """
        twistd = self.startEcho(["--port", "0", *LOOPBACK])
        bound = twistd.listener("tcp")
        self.assertEchoes(self.connect(bound), b"warm up")
        baseline = peak = quietRSS = twistd.rss()

        writer = self.connect(bound)
        writer.setblocking(False)
        block = memoryview(os.urandom(MiB))
        sentHash = hashlib.sha256()
        written = 0
        start = quietSince = time.monotonic()
        # Each idle step waits 0.1s in select; polling() fails the test if
        # the client is still not stalled at the deadline.
        for remaining in polling(self.DEADLINE, "the client stalling"):
            _, writable, _ = select.select([], [writer], [], min(0.1, remaining))
            now = time.monotonic()
            if writable:
                offset = written % len(block)
                try:
                    count = writer.send(block[offset:])
                except BlockingIOError:
                    count = 0
                if count:
                    sentHash.update(block[offset : offset + count])
                    written += count
                    quietSince = now
            rss = twistd.rss()
            peak = max(peak, rss)
            if rss > quietRSS + self.RSS_SLACK:
                quietRSS, quietSince = rss, now
            if peak - baseline >= self.MAX_GROWTH or written >= self.MAX_WRITTEN:
                break  # failing: stop before the server eats the machine
            if now - quietSince >= self.QUIET_SECONDS:
                break

        self.assertLess(peak - baseline, self.MAX_GROWTH, "server RSS growth")
        self.assertLess(written, self.MAX_WRITTEN, "bytes the client could write")
        self.assertLess(quietSince - start, self.DEADLINE / 2, "seconds until stalled")
        self.assertEchoes(self.connect(bound), b"others are served")

        writer.setblocking(True)
        writer.shutdown(socket.SHUT_WR)
        echoed = recvUntilEOF(writer, limit=written, timeout=20.0)
        self.assertEqual(len(echoed), written)
        self.assertEqual(hashlib.sha256(echoed).digest(), sentHash.digest())


class StoppingTests(EchoTestCase):
    """SIGTERM and SIGINT stop the server promptly and cleanly."""

    def assertStopsCleanly(self, signum: int) -> None:
        twistd = self.startEcho(["--port", "0", *LOOPBACK])
        bound = twistd.listener("tcp")
        idle = self.connect(bound)
        self.assertEchoes(idle, b"open")
        self.stalledClient(bound)

        started = time.monotonic()
        status = twistd.stop(signum, timeout=10.0)
        elapsed = time.monotonic() - started

        output = twistd.log()
        self.assertIn(status, (0, -signum), output)
        self.assertLess(elapsed, 5.0, output)
        self.assertNotIn("Traceback", output)
        self.assertIn("Server Shut Down.", output)
        self.assertTrue(closedByPeer(idle, timeout=1.0), "open client closed")

    def test_sigterm(self) -> None:
        """SIGTERM with open and stalled connections: a quick, clean exit."""
        self.assertStopsCleanly(signal.SIGTERM)

    def test_sigint(self) -> None:
        """SIGINT (Ctrl-C) with open and stalled connections: the same."""
        self.assertStopsCleanly(signal.SIGINT)


class StartupFailureTests(SynchronousTestCase):
    """A listener that cannot be set up ends twistd with one line and status 1."""

    def assertFailsWithOneLine(self, arguments: list[str], *expected: str) -> None:
        result = runTwistd("echo", arguments)
        output = result.stdout + result.stderr
        self.assertEqual(result.returncode, 1, output)
        self.assertNotIn("Traceback", output)
        lines = [line for line in output.splitlines() if expected[0] in line]
        self.assertEqual(len(lines), 1, output)
        for text in expected:
            self.assertIn(text, lines[0])

    def test_badListenDescription(self) -> None:
        """An unparseable C{--listen} is named in a one-line error."""
        self.assertFailsWithOneLine(
            ["--listen", "tcp:notaport"], "bad listen description", "'tcp:notaport'"
        )

    def test_unknownEndpointType(self) -> None:
        """An unknown endpoint type is named in a one-line error."""
        self.assertFailsWithOneLine(
            ["--listen", "nosuchtype:1"], "bad listen description", "nosuchtype"
        )

    def test_addressInUse(self) -> None:
        """A port already bound gives a one-line error naming it."""
        taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        self.assertFailsWithOneLine(
            ["--port", str(port), *LOOPBACK],
            "cannot listen",
            f"tcp:{port}:interface=127.0.0.1",
            "Address already in use",
        )

    def test_secondListenerInUse(self) -> None:
        """
        When a later listener cannot bind, the process still exits with
        status 1 and one line, though an earlier listener had bound.
        """
        taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        self.assertFailsWithOneLine(
            ["--port", "0", *LOOPBACK, "--udp-port", str(port)],
            "cannot listen",
            f"udp:{port}:interface=127.0.0.1",
            "Address already in use",
        )
