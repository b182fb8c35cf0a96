"""
The echo service (RFC 862): every byte a client sends comes back unchanged.

Unlike C{twisted.protocols.wire.Echo}, L{Echo} has flow control: it registers
itself as its transport's streaming producer, so when a client sends but does
not read and the write buffer fills, the server stops reading from that
client until the buffer drains. Server memory stays flat whatever one client
does.
"""

from __future__ import annotations

from twisted.internet import interfaces
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.protocols.policies import TimeoutMixin
from twisted.python.failure import Failure
from zope.interface import implementer

from twisted_services.core.addresses import describeAddress
from twisted_services.server.connections import ConnectionTracker, TrackingFactory
from twisted_services.server.udpguard import GuardedDatagramProtocol

CLOSE_GRACE = 3.0
"""
Seconds a stopping server gives each client to read the rest of its echo
before the connection is aborted.
"""


@implementer(interfaces.IHalfCloseableProtocol, interfaces.IPushProducer)
class Echo(Protocol, TimeoutMixin):
    """
    Sends back what it receives. As its own transport's producer it pauses
    reading from the client while the client is not reading its echo.
    """

    _log = Logger()
    factory: EchoFactory

    def connectionMade(self) -> None:
        self.factory.connections.opened(self)
        self._peer = describeAddress(self.transport.getPeer())
        self._log.info("echo: {peer} connected", peer=self._peer)
        self._counters = self.factory.connections.counters
        self.transport.registerProducer(self, True)
        self.setTimeout(self.factory.idleTimeout or None)

    def dataReceived(self, data: bytes) -> None:
        self.resetTimeout()
        self.transport.write(data)
        # Sent as soon as written: what the echo queues is the client's.
        counters = self._counters
        counters.bytesReceived += len(data)
        counters.bytesSent += len(data)

    def readConnectionLost(self) -> None:
        """
        The client half-closed: what it sent is already in the write buffer,
        so close once that is flushed. The producer goes first, or the
        transport would wait for it to resume instead of closing.
        """
        self.transport.unregisterProducer()
        self.transport.loseConnection()

    def writeConnectionLost(self) -> None:
        """Nothing more can be echoed once the write side is gone."""
        self.transport.loseConnection()

    def pauseProducing(self) -> None:
        self.transport.pauseProducing()

    def resumeProducing(self) -> None:
        self.transport.resumeProducing()

    def stopProducing(self) -> None:
        """The connection is going away; L{connectionLost} cleans up."""

    def drain(self) -> None:
        """Echo has nothing to finish: what was sent back is flushed, then closed."""
        self.transport.unregisterProducer()
        self.transport.loseConnection()

    def abort(self) -> None:
        self.transport.abortConnection()

    def callLater(self, period: float, func):  # type: ignore[no-untyped-def]
        """Time comes from the factory's clock, so tests can use a C{Clock}."""
        return self.factory.clock.callLater(period, func)

    def timeoutConnection(self) -> None:
        """
        Abort rather than close: a silent client may also have stopped
        reading, and a graceful close would wait on it forever.
        """
        self._log.info("echo: {peer} idle, closing", peer=self._peer)
        self._counters.timedOut += 1
        self.transport.abortConnection()

    def connectionLost(self, reason: Failure) -> None:
        self.setTimeout(None)
        self.factory.connections.closed(self)
        self._log.info(
            "echo: {peer} disconnected ({reason})",
            peer=self._peer,
            reason=reason.getErrorMessage(),
        )


class EchoFactory(TrackingFactory):
    """
    Builds L{Echo} protocols up to C{maxConnections} at once; past that a new
    connection is accepted and closed at once.

    @ivar idleTimeout: seconds without data from the client before its
        connection is closed; 0 for never.
    """

    protocol = Echo
    noisy = False

    def __init__(
        self,
        clock: IReactorTime,
        idleTimeout: float = 300.0,
        maxConnections: int = 10000,
    ) -> None:
        self.clock = clock
        self.idleTimeout = idleTimeout
        self.connections = ConnectionTracker(
            "echo", clock, maxConnections, drainTimeout=CLOSE_GRACE
        )


class DatagramEcho(GuardedDatagramProtocol):
    """
    RFC 862's datagram form, guarded against reflection and echo loops by a
    L{ReflectionGuard}.
    """

    def reply(self, data: bytes) -> bytes:
        """The datagram itself, unchanged."""
        return data
