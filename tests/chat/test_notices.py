"""
Tests for L{twisted_services.chat.notices}: arrival and departure notices
limited per room, the rest summed up, on a L{Clock}.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from tests.chat.test_state import Member
from twisted_services.chat.notices import SUMMARY_DELAY, ChurnNotices
from twisted_services.chat.state import LOBBY, LocalBroker


class ChurnNoticesTests(SynchronousTestCase):
    """At most a burst and a rate of notices per room; the rest summed up."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.broker = LocalBroker()
        self.alice = Member("alice")
        self.broker.local.join(self.alice, LOBBY)
        self.notices = ChurnNotices(self.clock, self.broker, rate=1, burst=3)

    def test_burstThenSummary(self) -> None:
        """A burst goes out; the rest become one summary line later."""
        for number in range(100):
            self.notices.publish(LOBBY, f"guest{number} has joined")
        self.assertEqual(
            self.alice.received,
            [f"*** guest{number} has joined\r\n".encode() for number in range(3)],
        )
        self.clock.advance(SUMMARY_DELAY)
        self.assertEqual(
            self.alice.received[3:],
            [b"*** 97 more arrival(s) and departure(s) not shown\r\n"],
        )
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_perRoom(self) -> None:
        """One room's churn does not use up another's notices."""
        bob = Member("bob")
        self.broker.local.join(bob, "#games")
        for number in range(10):
            self.notices.publish(LOBBY, f"guest{number} has joined")
        self.notices.publish("#GAMES", "carol has joined")
        self.assertEqual(bob.received, [b"*** carol has joined\r\n"])

    def test_rateRefills(self) -> None:
        """Time brings notices back, one a second."""
        for number in range(3):
            self.notices.publish(LOBBY, f"guest{number} has joined")
        self.clock.advance(1)
        self.notices.publish(LOBBY, "late has joined")
        self.assertEqual(self.alice.received[-1], b"*** late has joined\r\n")

    def test_excluded(self) -> None:
        """The member a notice is about does not get it."""
        self.notices.publish(LOBBY, "alice has joined", exclude=self.alice)
        self.assertEqual(self.alice.received, [])

    def test_stop(self) -> None:
        """Stopping cancels summaries to come."""
        for number in range(10):
            self.notices.publish(LOBBY, f"guest{number} has joined")
        self.notices.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])
