"""
Tests for L{twisted_services.temperature.protocol}: L{TemperatureProtocol} on a
fake UDP port with a L{Clock} for time.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from tests.support.udp import RefusingDatagramTransport
from twisted_services.server.udpguard import DROP_LOG_INTERVAL, ReflectionGuard
from twisted_services.temperature.conversion import MAX_REQUEST
from twisted_services.temperature.protocol import TemperatureProtocol
from twisted_services.testing import FakeDatagramTransport, attachDatagram

CLIENT = ("127.0.2.10", 40000)


def temperatureProtocol(
    rate: float = 100.0, burst: int = 100, maxSources: int = 10000, port: int = 1314
) -> tuple[TemperatureProtocol, FakeDatagramTransport, ReflectionGuard, Clock]:
    """A started L{TemperatureProtocol} on a fake UDP port, with guard and clock."""
    clock = Clock()
    guard = ReflectionGuard("temperature", clock, rate, burst, maxSources)
    protocol = TemperatureProtocol(guard)
    transport = attachDatagram(protocol, FakeDatagramTransport(port=port))
    return protocol, transport, guard, clock


class TemperatureProtocolTests(SynchronousTestCase):
    """L{TemperatureProtocol} answers requests its guard and size rules allow."""

    def test_repliesToSender(self) -> None:
        """The conversion goes to the address the request came from."""
        protocol, transport, _, _ = temperatureProtocol()
        protocol.datagramReceived(b"100\n", CLIENT)
        protocol.datagramReceived(b"98.6F", ("2001:db8::5", 50000))
        self.assertEqual(
            transport.written,
            [
                (b"100 C = 212 F\n", CLIENT),
                (b"98.6 F = 37 C\n", ("2001:db8::5", 50000)),
            ],
        )

    def test_badInput(self) -> None:
        """Bad input gets an C{ERROR} reply, and the protocol keeps serving."""
        protocol, transport, _, _ = temperatureProtocol()
        protocol.datagramReceived(b"\xff\xfe", CLIENT)
        protocol.datagramReceived(b"hot", CLIENT)
        protocol.datagramReceived(b"0K", CLIENT)
        self.assertEqual(
            [data for data, _ in transport.written],
            [b"ERROR not UTF-8\n", b"ERROR not a number\n", b"0 K = -273.15 C\n"],
        )

    def test_oversizeDropped(self) -> None:
        """A 513-byte datagram is dropped unanswered; 512 bytes are answered."""
        protocol, transport, guard, _ = temperatureProtocol()
        protocol.datagramReceived(b" " * (MAX_REQUEST - 3) + b"100", CLIENT)
        protocol.datagramReceived(b" " * (MAX_REQUEST - 2) + b"100", CLIENT)
        self.assertEqual(transport.written, [(b"100 C = 212 F\n", CLIENT)])
        self.assertEqual(guard.dropped, 1)

    def test_emptyDropped(self) -> None:
        """An empty datagram gets no reply (a blank line still gets an error)."""
        protocol, transport, guard, _ = temperatureProtocol()
        protocol.datagramReceived(b"", CLIENT)
        self.assertEqual(transport.written, [])
        self.assertEqual(guard.dropped, 1)
        protocol.datagramReceived(b"\n", CLIENT)
        self.assertEqual(transport.written, [(b"ERROR empty\n", CLIENT)])

    def test_repliesDropped(self) -> None:
        """
        A datagram that is a reply, a conversion (it holds C{=}) or an error,
        is dropped: it can only come from another converter or an echo.
        """
        protocol, transport, guard, _ = temperatureProtocol()
        protocol.datagramReceived(b"100 C = 212 F\n", CLIENT)
        protocol.datagramReceived(b"=", CLIENT)
        self.assertEqual(transport.written, [])
        self.assertEqual(guard.dropped, 2)

    def test_errorRepliesDropped(self) -> None:
        """A datagram starting with C{ERROR} (another converter's reply) is dropped."""
        protocol, transport, guard, _ = temperatureProtocol()
        protocol.datagramReceived(b"ERROR not a number\n", CLIENT)
        protocol.datagramReceived(b"ERROR", CLIENT)
        self.assertEqual(transport.written, [])
        self.assertEqual(guard.dropped, 2)

    def test_onlyRepliesDropped(self) -> None:
        """
        Only a datagram starting with all of C{ERROR}, or holding C{=}, is
        taken for a reply: a shorter or later C{ERROR} is an ordinary bad request.
        """
        protocol, transport, guard, _ = temperatureProtocol()
        for request in (b"ERRO", b" ERROR", b"error", b"1 ERROR"):
            protocol.datagramReceived(request, CLIENT)
        protocol.datagramReceived(b"1=", CLIENT)
        self.assertEqual(len(transport.written), 4)
        self.assertEqual(guard.dropped, 1)

    def test_reservedSourcePortsDropped(self) -> None:
        """Datagrams from ports below 1024 go unanswered; 1024 is answered."""
        protocol, transport, guard, _ = temperatureProtocol()
        for port in (0, 7, 19, 53, 1023):
            protocol.datagramReceived(b"100", ("127.0.2.10", port))
        protocol.datagramReceived(b"100", ("127.0.2.10", 1024))
        self.assertEqual(
            transport.written, [(b"100 C = 212 F\n", ("127.0.2.10", 1024))]
        )
        self.assertEqual(guard.dropped, 5)

    def test_ownPortDropped(self) -> None:
        """A datagram from our own port number (another converter) is dropped."""
        protocol, transport, guard, _ = temperatureProtocol(port=7777)
        self.assertEqual(guard.ownPort, 7777)
        protocol.datagramReceived(b"212 F", ("127.0.2.10", 7777))
        self.assertEqual(transport.written, [])
        self.assertEqual(guard.dropped, 1)

    def test_rateLimitedPerSourceAddress(self) -> None:
        """
        One address gets its burst, then its rate, whatever its source port;
        another address keeps its own allowance.
        """
        protocol, transport, guard, clock = temperatureProtocol(rate=2, burst=3)
        for port in range(40000, 40005):
            protocol.datagramReceived(b"100", ("127.0.2.10", port))
        protocol.datagramReceived(b"0K", ("127.0.2.99", 40000))
        self.assertEqual(len(transport.written), 4)
        self.assertEqual(guard.dropped, 2)
        clock.advance(0.5)
        protocol.datagramReceived(b"37.5", ("127.0.2.10", 40009))
        protocol.datagramReceived(b"37.5", ("127.0.2.10", 40009))
        self.assertEqual(
            transport.written[-1], (b"37.5 C = 99.5 F\n", ("127.0.2.10", 40009))
        )
        self.assertEqual(len(transport.written), 5)

    def test_droppedSpendNoTokens(self) -> None:
        """Empty, oversize and reply datagrams do not use up the source's allowance."""
        protocol, transport, _, _ = temperatureProtocol(rate=1, burst=1)
        protocol.datagramReceived(b"", CLIENT)
        protocol.datagramReceived(b"x" * (MAX_REQUEST + 1), CLIENT)
        protocol.datagramReceived(b"ERROR empty\n", CLIENT)
        protocol.datagramReceived(b"1 C = 33.8 F\n", CLIENT)
        protocol.datagramReceived(b"100", CLIENT)
        self.assertEqual(transport.written, [(b"100 C = 212 F\n", CLIENT)])

    def test_floodOfSourcesBounded(self) -> None:
        """
        The table of sources holds at most C{maxSources}: one more new source
        forgets the least recently seen, so a flood of spoofed sources costs
        bounded memory and at worst one more burst for a forgotten source.
        """
        protocol, transport, guard, _ = temperatureProtocol(
            rate=1, burst=1, maxSources=100
        )
        others = [(f"127.9.0.{index}", 5000) for index in range(99)]
        protocol.datagramReceived(b"1", CLIENT)
        for source in others:
            protocol.datagramReceived(b"2", source)
        protocol.datagramReceived(b"3", CLIENT)
        self.assertEqual(guard.dropped, 1, "all 100 sources remembered")
        protocol.datagramReceived(b"4", ("127.9.1.0", 5000))
        protocol.datagramReceived(b"5", others[0])
        self.assertEqual(transport.written[-1], (b"5 C = 41 F\n", others[0]))
        for index in range(5000):
            source = (f"127.10.{index // 256}.{index % 256}", 5000)
            protocol.datagramReceived(b"6", source)
        self.assertEqual(len(transport.written), 1 + 99 + 1 + 1 + 5000)
        self.assertEqual(guard.dropped, 1)

    def test_dropsLoggedOncePerInterval(self) -> None:
        """
        A flood of dropped datagrams logs one warning at once and then one
        per interval with the count, never one per datagram.
        """
        protocol, _, _, clock = temperatureProtocol(rate=1, burst=1)
        with capturedLogs() as events:
            for _ in range(100):
                protocol.datagramReceived(b"100", CLIENT)
                protocol.datagramReceived(b"ERROR", CLIENT)
                protocol.datagramReceived(b"100", ("127.0.2.10", 53))
            atOnce = len(events)
            clock.advance(DROP_LOG_INTERVAL)
            clock.advance(DROP_LOG_INTERVAL)
        text = [formatEvent(event) for event in events]
        self.assertEqual(atOnce, 1)
        self.assertEqual(len(text), 2)
        self.assertTrue(text[0].startswith("temperature: dropped 1 datagram(s)"))
        self.assertTrue(text[1].startswith("temperature: dropped 298 datagram(s)"))
        self.assertEqual(events[0]["log_level"], LogLevel.warn)

    def test_sendFailureCountedNotRaised(self) -> None:
        """A reply the system refuses to send is counted as a drop, not raised."""
        clock = Clock()
        guard = ReflectionGuard("temperature", clock, 10, 10)
        protocol = TemperatureProtocol(guard)
        attachDatagram(protocol, RefusingDatagramTransport())
        with capturedLogs() as events:
            protocol.datagramReceived(b"100", ("127.0.2.255", 5000))
            protocol.datagramReceived(b"100", ("127.0.2.255", 5000))
        self.assertEqual(guard.dropped, 2)
        self.assertEqual(len(events), 1)

    def test_stopReportsDropsAndLeavesNoTimer(self) -> None:
        """Stopping logs drops not yet reported and leaves no timer behind."""
        protocol, _, _, clock = temperatureProtocol()
        protocol.datagramReceived(b"ERROR", CLIENT)
        with capturedLogs() as events:
            protocol.datagramReceived(b"ERROR", CLIENT)
            protocol.doStop()
        self.assertEqual(len(events), 1)
        self.assertIn("dropped 1 datagram(s)", formatEvent(events[0]))
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_quiet(self) -> None:
        """The protocol does not log each start and stop of its port."""
        self.assertFalse(TemperatureProtocol.noisy)
