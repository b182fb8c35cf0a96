"""
Tests for L{twisted_services.server.udpguard.ReflectionGuard}.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from twisted_services.server.udpguard import DROP_LOG_INTERVAL, ReflectionGuard

SOURCE = ("127.0.0.5", 40000)


def guard(
    rate: float = 10.0, burst: int = 10, maxSources: int = 100
) -> tuple[ReflectionGuard, Clock]:
    """A L{ReflectionGuard} for a service on port 1314, with its clock."""
    clock = Clock()
    reflectionGuard = ReflectionGuard("test", clock, rate, burst, maxSources)
    reflectionGuard.ownPort = 1314
    return reflectionGuard, clock


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
