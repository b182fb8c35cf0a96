"""
Tests for L{twisted_services.core.reporting.ThrottledReport}.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from twisted_services.core.reporting import ThrottledReport


def throttled(interval: float = 10.0) -> tuple[ThrottledReport, Clock, list[int]]:
    """A L{ThrottledReport} on a L{Clock}, with the list its reports go to."""
    clock = Clock()
    reports: list[int] = []
    return ThrottledReport(clock, interval, reports.append), clock, reports


class ThrottledReportTests(SynchronousTestCase):
    """L{ThrottledReport} reports the first event now, then counts per interval."""

    def test_firstReportedNow(self) -> None:
        """The first event is reported at once, as a count of 1."""
        report, _, reports = throttled()
        report.record()
        self.assertEqual(reports, [1])

    def test_laterEventsCounted(self) -> None:
        """Events within the interval are reported together when it ends."""
        report, clock, reports = throttled(10)
        for _ in range(4):
            report.record()
        clock.advance(9.9)
        self.assertEqual(reports, [1])
        clock.advance(0.1)
        self.assertEqual(reports, [1, 3])

    def test_atMostOncePerInterval(self) -> None:
        """After a counted report a new interval starts, so reports stay apart."""
        report, clock, reports = throttled(10)
        report.record()
        report.record()
        clock.advance(10)
        report.record()
        clock.advance(9)
        self.assertEqual(reports, [1, 1])
        clock.advance(1)
        self.assertEqual(reports, [1, 1, 1])

    def test_quietIntervalReportsNothing(self) -> None:
        """An interval without events reports nothing and stops the timer."""
        report, clock, reports = throttled(10)
        report.record()
        clock.advance(10)
        self.assertEqual(reports, [1])
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_afterQuietReportsNow(self) -> None:
        """Once an interval passes quietly, the next event is reported at once."""
        report, clock, reports = throttled(10)
        report.record()
        clock.advance(25)
        report.record()
        self.assertEqual(reports, [1, 1])

    def test_floodIsBounded(self) -> None:
        """A steady flood gives one report per interval with every event counted."""
        report, clock, reports = throttled(10)
        for _ in range(100):
            for _ in range(50):
                report.record()
            clock.advance(1)
        self.assertEqual(len(reports), 11)
        self.assertEqual(sum(reports), 5000)

    def test_stopReportsPending(self) -> None:
        """L{ThrottledReport.stop} reports what is pending and cancels the timer."""
        report, clock, reports = throttled(10)
        for _ in range(3):
            report.record()
        report.stop()
        self.assertEqual(reports, [1, 2])
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_stopWithNothingPending(self) -> None:
        """Stopping with no unreported events reports nothing."""
        report, clock, reports = throttled(10)
        report.stop()
        report.record()
        report.stop()
        self.assertEqual(reports, [1])
        self.assertEqual(clock.getDelayedCalls(), [])
