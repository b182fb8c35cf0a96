"""
Tests for L{twisted_services.server.udpguard}: L{ReflectionGuard} on a L{Clock},
and L{GuardedDatagramProtocol} on a fake UDP port.
"""

from __future__ import annotations

import errno
import socket

from hypothesis import given, settings, strategies
from twisted.internet.interfaces import ISystemHandle
from twisted.internet.task import Clock
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from tests.support.udp import RefusingDatagramTransport
from twisted_services.server.udpguard import (
    DROP_LOG_INTERVAL,
    GuardedDatagramProtocol,
    ReflectionGuard,
    replySender,
)
from twisted_services.testing import FakeDatagramTransport, attachDatagram

SOURCE = ("127.0.0.5", 40000)


def guard(
    rate: float = 10.0, burst: int = 10, maxSources: int = 100
) -> tuple[ReflectionGuard, Clock]:
    """A L{ReflectionGuard} for a service on port 1314, with its clock."""
    clock = Clock()
    reflectionGuard = ReflectionGuard("test", clock, rate, burst, maxSources)
    reflectionGuard.ownPort = 1314
    return reflectionGuard, clock


class Shout(GuardedDatagramProtocol):
    """Answers in upper case; drops datagrams over 8 bytes or starting C{NO}."""

    def answerable(self, data: bytes) -> bool:
        return len(data) <= 8 and not data.startswith((b"NO", b"no"))

    def reply(self, data: bytes) -> bytes:
        return data.upper()


class Plain(GuardedDatagramProtocol):
    """Answers each datagram unchanged, with the base class's defaults."""

    def reply(self, data: bytes) -> bytes:
        return data


def guarded(
    protocolClass: type[GuardedDatagramProtocol] = Shout,
    burst: int = 10,
    transport: FakeDatagramTransport | None = None,
) -> tuple[GuardedDatagramProtocol, FakeDatagramTransport, ReflectionGuard, Clock]:
    """A started guarded protocol on a fake UDP port, with its guard and clock."""
    clock = Clock()
    reflectionGuard = ReflectionGuard("test", clock, 10.0, burst)
    protocol = protocolClass(reflectionGuard)
    transport = attachDatagram(protocol, transport)
    return protocol, transport, reflectionGuard, clock


class ReflectionGuardTests(SynchronousTestCase):
    """L{ReflectionGuard} refuses replies that could reflect or loop."""

    def test_allowsOrdinarySource(self) -> None:
        """A datagram from an ephemeral port of a new source may be answered."""
        reflectionGuard, _ = guard()
        self.assertTrue(reflectionGuard.allows(SOURCE))
        self.assertEqual(reflectionGuard.dropped, 0)

    def test_refusesReservedPorts(self) -> None:
        """Source ports below 1024 (echo, chargen, DNS, ...) are refused."""
        reflectionGuard, _ = guard()
        for port in (0, 7, 19, 53, 123, 1023):
            self.assertFalse(reflectionGuard.allows(("127.0.0.5", port)))
        self.assertTrue(reflectionGuard.allows(("127.0.0.5", 1024)))
        self.assertEqual(reflectionGuard.dropped, 6)

    def test_refusesOwnPort(self) -> None:
        """A datagram from the service's own port number is refused."""
        reflectionGuard, _ = guard()
        self.assertFalse(reflectionGuard.allows(("127.0.0.5", 1314)))
        self.assertEqual(reflectionGuard.dropped, 1)

    def test_refusedPortsSpendNoTokens(self) -> None:
        """Datagrams refused for their port do not use up the source's tokens."""
        reflectionGuard, _ = guard(burst=1)
        reflectionGuard.allows(("127.0.0.5", 7))
        self.assertTrue(reflectionGuard.allows(SOURCE))

    def test_rateLimitedPerSource(self) -> None:
        """Past its burst a source is refused until its tokens refill."""
        reflectionGuard, clock = guard(rate=1, burst=2)
        results = [reflectionGuard.allows(SOURCE) for _ in range(3)]
        self.assertEqual(results, [True, True, False])
        self.assertTrue(reflectionGuard.allows(("127.0.2.6", 40000)))
        clock.advance(1)
        self.assertTrue(reflectionGuard.allows(SOURCE))
        self.assertEqual(reflectionGuard.dropped, 1)

    def test_rateLimitByHostNotPort(self) -> None:
        """A source cannot escape its limit by changing its port."""
        reflectionGuard, _ = guard(rate=1, burst=1)
        reflectionGuard.allows(("127.0.0.5", 40000))
        self.assertFalse(reflectionGuard.allows(("127.0.0.5", 40001)))

    def test_dropCounts(self) -> None:
        """L{ReflectionGuard.drop} counts a datagram dropped for another reason."""
        reflectionGuard, _ = guard()
        reflectionGuard.drop()
        self.assertEqual(reflectionGuard.dropped, 1)

    def test_dropsLoggedOncePerInterval(self) -> None:
        """Drops are logged at once, then at most once per interval with a count."""
        reflectionGuard, clock = guard()
        with capturedLogs() as events:
            for _ in range(10):
                reflectionGuard.allows(("127.0.0.5", 19))
            clock.advance(DROP_LOG_INTERVAL)
            clock.advance(DROP_LOG_INTERVAL)
        text = [formatEvent(event) for event in events]
        self.assertEqual(len(text), 2)
        self.assertTrue(text[0].startswith("test: dropped 1 datagram(s)"), text)
        self.assertTrue(text[1].startswith("test: dropped 9 datagram(s)"), text)
        self.assertEqual(events[0]["log_level"], LogLevel.warn)

    def test_stopReportsAndCancels(self) -> None:
        """L{ReflectionGuard.stop} logs pending drops and leaves no timer."""
        reflectionGuard, clock = guard()
        reflectionGuard.drop()
        reflectionGuard.drop()
        with capturedLogs() as events:
            reflectionGuard.stop()
        self.assertEqual(len(events), 1)
        self.assertIn("dropped 1 datagram(s)", formatEvent(events[0]))
        self.assertEqual(clock.getDelayedCalls(), [])


@implementer(ISystemHandle)
class SocketPort(FakeDatagramTransport):
    """
    A fake port over a real UDP socket on loopback, its handle, as a real
    reactor's port is: C{write} is not what replies should go through.
    """

    def __init__(self, handle: socket.socket) -> None:
        host, port = handle.getsockname()
        super().__init__(host, port)
        self.handle = handle

    def getHandle(self) -> socket.socket:
        return self.handle

    def write(self, data: bytes, addr: tuple[str, int]) -> None:
        raise AssertionError("replies should go out by the socket's sendto")


def loopbackSocket(case: SynchronousTestCase) -> socket.socket:
    """A UDP socket on a free loopback port, closed after the test."""
    handle = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    case.addCleanup(handle.close)
    handle.bind(("127.0.0.1", 0))
    handle.settimeout(5.0)
    return handle


class ReplySenderTests(SynchronousTestCase):
    """Replies leave by the port's socket where it has one."""

    def test_bySocket(self) -> None:
        """
        A port whose handle is a socket sends replies with that socket's
        C{sendto}, which reaches the source on loopback.
        """
        server, client = loopbackSocket(self), loopbackSocket(self)
        protocol = Shout(ReflectionGuard("test", Clock(), 10.0, 10))
        attachDatagram(protocol, SocketPort(server))
        protocol.datagramReceived(b"hi", client.getsockname())
        self.assertEqual(client.recvfrom(100), (b"HI", server.getsockname()))

    def test_refusedSendCounted(self) -> None:
        """A send the system refuses through the socket is counted as a drop."""
        reflectionGuard = ReflectionGuard("test", Clock(), 10.0, 10)
        protocol = Shout(reflectionGuard)
        attachDatagram(protocol, SocketPort(loopbackSocket(self)))
        with capturedLogs():
            # No SO_BROADCAST: the system refuses (EACCES).
            protocol.datagramReceived(b"hi", ("255.255.255.255", 5000))
        self.assertEqual(reflectionGuard.dropped, 1)

    def test_otherwiseByWrite(self) -> None:
        """A transport with no socket handle gets replies by C{write}."""
        transport = FakeDatagramTransport()
        self.assertEqual(replySender(transport), transport.write)


class ReceiverTests(SynchronousTestCase):
    """
    L{ReflectionGuard.receiver} applies the rules of L{ReflectionGuard.allows},
    which it repeats inline for speed, after the service's own.
    """

    @settings(max_examples=200, deadline=None)
    @given(
        strategies.lists(
            strategies.tuples(
                strategies.sampled_from(["127.0.0.5", "127.0.0.6", "::1"]),
                strategies.sampled_from([0, 19, 1023, 1024, 1314, 40000]),
                strategies.sampled_from([b"hi", b"NO"]),
                strategies.floats(-1, 2),
            ),
            max_size=60,
        )
    )
    def test_sameAnswersAsAllows(
        self, datagrams: list[tuple[str, int, bytes, float]]
    ) -> None:
        """
        Datagram by datagram, the receiver answers exactly those that
        C{answerable} and then L{ReflectionGuard.allows} (of a twin guard on
        the same clock) let through, and counts the same drops.
        """
        fast, clock = guard(rate=2, burst=3)
        twin = ReflectionGuard("twin", clock, 2, 3, 100)
        twin.ownPort = 1314
        sent: list[tuple[bytes, tuple[str, int]]] = []
        receive = fast.receiver(
            lambda data: not data.startswith(b"NO"),
            bytes.upper,
            lambda data, address: sent.append((data, address)),
        )
        for host, port, data, step in datagrams:
            clock.advance(step)
            before = len(sent)
            receive(data, (host, port))
            expected = not data.startswith(b"NO") and twin.allows((host, port))
            if data.startswith(b"NO"):
                twin.drop()
            self.assertEqual(len(sent) - before, int(expected))
        self.assertEqual(fast.dropped, twin.dropped)

    def test_ownPortReadWhenMade(self) -> None:
        """The receiver refuses the own port the guard knew when it was made."""
        reflectionGuard, _ = guard()
        sent: list[bytes] = []
        receive = reflectionGuard.receiver(
            lambda data: True, bytes.upper, lambda data, address: sent.append(data)
        )
        receive(b"hi", ("127.0.0.5", 1314))
        receive(b"hi", SOURCE)
        self.assertEqual((sent, reflectionGuard.dropped), ([b"HI"], 1))


class GuardedDatagramProtocolTests(SynchronousTestCase):
    """L{GuardedDatagramProtocol} answers only what its rules and guard allow."""

    def test_repliesToSender(self) -> None:
        """The subclass's reply goes back to the address the datagram came from."""
        protocol, transport, _, _ = guarded()
        protocol.datagramReceived(b"hi", SOURCE)
        self.assertEqual(transport.written, [(b"HI", SOURCE)])

    def test_learnsOwnPort(self) -> None:
        """Starting on a port tells the guard which port is its own."""
        _, _, reflectionGuard, _ = guarded(transport=FakeDatagramTransport(port=7007))
        self.assertEqual(reflectionGuard.ownPort, 7007)

    def test_guardRefusalsUnanswered(self) -> None:
        """A source the guard refuses (here a reserved port) gets no reply."""
        protocol, transport, reflectionGuard, _ = guarded()
        protocol.datagramReceived(b"hi", ("127.0.0.5", 19))
        self.assertEqual(transport.written, [])
        self.assertEqual(reflectionGuard.dropped, 1)

    def test_oversizeDropped(self) -> None:
        """A datagram L{answerable} refuses for its size is dropped, and counted."""
        protocol, transport, reflectionGuard, _ = guarded()
        protocol.datagramReceived(b"x" * 9, SOURCE)
        protocol.datagramReceived(b"x" * 8, SOURCE)
        self.assertEqual(transport.written, [(b"X" * 8, SOURCE)])
        self.assertEqual(reflectionGuard.dropped, 1)

    def test_unanswerableContentDropped(self) -> None:
        """A datagram L{answerable} refuses for its content is dropped, and counted."""
        protocol, transport, reflectionGuard, _ = guarded()
        protocol.datagramReceived(b"NO more", SOURCE)
        protocol.datagramReceived(b"no", SOURCE)
        protocol.datagramReceived(b"yes NO", SOURCE)
        self.assertEqual(transport.written, [(b"YES NO", SOURCE)])
        self.assertEqual(reflectionGuard.dropped, 2)

    def test_contentDropsSpendNoTokens(self) -> None:
        """Datagrams L{answerable} refuses do not use up the source's allowance."""
        protocol, transport, _, _ = guarded(burst=1)
        protocol.datagramReceived(b"x" * 9, SOURCE)
        protocol.datagramReceived(b"NO", SOURCE)
        protocol.datagramReceived(b"hi", SOURCE)
        self.assertEqual(transport.written, [(b"HI", SOURCE)])

    def test_defaultsAnswerAnyContent(self) -> None:
        """By default no content is refused: only the guard decides."""
        protocol, transport, reflectionGuard, _ = guarded(Plain)
        protocol.datagramReceived(b"x" * 65535, SOURCE)
        protocol.datagramReceived(b"", SOURCE)
        self.assertEqual(transport.written, [(b"x" * 65535, SOURCE), (b"", SOURCE)])
        self.assertEqual(reflectionGuard.dropped, 0)

    def test_sendFailureCountedNotRaised(self) -> None:
        """
        A reply the system refuses to send (EACCES for a broadcast source,
        EAGAIN for a full send buffer) is counted as a drop, not raised, and
        logs no traceback.
        """
        for error in (errno.EACCES, errno.EAGAIN):
            protocol, _, reflectionGuard, _ = guarded(
                transport=RefusingDatagramTransport(error)
            )
            with capturedLogs() as events:
                protocol.datagramReceived(b"hi", SOURCE)
                protocol.datagramReceived(b"hi", SOURCE)
            self.assertEqual(reflectionGuard.dropped, 2, error)
            self.assertEqual(len(events), 1, error)
            self.assertNotIn("log_failure", events[0])

    def test_stopReportsAndCancels(self) -> None:
        """Stopping the protocol logs drops not yet reported and leaves no timer."""
        protocol, _, _, clock = guarded()
        protocol.datagramReceived(b"NO", SOURCE)
        with capturedLogs() as events:
            protocol.datagramReceived(b"NO", SOURCE)
            protocol.doStop()
        self.assertEqual(len(events), 1)
        self.assertIn("dropped 1 datagram(s)", formatEvent(events[0]))
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_notStartedDrops(self) -> None:
        """
        Before its port starts it, and after the port stops, the protocol has
        nowhere to answer from: a datagram is dropped, and counted.
        """
        reflectionGuard = ReflectionGuard("test", Clock(), 10.0, 10)
        protocol = Shout(reflectionGuard)
        protocol.datagramReceived(b"hi", SOURCE)
        transport = attachDatagram(protocol)
        protocol.datagramReceived(b"hi", SOURCE)
        protocol.doStop()
        protocol.datagramReceived(b"hi", SOURCE)
        self.assertEqual(transport.written, [(b"HI", SOURCE)])
        self.assertEqual(reflectionGuard.dropped, 2)

    def test_quiet(self) -> None:
        """The protocol does not log each start and stop of its port."""
        self.assertFalse(GuardedDatagramProtocol.noisy)
