"""
Fakes for testing these protocols (and protocols built on them) without a
network or real time, under trial or pytest.

    >>> from twisted.internet.task import Clock
    >>> from twisted_services.echo import EchoFactory
    >>> from twisted_services.testing import connect
    >>> protocol, transport = connect(EchoFactory(Clock()))
    >>> protocol.dataReceived(b"hi")
    >>> transport.value()
    b'hi'
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import count

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.interfaces import IProtocol, IProtocolFactory
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.testing import StringTransportWithDisconnection

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
) -> tuple[IProtocol, StringTransportWithDisconnection]:
    """
    Build a protocol from C{factory} for a client at C{peer} and connect it
    to a L{StringTransportWithDisconnection}: what the protocol writes is in
    C{transport.value()}, and C{transport.loseConnection()} calls the
    protocol's C{connectionLost} as a real transport would.

    @raise ConnectionRefused: if the factory refuses the connection (its
        C{buildProtocol} returns L{None}).
    """
    peer = peer if peer is not None else peerAddress()
    protocol = factory.buildProtocol(peer)
    if protocol is None:
        raise ConnectionRefused(peer)
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
