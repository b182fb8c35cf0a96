"""
Tests for L{twisted_services.server.dualstack}: one C{::} socket that serves
IPv4 clients too, through Twisted's own listeners where the host makes IPv6
sockets dual-stack by default, and through a socket made here where it does
not.
"""

from __future__ import annotations

import fcntl
import os
import socket

from twisted.internet.error import CannotListenError
from twisted.internet.protocol import DatagramProtocol, Factory, Protocol
from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from tests.support.files import temporaryDirectory
from tests.support.listeners import FakePort
from twisted_services.server.dualstack import (
    DualStackServerEndpoint,
    hostHasIPv6,
    listenDualStackUDP,
    v6onlyByDefault,
)


class InspectingReactor(MemoryReactorClock):
    """
    Adopts sockets by looking at them: each adopted descriptor's family,
    C{IPV6_V6ONLY} and address are recorded, and for a listening stream
    socket, whether an IPv4 client's connection completes.
    """

    def __init__(self) -> None:
        super().__init__()
        self.adopted: list[dict[str, object]] = []

    def _inspect(self, fd: int, kind: int) -> dict[str, object]:
        with socket.socket(socket.AF_INET6, kind, fileno=os.dup(fd)) as sock:
            seen: dict[str, object] = {
                "v6only": sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY),
                "host": sock.getsockname()[0],
                "blocking": not fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK,
            }
            port = sock.getsockname()[1]
        if kind == socket.SOCK_STREAM:
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                seen["ipv4Connected"] = True
        return seen

    def adoptStreamPort(self, fd, family, factory):  # type: ignore[no-untyped-def]
        self.adopted.append(self._inspect(fd, socket.SOCK_STREAM))
        return FakePort(None)

    def adoptDatagramPort(self, fd, family, protocol, maxPacketSize=8192):  # type: ignore[no-untyped-def]
        self.adopted.append(self._inspect(fd, socket.SOCK_DGRAM))
        return FakePort(None)


class DualStackTestCase(SynchronousTestCase):
    """Skipped on a host without IPv6."""

    def setUp(self) -> None:
        if not hostHasIPv6():
            raise SkipTest("this host has no IPv6")


class V6OnlyByDefaultTests(SynchronousTestCase):
    """L{v6onlyByDefault} reads the kernel's C{bindv6only}."""

    def test_values(self) -> None:
        """C{1} is IPv6 only, C{0} dual-stack, no such file dual-stack."""
        directory = temporaryDirectory(self)
        for text, expected in [("1\n", True), ("0\n", False)]:
            (directory / "bindv6only").write_text(text)
            self.assertEqual(v6onlyByDefault(str(directory / "bindv6only")), expected)
        self.assertFalse(v6onlyByDefault(str(directory / "missing")))


class StreamTests(DualStackTestCase):
    """L{DualStackServerEndpoint} listens on C{::} for IPv4 clients too."""

    def test_twistedWhereDualStackByDefault(self) -> None:
        """Where the host is dual-stack by default, Twisted's listenTCP does it."""
        reactor = MemoryReactorClock()
        factory = Factory.forProtocol(Protocol)
        endpoint = DualStackServerEndpoint(reactor, 8888, 1024, v6only=False)
        self.successResultOf(endpoint.listen(factory))
        self.assertEqual(reactor.tcpServers, [(8888, factory, 1024, "::")])

    def test_ownSocketWhereV6OnlyByDefault(self) -> None:
        """
        Where IPv6 sockets are IPv6 only by default, a socket with
        C{IPV6_V6ONLY} off is adopted, and an IPv4 client reaches it.
        """
        reactor = InspectingReactor()
        endpoint = DualStackServerEndpoint(reactor, 0, 16, v6only=True)
        self.successResultOf(endpoint.listen(Factory.forProtocol(Protocol)))
        self.assertEqual(
            reactor.adopted,
            [{"v6only": 0, "host": "::", "blocking": False, "ipv4Connected": True}],
        )

    def test_portInUse(self) -> None:
        """A port in use fails with Twisted's L{CannotListenError}."""
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as held:
            held.bind(("::", 0))
            held.listen()
            endpoint = DualStackServerEndpoint(
                InspectingReactor(), held.getsockname()[1], 16, v6only=True
            )
            self.failureResultOf(
                endpoint.listen(Factory.forProtocol(Protocol)), CannotListenError
            )


class DatagramTests(DualStackTestCase):
    """L{listenDualStackUDP} serves C{::}, IPv4 senders included."""

    def test_twistedWhereDualStackByDefault(self) -> None:
        """Where the host is dual-stack by default, Twisted's listenUDP does it."""
        from twisted_services.testing import UDPMemoryReactor

        reactor = UDPMemoryReactor()
        protocol = DatagramProtocol()
        listenDualStackUDP(reactor, 1314, protocol, v6only=False)
        self.assertEqual(reactor.udpServers, [(1314, protocol, "::")])

    def test_ownSocketWhereV6OnlyByDefault(self) -> None:
        """Elsewhere a socket with C{IPV6_V6ONLY} off is adopted."""
        reactor = InspectingReactor()
        listenDualStackUDP(reactor, 0, DatagramProtocol(), v6only=True)
        self.assertEqual(
            reactor.adopted, [{"v6only": 0, "host": "::", "blocking": False}]
        )
