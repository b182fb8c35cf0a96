"""
Tests for the public test helpers in L{twisted_services.testing}.
"""

from __future__ import annotations

import doctest
import socket

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.protocol import DatagramProtocol, Factory, Protocol
from twisted.internet.testing import StringTransportWithDisconnection
from twisted.trial.unittest import SynchronousTestCase

from twisted_services import testing
from twisted_services.testing import (
    SERVER_ADDRESS,
    ConnectionRefused,
    FakeDatagramTransport,
    ListeningDatagramPort,
    UDPMemoryReactor,
    attachDatagram,
    connect,
    connectMany,
    peerAddress,
)


class Recorder(Protocol):
    """Remembers how its connection began and ended."""

    made = False
    lost = None

    def connectionMade(self) -> None:
        self.made = True

    def connectionLost(self, reason: object) -> None:
        self.lost = reason


class RefusingFactory(Factory):
    """A factory that refuses every connection."""

    def buildProtocol(self, addr: object) -> None:
        return None


class StartRecorder(DatagramProtocol):
    """Remembers how often it was started and stopped."""

    noisy = False
    started = 0
    stopped = 0

    def startProtocol(self) -> None:
        self.started += 1

    def stopProtocol(self) -> None:
        self.stopped += 1

    def datagramReceived(self, datagram: bytes, addr: tuple[str, int]) -> None:
        self.transport.write(datagram.upper(), addr)


class PeerAddressTests(SynchronousTestCase):
    """L{peerAddress} makes distinct client addresses."""

    def test_distinctPorts(self) -> None:
        """Each call gives a port no earlier call gave."""
        ports = {peerAddress().port for _ in range(100)}
        self.assertEqual(len(ports), 100)

    def test_ipv4(self) -> None:
        """An IPv4 host gives a TCP L{IPv4Address} on that host."""
        address = peerAddress("127.0.2.1")
        self.assertIsInstance(address, IPv4Address)
        self.assertEqual((address.type, address.host), ("TCP", "127.0.2.1"))

    def test_ipv6(self) -> None:
        """An IPv6 host gives a TCP L{IPv6Address}."""
        address = peerAddress("::1")
        self.assertIsInstance(address, IPv6Address)
        self.assertEqual((address.type, address.host), ("TCP", "::1"))


class ConnectTests(SynchronousTestCase):
    """L{connect} builds a protocol from a factory on an in-memory transport."""

    def test_connected(self) -> None:
        """The protocol is built by the factory and its connection is made."""
        factory = Factory.forProtocol(Recorder)
        protocol, transport = connect(factory)
        self.assertIsInstance(protocol, Recorder)
        self.assertIs(protocol.factory, factory)
        self.assertTrue(protocol.made)
        self.assertIs(protocol.transport, transport)
        self.assertIs(transport.protocol, protocol)

    def test_addresses(self) -> None:
        """The transport reports the given peer, and the server address as host."""
        peer = IPv6Address("TCP", "2001:db8::1", 5000)
        _, transport = connect(Factory.forProtocol(Recorder), peer)
        self.assertEqual(transport.getPeer(), peer)
        self.assertEqual(transport.getHost(), SERVER_ADDRESS)

    def test_hostAddress(self) -> None:
        """A host address can be given too."""
        host = IPv4Address("TCP", "127.1.0.1", 1)
        _, transport = connect(Factory.forProtocol(Recorder), host=host)
        self.assertEqual(transport.getHost(), host)

    def test_givenTransport(self) -> None:
        """A transport of the caller's is used as it is, wired to the protocol."""
        mine = StringTransportWithDisconnection()
        protocol, transport = connect(Factory.forProtocol(Recorder), transport=mine)
        self.assertIs(transport, mine)
        self.assertIs(mine.protocol, protocol)
        self.assertIs(protocol.transport, mine)

    def test_writes(self) -> None:
        """What the protocol writes is in C{transport.value()}."""
        protocol, transport = connect(Factory.forProtocol(Recorder))
        protocol.transport.write(b"out")
        self.assertEqual(transport.value(), b"out")

    def test_loseConnection(self) -> None:
        """Closing the transport calls the protocol's C{connectionLost}."""
        protocol, transport = connect(Factory.forProtocol(Recorder))
        transport.loseConnection()
        self.assertIsNotNone(protocol.lost)
        self.assertFalse(transport.connected)

    def test_refused(self) -> None:
        """A factory returning L{None} makes L{connect} raise L{ConnectionRefused}."""
        peer = peerAddress()
        error = self.assertRaises(ConnectionRefused, connect, RefusingFactory(), peer)
        self.assertEqual(error.args, (peer,))

    def test_connectMany(self) -> None:
        """L{connectMany} connects clients from distinct addresses to one factory."""
        factory = Factory.forProtocol(Recorder)
        clients = connectMany(factory, 5)
        self.assertEqual(len(clients), 5)
        self.assertEqual(len({t.getPeer() for _, t in clients}), 5)
        self.assertTrue(all(p.factory is factory for p, _ in clients))

    def test_moduleExample(self) -> None:
        """The example in the module docstring runs as shown."""
        result = doctest.testmod(testing, optionflags=doctest.ELLIPSIS)
        self.assertEqual((result.failed, result.attempted > 0), (0, True))


class FakeDatagramTransportTests(SynchronousTestCase):
    """L{FakeDatagramTransport} stands in for a UDP port."""

    def test_recordsWrites(self) -> None:
        """Each write is recorded with its destination, in order."""
        transport = FakeDatagramTransport()
        transport.write(b"a", ("127.0.2.1", 1))
        transport.write(b"b", ("127.0.2.2", 2))
        self.assertEqual(
            transport.written, [(b"a", ("127.0.2.1", 1)), (b"b", ("127.0.2.2", 2))]
        )

    def test_defaultHost(self) -> None:
        """By default the port is UDP 1314 on IPv4 loopback."""
        self.assertEqual(
            FakeDatagramTransport().getHost(), IPv4Address("UDP", "127.0.0.1", 1314)
        )

    def test_ipv6Host(self) -> None:
        """An IPv6 host gives an L{IPv6Address}."""
        self.assertEqual(
            FakeDatagramTransport("::1", 7).getHost(), IPv6Address("UDP", "::1", 7)
        )

    def test_stopListening(self) -> None:
        """C{stopListening} and C{loseConnection} mark the port stopped."""
        for method in ("stopListening", "loseConnection"):
            transport = FakeDatagramTransport()
            getattr(transport, method)()
            self.assertTrue(transport.stopped)

    def test_attachStarts(self) -> None:
        """L{attachDatagram} gives the protocol its transport and starts it."""
        protocol = StartRecorder()
        transport = FakeDatagramTransport(port=9)
        self.assertIs(attachDatagram(protocol, transport), transport)
        self.assertIs(protocol.transport, transport)
        self.assertEqual(protocol.started, 1)

    def test_attachDefaultTransport(self) -> None:
        """Without a transport L{attachDatagram} makes a default one."""
        protocol = StartRecorder()
        transport = attachDatagram(protocol)
        self.assertIsInstance(transport, FakeDatagramTransport)
        self.assertIs(protocol.transport, transport)


class UDPMemoryReactorTests(SynchronousTestCase):
    """L{UDPMemoryReactor} listens on and adopts UDP ports in memory."""

    def test_listenUDP(self) -> None:
        """
        C{listenUDP} records the call and starts the protocol on a fake port
        with the given address; what it writes is in that port's C{written}.
        """
        reactor = UDPMemoryReactor()
        protocol = StartRecorder()
        port = reactor.listenUDP(7, protocol, "::1")
        self.assertEqual(reactor.udpServers, [(7, protocol, "::1")])
        self.assertEqual(reactor.udpTransports, [port])
        self.assertIs(protocol.transport, port)
        self.assertEqual(protocol.started, 1)
        self.assertEqual(port.getHost(), IPv6Address("UDP", "::1", 7))
        protocol.datagramReceived(b"hi", ("127.0.2.1", 5000))
        self.assertEqual(port.written, [(b"HI", ("127.0.2.1", 5000))])

    def test_allInterfaces(self) -> None:
        """Without an interface the port reports the IPv4 wildcard address."""
        port = UDPMemoryReactor().listenUDP(0, StartRecorder())
        self.assertEqual(port.getHost(), IPv4Address("UDP", "0.0.0.0", 0))

    def test_adoptDatagramPort(self) -> None:
        """
        C{adoptDatagramPort} records the call as Twisted's memory reactor
        does and starts the protocol on a fake port on the wildcard address
        of the socket's family, at L{UDPMemoryReactor.adoptedPort}.
        """
        reactor = UDPMemoryReactor()
        reactor.adoptedPort = 4242
        first, second = StartRecorder(), StartRecorder()
        port4 = reactor.adoptDatagramPort(5, socket.AF_INET, first)
        port6 = reactor.adoptDatagramPort(6, socket.AF_INET6, second, 512)
        self.assertEqual(
            reactor.adoptedPorts,
            [(5, socket.AF_INET, first, 8192), (6, socket.AF_INET6, second, 512)],
        )
        self.assertEqual(reactor.udpServers, [])
        self.assertEqual(reactor.udpTransports, [port4, port6])
        self.assertEqual(port4.getHost(), IPv4Address("UDP", "0.0.0.0", 4242))
        self.assertEqual(port6.getHost(), IPv6Address("UDP", "::", 4242))
        self.assertEqual((first.started, second.started), (1, 1))

    def test_stopListeningStopsProtocol(self) -> None:
        """Stopping a port stops its protocol once, as a real port does."""
        protocol = StartRecorder()
        port = UDPMemoryReactor().listenUDP(0, protocol)
        self.assertIsInstance(port, ListeningDatagramPort)
        port.stopListening()
        port.loseConnection()
        self.assertTrue(port.stopped)
        self.assertEqual(protocol.stopped, 1)

    def test_clock(self) -> None:
        """It is a clock too: delayed calls run when time is advanced."""
        reactor = UDPMemoryReactor()
        called: list[bool] = []
        reactor.callLater(1, called.append, True)
        reactor.advance(1)
        self.assertEqual(called, [True])
