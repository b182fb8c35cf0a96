"""
Integration tests: the listening options on the real C{twistd}, over
loopback: the dual-stack default, the listen backlog, the descriptor limit,
and start-up errors a person understands.
"""

from __future__ import annotations

import errno
import os
import resource
import select
import signal
import socket
import sys
from pathlib import Path

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from tests.support.files import temporaryDirectory
from tests.support.sockets import canBind, receiveFrom, recvExactly, udpClient
from tests.support.twistd import STARTUP_TIMEOUT, runTwistd, startTwistd
from tests.support.waiting import polling
from twisted_services.server.options import DEFAULT_BACKLOG

# Long enough for a loopback handshake on a loaded machine, well under the
# 1 s a client waits before resending a dropped SYN.
HANDSHAKE_TIMEOUT = 0.5


def requireIPv6() -> None:
    """Skip unless this host can bind the IPv6 loopback."""
    if not canBind(socket.AF_INET6, "::1"):
        raise SkipTest("this host has no IPv6 loopback")


def echoes(address: tuple[str, int], family: int) -> bytes:
    """Send a line to the echo at C{address} and return what comes back."""
    with socket.socket(family, socket.SOCK_STREAM) as client:
        client.settimeout(10.0)
        client.connect(address)
        client.sendall(b"dual\n")
        return recvExactly(client, 5)


class DualStackTests(SynchronousTestCase):
    """Without C{--interface}, one listener serves IPv6 and IPv4 clients."""

    def test_tcpDefault(self) -> None:
        """
        C{echo --port 0} listens on C{[::]} and echoes to a client on
        C{::1} and one on C{127.0.0.1}.
        """
        requireIPv6()
        twistd = startTwistd(self, "echo", ["--port", "0"])
        bound = twistd.listener("tcp")
        self.assertEqual(bound.host, "::")
        self.assertEqual(len(twistd.bound), 1)
        self.assertEqual(echoes(("::1", bound.port), socket.AF_INET6), b"dual\n")
        self.assertEqual(echoes(("127.0.0.1", bound.port), socket.AF_INET), b"dual\n")

    def test_ipv4Only(self) -> None:
        """C{--interface 0.0.0.0} keeps to IPv4: C{::1} is refused."""
        requireIPv6()
        twistd = startTwistd(self, "echo", ["--port", "0", "--interface", "0.0.0.0"])
        port = twistd.listener("tcp").port
        self.assertEqual(echoes(("127.0.0.1", port), socket.AF_INET), b"dual\n")
        self.assertRaises(
            ConnectionRefusedError, echoes, ("::1", port), socket.AF_INET6
        )

    def test_udpDefault(self) -> None:
        """
        C{temperature --port 0} answers on C{::1} and on C{127.0.0.1}, as
        the README's C{--server '[::1]:1314'} example expects.
        """
        requireIPv6()
        twistd = startTwistd(self, "temperature", ["--port", "0"])
        port = twistd.listener("udp").port
        for family, host in [(socket.AF_INET6, "::1"), (socket.AF_INET, "127.0.0.1")]:
            client = udpClient(self, family)
            client.sendto(b"100", (host, port))
            reply = receiveFrom(client, (host, port))
            self.assertEqual(reply, b"100 C = 212 F\n")


def handshakes(port: int, count: int) -> int:
    """
    Start C{count} connections to C{127.0.0.1:port} at once and return how
    many complete their handshake within L{HANDSHAKE_TIMEOUT} (the kernel
    completes them into the listen queue, accepted or not).
    """
    clients = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for client in clients:
            client.setblocking(False)
            code = client.connect_ex(("127.0.0.1", port))
            assert code in (0, errno.EINPROGRESS), os.strerror(code)
        pending = set(clients)
        done = 0
        try:
            for remaining in polling(HANDSHAKE_TIMEOUT, "handshakes", count + 1):
                _, writable, _ = select.select([], list(pending), [], remaining)
                for client in writable:
                    pending.discard(client)
                    error = client.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    done += error == 0
                if not pending:
                    break
        except AssertionError:
            pass  # time is up: the rest wait on a SYN retransmit
        return done
    finally:
        for client in clients:
            client.close()


class BacklogTests(SynchronousTestCase):
    """
    The listen backlog holds a burst of connects while the server is not
    accepting: here, stopped with SIGSTOP, so the queue alone decides.
    """

    def burst(self, arguments: list[str], count: int) -> int:
        """How many of C{count} connects complete while twistd is stopped."""
        twistd = startTwistd(
            self, "echo", ["--port", "0", "--interface", "127.0.0.1", *arguments]
        )
        port = twistd.listener("tcp").port
        pid = twistd.process.pid
        os.kill(pid, signal.SIGSTOP)
        try:
            return handshakes(port, count)
        finally:
            os.kill(pid, signal.SIGCONT)

    def test_defaultHoldsBurst(self) -> None:
        """
        With the default backlog a burst of 200 connects, four times
        Twisted's default of 50, all complete at once.
        """
        if int(Path("/proc/sys/net/core/somaxconn").read_text()) < 256:
            raise SkipTest("net.core.somaxconn caps the backlog below 256")
        self.assertEqual(DEFAULT_BACKLOG, 1024)
        self.assertEqual(self.burst([], 200), 200)

    def test_overflowBeyondBacklog(self) -> None:
        """
        With C{--backlog 64}, 64 connects fit (Linux queues backlog + 1)
        and a burst of 100 leaves the rest waiting on SYN retransmits.
        """
        self.assertEqual(self.burst(["--backlog", "64"], 64), 64)
        self.assertEqual(self.burst(["--backlog", "64"], 100), 65)


# Runs twistd (argv[3:]) with RLIMIT_NOFILE set to argv[1]:argv[2].
_WITH_LIMIT = (
    "import os, resource, sys; "
    "resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[1]), int(sys.argv[2]))); "
    "os.execv(sys.argv[3], sys.argv[3:])"
)


def openFilesLimit(pid: int) -> tuple[int, int]:
    """The soft and hard C{Max open files} of process C{pid}."""
    with open(f"/proc/{pid}/limits") as limits:
        for line in limits:
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return int(soft), int(hard)
    raise AssertionError("no Max open files line")


class DescriptorLimitTests(SynchronousTestCase):
    """twistd raises its descriptor limit for --max-connections."""

    def start(self, soft: int, hard: int, connections: int):  # type: ignore[no-untyped-def]
        if resource.getrlimit(resource.RLIMIT_NOFILE)[1] < hard:
            raise SkipTest(f"this process's hard descriptor limit is below {hard}")
        return startTwistd(
            self,
            "echo",
            [
                "--port",
                "0",
                "--interface",
                "127.0.0.1",
                "--max-connections",
                str(connections),
            ],
            prefix=[sys.executable, "-c", _WITH_LIMIT, str(soft), str(hard)],
        )

    def test_raised(self) -> None:
        """A soft limit of 256 is raised to hold 1000 connections; no warning."""
        twistd = self.start(256, 4096, 1000)
        soft, hard = openFilesLimit(twistd.process.pid)
        self.assertGreaterEqual(soft, 1000)
        self.assertEqual(hard, 4096)
        self.assertNotIn("descriptor limit", twistd.log())

    def test_warnsOnce(self) -> None:
        """A hard limit of 512 cannot hold 1000 connections: one warning."""
        twistd = self.start(256, 512, 1000)
        line = twistd.waitForLog("descriptor limit", STARTUP_TIMEOUT)
        self.assertIn("is 512", line)
        self.assertEqual(openFilesLimit(twistd.process.pid), (512, 512))
        self.assertEqual(twistd.log().count("descriptor limit"), 1)


class StartupMessageTests(SynchronousTestCase):
    """Start-up mistakes are told in words a person understands."""

    def test_portNotANumber(self) -> None:
        """C{--port abc} names the option and what it wants."""
        result = runTwistd("echo", ["--port", "abc"])
        self.assertEqual(result.returncode, 1)
        self.assertIn("--port: 'abc' is not a port number (0-65535)", result.stdout)
        self.assertNotIn("invalid literal", result.stdout + result.stderr)

    def test_unixSocketInMissingDirectory(self) -> None:
        """A UNIX socket in a missing directory names the directory."""
        missing = temporaryDirectory(self) / "missing"
        result = runTwistd("echo", ["--listen", f"unix:{missing}/echo.sock"])
        output = result.stdout + result.stderr
        self.assertEqual(result.returncode, 1, output)
        self.assertIn(f"directory {missing} does not exist", output)
        self.assertNotIn(".lock", output)
