"""
Tests for L{twisted_services.chat.admission}: per-address connection limits,
on a L{Clock}.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.logger import capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from twisted_services.chat.admission import (
    REFUSAL_LOG_INTERVAL,
    TOO_FAST,
    TOO_MANY,
    AddressAdmission,
)


class AddressAdmissionTests(SynchronousTestCase):
    """At most so many connections per address, opened at most so fast."""

    def test_concurrentLimit(self) -> None:
        """The limit's worth of connections is admitted, one more is not."""
        admission = AddressAdmission(Clock(), 3, rate=100, burst=100)
        for _ in range(3):
            self.assertIsNone(admission.refusal("127.0.9.1"))
            admission.opened("127.0.9.1")
        self.assertEqual(admission.refusal("127.0.9.1"), TOO_MANY)
        self.assertIsNone(admission.refusal("127.0.9.2"))
        admission.closed("127.0.9.1")
        self.assertIsNone(admission.refusal("127.0.9.1"))

    def test_noConcurrentLimit(self) -> None:
        """0 means no limit on connections at once."""
        admission = AddressAdmission(Clock(), 0, rate=1000, burst=1000)
        for _ in range(500):
            self.assertIsNone(admission.refusal("127.0.9.1"))
            admission.opened("127.0.9.1")

    def test_rate(self) -> None:
        """A burst is admitted, the next is not until time refills it."""
        clock = Clock()
        admission = AddressAdmission(clock, 0, rate=2, burst=5)
        for _ in range(5):
            self.assertIsNone(admission.refusal("127.0.9.1"))
        self.assertEqual(admission.refusal("127.0.9.1"), TOO_FAST)
        clock.advance(0.5)
        self.assertIsNone(admission.refusal("127.0.9.1"))
        self.assertEqual(admission.refusal("127.0.9.1"), TOO_FAST)

    def test_closedForgotten(self) -> None:
        """An address with no connection left holds no entry."""
        admission = AddressAdmission(Clock(), 3, rate=100, burst=100)
        admission.opened("127.0.9.1")
        admission.closed("127.0.9.1")
        self.assertEqual(admission.openFrom("127.0.9.1"), 0)
        self.assertEqual(admission._open, {})

    def test_refusalsLoggedThrottled(self) -> None:
        """A thousand refusals make two log lines, the second with a count."""
        clock = Clock()
        admission = AddressAdmission(clock, 1, rate=1, burst=1)
        admission.opened("127.0.9.1")
        with capturedLogs() as events:
            for _ in range(1000):
                admission.refusal("127.0.9.1")
            clock.advance(REFUSAL_LOG_INTERVAL)
        texts = [formatEvent(event) for event in events]
        self.assertEqual(len(texts), 2, texts)
        self.assertIn("refused 1 connection(s): 1 " + TOO_MANY, texts[0])
        self.assertIn("refused 999 connection(s): 999 " + TOO_MANY, texts[1])
