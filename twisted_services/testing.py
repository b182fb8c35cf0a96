"""
Fakes for testing these protocols (and protocols built on them) without a
network or real time, under trial or pytest: L{connect} puts a stream
protocol on an in-memory transport, L{attachDatagram} a datagram protocol on
a L{FakeDatagramTransport}, and L{UDPMemoryReactor} is a
L{MemoryReactorClock} that listens on (and adopts) UDP ports too, so a
service's C{makeService} can be started whole without a network.

    >>> from twisted.internet.task import Clock
    >>> from twisted_services.echo import EchoFactory
    >>> from twisted_services.testing import connect
    >>> protocol, transport = connect(EchoFactory(Clock()))
    >>> protocol.dataReceived(b"hi")
    >>> transport.value()
    b'hi'
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from itertools import count

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IProtocol, IProtocolFactory
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.testing import (
    MemoryReactorClock,
    StringTransportWithDisconnection,
)

SERVER_ADDRESS = IPv4Address("TCP", "127.0.0.1", 8888)
"""The host address the fake transports report, unless told otherwise."""

_peerPorts: Iterator[int] = count()


def peerAddress(host: str = "127.0.0.1") -> IPv4Address | IPv6Address:
    """A client address on C{host} with a port no other call returned."""
    port = 40000 + next(_peerPorts) % 25000
    if ":" in host:
        return IPv6Address("TCP", host, port)
    return IPv4Address("TCP", host, port)


def connect(
    factory: IProtocolFactory,
    peer: IPv4Address | IPv6Address | None = None,
    host: IPv4Address | IPv6Address = SERVER_ADDRESS,
    transport: StringTransportWithDisconnection | None = None,
) -> tuple[IProtocol, StringTransportWithDisconnection]:
    """
    Build a protocol from C{factory} for a client at C{peer} and connect it
    to a L{StringTransportWithDisconnection}: what the protocol writes is in
    C{transport.value()}, and C{transport.loseConnection()} calls the
    protocol's C{connectionLost} as a real transport would.

    @param transport: a transport of the caller's (a subclass that, say,
        pauses or fails) instead of a new one on C{host} and C{peer}.

    @raise ConnectionRefused: if the factory refuses the connection (its
        C{buildProtocol} returns L{None}).
    """
    peer = peer if peer is not None else peerAddress()
    protocol = factory.buildProtocol(peer)
    if protocol is None:
        raise ConnectionRefused(peer)
    if transport is None:
        transport = StringTransportWithDisconnection(hostAddress=host, peerAddress=peer)
    transport.protocol = protocol
    protocol.makeConnection(transport)
    return protocol, transport


def connectMany(
    factory: IProtocolFactory, howMany: int
) -> list[tuple[IProtocol, StringTransportWithDisconnection]]:
    """L{connect} C{howMany} clients, each from its own address, to one factory."""
    return [connect(factory) for _ in range(howMany)]


class ConnectionRefused(Exception):
    """The factory returned L{None}: the connection would have been closed."""


class FakeDatagramTransport:
    """
    Stands in for a UDP port: records each C{write(data, addr)} in
    L{written} as C{(data, addr)}.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 1314) -> None:
        self.written: list[tuple[bytes, tuple[str, int]]] = []
        self._host = IPv6Address if ":" in host else IPv4Address
        self._address = self._host("UDP", host, port)
        self.stopped = False

    def write(self, data: bytes, addr: tuple[str, int]) -> None:
        self.written.append((data, addr))

    def getHost(self) -> IPv4Address | IPv6Address:
        return self._address

    def stopListening(self) -> None:
        self.stopped = True

    loseConnection = stopListening


def attachDatagram(
    protocol: DatagramProtocol, transport: FakeDatagramTransport | None = None
) -> FakeDatagramTransport:
    """Start C{protocol} on a L{FakeDatagramTransport}, as a listening port would."""
    transport = transport if transport is not None else FakeDatagramTransport()
    protocol.makeConnection(transport)
    return transport


class ListeningDatagramPort(FakeDatagramTransport):
    """
    A L{FakeDatagramTransport} that a L{UDPMemoryReactor} listened on for
    C{protocol}: as a real port does, stopping it stops the protocol.
    """

    def __init__(self, host: str, port: int, protocol: DatagramProtocol) -> None:
        super().__init__(host, port)
        self.protocol = protocol

    def stopListening(self) -> None:
        if not self.stopped:
            super().stopListening()
            self.protocol.doStop()

    loseConnection = stopListening


class UDPMemoryReactor(MemoryReactorClock):
    """
    A L{MemoryReactorClock} that also fakes UDP: C{listenUDP} and
    C{adoptDatagramPort} start the protocol on a L{ListeningDatagramPort}, as
    a real port would, so what the protocol sends is in that port's
    C{written}.

    @ivar udpServers: C{(port, protocol, interface)} for each C{listenUDP}.
    @ivar udpTransports: every port listened on or adopted, in order.
    @ivar adoptedPorts: as L{MemoryReactorClock}'s, C{(fileno,
        addressFamily, protocol, maxPacketSize)} for each adopted datagram
        port.
    @ivar adoptedPort: the port number an adopted socket reports; the
        wildcard address of its family is its host.
    """

    adoptedPort = 1315

    def __init__(self) -> None:
        super().__init__()
        self.udpServers: list[tuple[int, DatagramProtocol, str]] = []
        self.udpTransports: list[ListeningDatagramPort] = []

    def _listening(
        self, host: str, port: int, protocol: DatagramProtocol
    ) -> ListeningDatagramPort:
        transport = ListeningDatagramPort(host, port, protocol)
        self.udpTransports.append(transport)
        attachDatagram(protocol, transport)
        return transport

    def listenUDP(
        self,
        port: int,
        protocol: DatagramProtocol,
        interface: str = "",
        maxPacketSize: int = 8192,
    ) -> ListeningDatagramPort:
        """Record the call and start C{protocol} on a fake port."""
        self.udpServers.append((port, protocol, interface))
        return self._listening(interface or "0.0.0.0", port, protocol)

    def adoptDatagramPort(
        self,
        fileno: int,
        addressFamily: socket.AddressFamily,
        protocol: DatagramProtocol,
        maxPacketSize: int = 8192,
    ) -> ListeningDatagramPort:
        """Record the call and start C{protocol} on a fake port."""
        self.adoptedPorts.append((fileno, addressFamily, protocol, maxPacketSize))
        host = "::" if addressFamily == socket.AF_INET6 else "0.0.0.0"
        return self._listening(host, self.adoptedPort, protocol)
