"""
Tests for L{twisted_services.echo.protocol}: the TCP and UDP echo protocols on fake
transports, with a L{Clock} for time.
"""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given, settings, strategies
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.error import ConnectionAborted
from twisted.internet.interfaces import IHalfCloseableProtocol, IPushProducer
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import LogEvent, LogLevel, capturedLogs, formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from tests.support.udp import RefusingDatagramTransport
from twisted_services.echo.protocol import (
    CLOSE_GRACE,
    DatagramEcho,
    Echo,
    EchoFactory,
)
from twisted_services.server.connections import REFUSAL_LOG_INTERVAL
from twisted_services.server.udpguard import ReflectionGuard
from twisted_services.testing import (
    ConnectionRefused,
    FakeDatagramTransport,
    attachDatagram,
    connect,
    connectMany,
)

CLIENT = ("127.0.2.10", 40000)


def echoFactory(
    idleTimeout: float = 300.0, maxConnections: int = 10000
) -> tuple[EchoFactory, Clock]:
    """An L{EchoFactory} on a fresh L{Clock}, returned with that clock."""
    clock = Clock()
    return EchoFactory(clock, idleTimeout, maxConnections), clock


def datagramEcho(
    rate: float = 100.0, burst: int = 100, port: int = 1314
) -> tuple[DatagramEcho, FakeDatagramTransport, ReflectionGuard, Clock]:
    """A started L{DatagramEcho} on a fake UDP port, with its guard and clock."""
    clock = Clock()
    guard = ReflectionGuard("echo", clock, rate, burst, maxSources=4)
    protocol = DatagramEcho(guard)
    transport = attachDatagram(protocol, FakeDatagramTransport(port=port))
    return protocol, transport, guard, clock


def messages(events: Sequence[LogEvent]) -> list[str]:
    """The formatted text of captured log events."""
    return [formatEvent(event) for event in events]


class EchoTests(SynchronousTestCase):
    """L{Echo} sends back every byte it receives, unchanged and in order."""

    def test_echoesData(self) -> None:
        """Received bytes are written back to the same connection."""
        factory, _ = echoFactory()
        protocol, transport = connect(factory)
        protocol.dataReceived(b"hello\r\n")
        self.assertEqual(transport.value(), b"hello\r\n")

    @settings(max_examples=200, deadline=None)
    @given(strategies.lists(strategies.binary(min_size=1)))
    def test_echoesArbitraryChunks(self, chunks: list[bytes]) -> None:
        """Any bytes in any chunking come back concatenated, in order."""
        factory, _ = echoFactory()
        protocol, transport = connect(factory)
        for chunk in chunks:
            protocol.dataReceived(chunk)
        self.assertEqual(transport.value(), b"".join(chunks))

    def test_clientsAreSeparate(self) -> None:
        """Each of several concurrent clients gets only its own bytes back."""
        factory, _ = echoFactory()
        clients = connectMany(factory, 3)
        for index, (protocol, _) in enumerate(clients):
            protocol.dataReceived(b"client %d" % (index,))
        self.assertEqual(
            [transport.value() for _, transport in clients],
            [b"client 0", b"client 1", b"client 2"],
        )

    def test_interfaces(self) -> None:
        """The protocol is a half-closeable protocol and a push producer."""
        factory, _ = echoFactory()
        protocol, _ = connect(factory)
        self.assertTrue(verifyObject(IHalfCloseableProtocol, protocol))
        self.assertTrue(verifyObject(IPushProducer, protocol))

    def test_logsPeer(self) -> None:
        """Connecting and disconnecting are logged with the peer address."""
        factory, _ = echoFactory()
        with capturedLogs() as events:
            _, transport = connect(factory, IPv6Address("TCP", "2001:db8::7", 5555))
            transport.loseConnection()
        text = messages(events)
        self.assertIn("echo: tcp:[2001:db8::7]:5555 connected", text)
        self.assertTrue(
            any(
                line.startswith("echo: tcp:[2001:db8::7]:5555 disconnected")
                for line in text
            ),
            text,
        )


class BackpressureTests(SynchronousTestCase):
    """L{Echo} stops reading from a client that is not reading its echo."""

    def test_registersAsStreamingProducer(self) -> None:
        """On connection the protocol is its transport's streaming producer."""
        factory, _ = echoFactory()
        protocol, transport = connect(factory)
        self.assertIs(transport.producer, protocol)
        self.assertTrue(transport.streaming)

    def test_pauseProducingPausesReading(self) -> None:
        """When the write buffer fills, reading from the client is paused."""
        factory, _ = echoFactory()
        _, transport = connect(factory)
        transport.producer.pauseProducing()
        self.assertEqual(transport.producerState, "paused")

    def test_resumeProducingResumesReading(self) -> None:
        """When the write buffer drains, reading from the client resumes."""
        factory, _ = echoFactory()
        _, transport = connect(factory)
        transport.producer.pauseProducing()
        transport.producer.resumeProducing()
        self.assertEqual(transport.producerState, "producing")

    def test_stopProducingKeepsTransport(self) -> None:
        """C{stopProducing} leaves the transport to the connection's own end."""
        factory, _ = echoFactory()
        protocol, transport = connect(factory)
        protocol.stopProducing()
        self.assertEqual(transport.producerState, "producing")
        self.assertTrue(transport.connected)


class HalfCloseTests(SynchronousTestCase):
    """A client that shuts down its writing side still gets all its echo."""

    def test_readConnectionLostClosesAfterEcho(self) -> None:
        """After the client's EOF the echo is written, then the server closes."""
        factory, _ = echoFactory()
        protocol, transport = connect(factory)
        protocol.dataReceived(b"hi\n")
        protocol.readConnectionLost()
        self.assertEqual(transport.value(), b"hi\n")
        self.assertIsNone(transport.producer)
        self.assertFalse(transport.connected)

    def test_writeConnectionLostCloses(self) -> None:
        """Once the server can no longer write, the connection is closed."""
        factory, _ = echoFactory()
        protocol, transport = connect(factory)
        protocol.writeConnectionLost()
        self.assertFalse(transport.connected)


class IdleTimeoutTests(SynchronousTestCase):
    """L{EchoFactory.idleTimeout} aborts connections the client leaves silent."""

    def test_silentConnectionAborted(self) -> None:
        """A client that sends nothing for the timeout is aborted."""
        factory, clock = echoFactory(idleTimeout=30)
        _, transport = connect(factory)
        clock.advance(29.9)
        self.assertTrue(transport.connected)
        clock.advance(0.1)
        self.assertFalse(transport.connected)
        self.assertTrue(transport.disconnected)

    def test_dataResetsTimer(self) -> None:
        """Data from the client starts the timeout again."""
        factory, clock = echoFactory(idleTimeout=30)
        protocol, transport = connect(factory)
        clock.advance(20)
        protocol.dataReceived(b"x")
        clock.advance(20)
        self.assertTrue(transport.connected)
        clock.advance(10)
        self.assertFalse(transport.connected)

    def test_serverWritesDoNotResetTimer(self) -> None:
        """The server writing, or the client draining its echo, is not activity."""
        factory, clock = echoFactory(idleTimeout=30)
        protocol, transport = connect(factory)
        protocol.pauseProducing()
        clock.advance(20)
        transport.write(b"from the server")
        protocol.resumeProducing()
        clock.advance(10)
        self.assertFalse(transport.connected)

    def test_zeroNeverTimesOut(self) -> None:
        """An idle timeout of 0 leaves silent connections open for ever."""
        factory, clock = echoFactory(idleTimeout=0)
        _, transport = connect(factory)
        clock.advance(10**9)
        self.assertTrue(transport.connected)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_closedConnectionCancelsTimer(self) -> None:
        """A closed connection leaves no idle timer behind."""
        factory, clock = echoFactory(idleTimeout=30)
        _, transport = connect(factory)
        transport.loseConnection()
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_timeoutLogged(self) -> None:
        """Closing an idle connection is logged with the peer address."""
        factory, clock = echoFactory(idleTimeout=30)
        connect(factory, IPv4Address("TCP", "127.0.2.3", 4321))
        with capturedLogs() as events:
            clock.advance(30)
        self.assertIn("echo: tcp:127.0.2.3:4321 idle, closing", messages(events))


class ConnectionLimitTests(SynchronousTestCase):
    """L{EchoFactory} refuses connections past C{maxConnections}."""

    def test_refusedPastLimit(self) -> None:
        """Past the limit C{buildProtocol} returns L{None}."""
        factory, _ = echoFactory(maxConnections=2)
        connectMany(factory, 2)
        self.assertIsNone(factory.buildProtocol(IPv4Address("TCP", "127.0.2.1", 1)))
        self.assertRaises(ConnectionRefused, connect, factory)

    def test_closingFreesSlot(self) -> None:
        """Closing a connection lets the next one in."""
        factory, _ = echoFactory(maxConnections=2)
        (_, first), _ = connectMany(factory, 2)
        first.loseConnection()
        protocol, _ = connect(factory)
        self.assertIsInstance(protocol, Echo)
        self.assertEqual(factory.connections.limit.open, 2)

    def test_refusalsNotCountedAsOpen(self) -> None:
        """A refused connection does not take a slot."""
        factory, _ = echoFactory(maxConnections=1)
        _, transport = connect(factory)
        self.assertRaises(ConnectionRefused, connect, factory)
        transport.loseConnection()
        self.assertEqual(factory.connections.limit.open, 0)
        connect(factory)

    def test_refusalsLoggedOncePerInterval(self) -> None:
        """A flood of refusals logs one line now and one with the count later."""
        factory, clock = echoFactory(maxConnections=1)
        connect(factory)
        with capturedLogs() as events:
            for _ in range(5):
                self.assertRaises(ConnectionRefused, connect, factory)
            atOnce = messages(events)
            clock.advance(REFUSAL_LOG_INTERVAL)
            clock.advance(REFUSAL_LOG_INTERVAL)
        text = messages(events)
        self.assertEqual(atOnce, ["echo: refused 1 connection(s): limit of 1 reached"])
        self.assertEqual(
            text[1:], ["echo: refused 4 connection(s): limit of 1 reached"]
        )
        self.assertEqual(events[0]["log_level"], LogLevel.warn)


class ShutdownTests(SynchronousTestCase):
    """Stopping the service finishes every echo connection, then closes it."""

    def test_drainClosesAfterFlushing(self) -> None:
        """
        A drain closes each connection after its echo is written, refuses
        new connections, and completes once every connection is gone.
        """
        factory, _ = echoFactory()
        (one, first), (_, second) = connectMany(factory, 2)
        one.dataReceived(b"last words")
        drained = factory.connections.drain()
        self.assertEqual(first.value(), b"last words")
        self.assertFalse(second.connected)
        self.assertRaises(ConnectionRefused, connect, factory)
        self.successResultOf(drained)

    def test_nonReaderAbortedAfterGrace(self) -> None:
        """A client whose echo never drains is aborted after the grace period."""
        factory, clock = echoFactory()
        protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
        # A transport whose close waits, as a real one does for unsent bytes.
        transport = StringTransport()
        protocol.makeConnection(transport)
        drained = factory.connections.drain()
        self.assertTrue(transport.disconnecting)
        clock.advance(CLOSE_GRACE - 0.1)
        self.assertFalse(transport.disconnected)
        clock.advance(0.1)
        # StringTransport marks an abort with disconnected.
        self.assertTrue(transport.disconnected)
        self.assertNoResult(drained)
        protocol.connectionLost(Failure(ConnectionAborted()))
        self.successResultOf(drained)


class DatagramEchoTests(SynchronousTestCase):
    """L{DatagramEcho} answers datagrams its L{ReflectionGuard} allows."""

    def test_repliesToSender(self) -> None:
        """A datagram goes back, unchanged, to the address it came from."""
        protocol, transport, _, _ = datagramEcho()
        protocol.datagramReceived(b"ping \x00\xff", CLIENT)
        self.assertEqual(transport.written, [(b"ping \x00\xff", CLIENT)])

    def test_learnsOwnPort(self) -> None:
        """Starting on a port tells the guard which port is its own."""
        _, _, guard, _ = datagramEcho(port=7007)
        self.assertEqual(guard.ownPort, 7007)

    def test_dropsReservedSourcePorts(self) -> None:
        """Datagrams from ports below 1024 go unanswered; 1024 is answered."""
        protocol, transport, guard, _ = datagramEcho()
        for port in (0, 7, 19, 1023):
            protocol.datagramReceived(b"x", ("127.0.2.10", port))
        protocol.datagramReceived(b"y", ("127.0.2.10", 1024))
        self.assertEqual(transport.written, [(b"y", ("127.0.2.10", 1024))])
        self.assertEqual(guard.dropped, 4)

    def test_dropsOwnPort(self) -> None:
        """A datagram from our own port number (another echo) is not answered."""
        protocol, transport, guard, _ = datagramEcho(port=7007)
        protocol.datagramReceived(b"loop", ("127.0.2.10", 7007))
        self.assertEqual(transport.written, [])
        self.assertEqual(guard.dropped, 1)

    def test_rateLimitedPerSource(self) -> None:
        """One source gets its burst, then its rate; another keeps its own."""
        protocol, transport, _, clock = datagramEcho(rate=2, burst=3)
        for _ in range(5):
            protocol.datagramReceived(b"a", CLIENT)
        protocol.datagramReceived(b"b", ("127.0.2.99", 5000))
        clock.advance(0.5)
        protocol.datagramReceived(b"c", CLIENT)
        protocol.datagramReceived(b"d", CLIENT)
        self.assertEqual(
            [data for data, _ in transport.written], [b"a", b"a", b"a", b"b", b"c"]
        )

    def test_floodOfSourcesBounded(self) -> None:
        """A flood of distinct sources only evicts the oldest from the table."""
        protocol, transport, guard, _ = datagramEcho(rate=1, burst=1)
        protocol.datagramReceived(b"first", ("127.0.2.1", 5000))
        protocol.datagramReceived(b"again", ("127.0.2.1", 5000))
        for index in range(2, 1002):
            protocol.datagramReceived(
                b"flood", (f"127.8.{index // 256}.{index % 256}", 5000)
            )
        protocol.datagramReceived(b"forgotten", ("127.0.2.1", 5000))
        self.assertEqual(transport.written[-1], (b"forgotten", ("127.0.2.1", 5000)))
        self.assertEqual(guard.dropped, 1)

    def test_stopReportsDrops(self) -> None:
        """Stopping the protocol logs drops not yet reported and leaves no timer."""
        protocol, _, _, clock = datagramEcho()
        protocol.datagramReceived(b"x", ("127.0.2.10", 7))
        with capturedLogs() as events:
            protocol.datagramReceived(b"x", ("127.0.2.10", 19))
            protocol.doStop()
        self.assertEqual(len(events), 1)
        self.assertIn("dropped 1 datagram(s)", formatEvent(events[0]))
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_sendFailureCountedNotRaised(self) -> None:
        """A reply the system refuses to send is counted as a drop, not raised."""
        clock = Clock()
        guard = ReflectionGuard("echo", clock, 10, 10)
        protocol = DatagramEcho(guard)
        attachDatagram(protocol, RefusingDatagramTransport())
        with capturedLogs() as events:
            protocol.datagramReceived(b"ping", ("127.0.2.255", 5000))
            protocol.datagramReceived(b"ping", ("127.0.2.255", 5000))
        self.assertEqual(guard.dropped, 2)
        self.assertEqual(len(events), 1)
        self.assertNotIn("log_failure", events[0])
