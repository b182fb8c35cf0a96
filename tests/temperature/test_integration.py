"""
Integration tests: the real C{twistd -n temperature} in a subprocess, driven
over loopback UDP by blocking sockets and by the real client program; and
the service adopting a socket passed as systemd passes one.

Every wait has a deadline and every loop a bound; nothing sleeps.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import time

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from tests.support import forkserver
from tests.support.shared import SharedTwistdTestCase, sharedTwistd
from tests.support.sockets import (
    assertNothingWaiting,
    canBind,
    receiveFrom,
    udpClient,
)
from tests.support.twistd import Bound, startTwistd
from tests.support.waiting import polling
from twisted_services.temperature.conversion import convert

CLIENT_TIMEOUT = 30.0
CLIENT = [sys.executable, "-m", "twisted_services.temperature"]

# Run before twistd as its prefix, this does what systemd (or
# systemd-socket-activate) does between fork and exec: the socket becomes
# descriptor 3, and LISTEN_PID is the pid that twistd will have, since exec
# keeps it. (In sh, "exec 3<&N" would do, but dash takes only N <= 9.)
_ACTIVATE = """\
import os, sys
fd = int(sys.argv[1])
if fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.argv[2], sys.argv[2:])
"""


def startTemperature(
    testCase: SynchronousTestCase, *arguments: str, interface: str = "127.0.0.1"
) -> Bound:
    """Start C{twistd -n temperature} on a free port of C{interface}."""
    twistd = startTwistd(
        testCase,
        "temperature",
        ["--port", "0", "--interface", interface, *arguments],
    )
    return twistd.listener("udp")


def sharedTemperature(testCase: SynchronousTestCase) -> Bound:
    """
    A C{twistd -n temperature} with its default limits on a free loopback
    port, shared by the tests of C{testCase}'s class (see
    L{tests.support.shared}). Its rate limit is per source address, and
    every client here is 127.0.0.1: the class's tests together stay inside
    the default burst (40), with the rate (20/s) refilling it.
    """
    twistd = sharedTwistd(
        testCase, "temperature", ["--port", "0", "--interface", "127.0.0.1"]
    )
    return twistd.listener("udp")


def exchange(client: socket.socket, server: tuple[str, int], request: bytes) -> bytes:
    """Send C{request} to C{server} and return its reply."""
    client.sendto(request, server)
    return receiveFrom(client, server)


def startClient(*arguments: str) -> subprocess.Popen[str]:
    """Start the client program with C{arguments}, its I/O on pipes."""
    return forkserver.Popen(
        [*CLIENT, *arguments],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def finishClient(
    client: subprocess.Popen[str], stdin: str = ""
) -> tuple[int, str, str]:
    """Feed C{stdin} to a started client; its exit status and output."""
    try:
        stdout, stderr = client.communicate(stdin, timeout=CLIENT_TIMEOUT)
    except subprocess.TimeoutExpired:
        client.kill()
        client.communicate()
        raise AssertionError("the client did not exit") from None
    return client.returncode, stdout, stderr


def runClient(*arguments: str, stdin: str = "") -> tuple[int, str, str]:
    """Run the client program to completion."""
    return finishClient(startClient(*arguments), stdin)


class ExchangeTests(SharedTwistdTestCase):
    """Requests from a plain UDP socket, and what comes back."""

    def test_tutorial(self) -> None:
        """The tutorial's exchange: C{100} gets C{212 F}, sent to the sender."""
        server = sharedTemperature(self).loopbackAddress
        client = udpClient(self)
        self.assertEqual(exchange(client, server, b"100"), b"100 C = 212 F\n")
        # As from "echo 100 | nc -u", and the other examples of the issue.
        self.assertEqual(exchange(client, server, b"100\n"), b"100 C = 212 F\n")
        self.assertEqual(exchange(client, server, b" 37.5\r\n"), b"37.5 C = 99.5 F\n")
        self.assertEqual(exchange(client, server, b"98.6F"), b"98.6 F = 37 C\n")
        self.assertEqual(exchange(client, server, b"-40 c"), b"-40 C = -40 F\n")
        self.assertEqual(exchange(client, server, b"0K"), b"0 K = -273.15 C\n")

    def test_garbage(self) -> None:
        """
        Garbage gets a short C{ERROR} reply and the service goes on serving;
        the longest datagram still answered is 512 bytes.
        """
        server = sharedTemperature(self).loopbackAddress
        client = udpClient(self)
        for request, reply in [
            (b"\n", b"ERROR empty\n"),
            (b"hello", b"ERROR not a number\n"),
            (b"\xff\xfe\x00", b"ERROR not UTF-8\n"),
            (b"100 X", b"ERROR unknown unit\n"),
            (b"-500", b"ERROR below absolute zero\n"),
            (b"nan", b"ERROR not finite\n"),
            (b"1e10", b"ERROR out of range\n"),
            (b"\x00" * 512, b"ERROR not a number\n"),
            (b" " * 509 + b"100", b"100 C = 212 F\n"),
        ]:
            answer = exchange(client, server, request)
            self.assertEqual(answer, reply, request[:20])
            self.assertLessEqual(len(answer), 48)
        self.assertEqual(exchange(client, server, b"100"), b"100 C = 212 F\n")

    def test_unanswered(self) -> None:
        """
        An empty datagram, one over 512 bytes, and a reply (a conversion
        or an error, as another converter or an echo would send) get no
        reply: a marker request sent after each is answered, and nothing
        else is (the service answers in order, so a reply to either would
        have come first).
        """
        server = sharedTemperature(self).loopbackAddress
        client = udpClient(self)
        for request in [
            b"",
            b" " * 510 + b"100",
            b"1" * 65000,
            b"ERROR not a number\n",
            b"100 C = 212 F\n",
        ]:
            client.sendto(request, server)
            self.assertEqual(exchange(client, server, b"1"), b"1 C = 33.8 F\n")
            assertNothingWaiting(client)

    def test_thousandRequests(self) -> None:
        """
        1,000 requests from eight client sockets, up to 16 in flight on each,
        are all answered, each to the socket that asked (a request
        unanswered after a second is resent, at most three times).
        """
        server = startTemperature(
            self, "--rate", "100000", "--burst", "100000"
        ).loopbackAddress
        clients = [udpClient(self) for _ in range(8)]
        for client in clients:
            client.setblocking(False)
        # 128 requests in flight fit the service's default socket receive
        # buffer (each small datagram takes about 1 KB of it); 256 did not.
        window, resendAfter, maxSends = 16, 1.0, 4
        # Replies are distinct for distinct integers, so each names its request.
        toSend = {
            client: [str(i).encode() for i in range(n, 1000, len(clients))]
            for n, client in enumerate(clients)
        }
        expected = {
            client: {convert(value.decode()).encode(): value for value in values}
            for client, values in toSend.items()
        }
        inFlight: dict[socket.socket, dict[bytes, tuple[float, int]]] = {
            client: {} for client in clients
        }
        answered: set[bytes] = set()
        resent = 0

        def send(client: socket.socket, value: bytes, sends: int) -> None:
            client.sendto(value, server)
            inFlight[client][value] = (time.monotonic(), sends + 1)

        for remaining in polling(20.0, "1,000 replies"):
            now = time.monotonic()
            for client in clients:
                flying = inFlight[client]
                for value, (sentAt, sends) in list(flying.items()):
                    if now - sentAt > resendAfter:
                        self.assertLess(sends, maxSends, f"{value!r} never answered")
                        resent += 1
                        send(client, value, sends)
                while toSend[client] and len(flying) < window:
                    send(client, toSend[client].pop(0), 0)
            readable, _, _ = select.select(clients, [], [], min(remaining, 0.2))
            for client in readable:
                for _ in range(window * 2):
                    try:
                        data, source = client.recvfrom(64)
                    except BlockingIOError:
                        break
                    self.assertEqual(source, server)
                    value = expected[client][data]  # a KeyError is a wrong reply
                    if inFlight[client].pop(value, None) is not None:
                        answered.add(value)
            if len(answered) == 1000:
                break
        self.assertEqual(answered, {str(i).encode() for i in range(1000)})
        # Loopback rarely drops anything; many resends would mean trouble.
        self.assertLess(resent, 100)


class IPv6Tests(SynchronousTestCase):
    """The service on C{::1}."""

    def setUp(self) -> None:
        if not canBind(socket.AF_INET6, "::1"):
            raise SkipTest("this host cannot bind UDP on ::1")

    def test_IPv6(self) -> None:
        """
        On C{--interface ::1} the service answers IPv6 requests, and the
        client reaches it as C{[::1]:PORT}.
        """
        bound = startTemperature(self, interface="::1")
        self.assertEqual(bound.host, "::1")
        server = bound.loopbackAddress
        client = udpClient(self, socket.AF_INET6)
        self.assertEqual(exchange(client, server, b"98.6F"), b"98.6 F = 37 C\n")
        status, stdout, stderr = runClient("100", "--server", f"[::1]:{bound.port}")
        self.assertEqual((status, stdout, stderr), (0, "100 C = 212 F\n", ""))


class ClientProgramTests(SharedTwistdTestCase):
    """C{python -m twisted_services.temperature}: output and exit status."""

    def test_statuses(self) -> None:
        """
        A conversion is printed with status 0, an C{ERROR} reply goes to
        standard error with status 1, and a name such as C{localhost} is
        resolved; a negative VALUE is not taken for an option.
        """
        port = sharedTemperature(self).port
        server = f"127.0.0.1:{port}"
        # Started together: each waits for its interpreter, not for the others.
        clients = [
            startClient("100", "--server", server),
            startClient("--server", server, "abc"),
            startClient("-40c", "--server", f"localhost:{port}"),
        ]
        results = [finishClient(client) for client in clients]
        self.assertEqual(
            results,
            [
                (0, "100 C = 212 F\n", ""),
                (1, "", "ERROR not a number\n"),
                (0, "-40 C = -40 F\n", ""),
            ],
        )

    def test_noReply(self) -> None:
        """
        Against a port where nobody answers, the request is sent twice (one
        retry), then the client says so and exits with status 2.
        """
        silent = udpClient(self)
        host, port = silent.getsockname()
        status, stdout, stderr = runClient(
            "100", "--server", f"{host}:{port}", "--timeout", "0.4"
        )
        self.assertEqual((status, stdout), (2, ""))
        self.assertEqual(stderr, f"no reply from 127.0.0.1:{port}\n")
        first, source = silent.recvfrom(64)
        self.assertEqual(first, b"100")
        self.assertEqual(silent.recvfrom(64), (b"100", source))
        assertNothingWaiting(silent)

    def test_standardInput(self) -> None:
        """
        VALUE C{-} converts each line of standard input in order, errors on
        standard error; any C{ERROR} makes the status 1.
        """
        port = sharedTemperature(self).port
        status, stdout, stderr = runClient(
            "-", "--server", f"127.0.0.1:{port}", stdin="100\nxyz\r\n98.6F\n0K"
        )
        self.assertEqual(stdout, "100 C = 212 F\n98.6 F = 37 C\n0 K = -273.15 C\n")
        self.assertEqual(stderr, "ERROR not a number\n")
        self.assertEqual(status, 1)


class SocketActivationTests(SynchronousTestCase):
    """The service serves a UDP socket passed as systemd passes sockets."""

    def test_adoptsPassedSocket(self) -> None:
        """
        With C{LISTEN_FDS=1}, C{LISTEN_PID} its own pid, the socket on
        descriptor 3 and C{LISTEN_FDNAMES=temperature}, C{--systemd-socket
        temperature} serves the socket we bound, and only the service holds
        it once we close our copy.
        """
        passed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(passed.close)
        passed.bind(("127.0.0.1", 0))
        address = passed.getsockname()
        fd = passed.fileno()
        twistd = startTwistd(
            self,
            "temperature",
            ["--systemd-socket", "temperature"],
            env={"LISTEN_FDS": "1", "LISTEN_FDNAMES": "temperature"},
            pass_fds=[fd],
            prefix=[sys.executable, "-c", _ACTIVATE, str(fd)],
        )
        self.assertEqual(twistd.listener("udp").loopbackAddress, address)
        passed.close()
        client = udpClient(self)
        self.assertEqual(exchange(client, address, b"100"), b"100 C = 212 F\n")
