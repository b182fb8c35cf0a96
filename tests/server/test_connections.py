"""
Tests for L{twisted_services.server.connections.ConnectionLimit}.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from twisted_services.server.connections import REFUSAL_LOG_INTERVAL, ConnectionLimit


class ConnectionLimitTests(SynchronousTestCase):
    """L{ConnectionLimit} counts open connections against a maximum."""

    def test_admitsBelowMaximum(self) -> None:
        """Connections are admitted while fewer than C{maximum} are open."""
        limit = ConnectionLimit(2, Clock(), "test")
        self.assertTrue(limit.admits())
        limit.opened()
        self.assertTrue(limit.admits())
        limit.opened()
        self.assertFalse(limit.admits())
        self.assertEqual(limit.open, 2)

    def test_closedFreesSlot(self) -> None:
        """A closed connection makes room for one more."""
        limit = ConnectionLimit(1, Clock(), "test")
        limit.opened()
        limit.closed()
        self.assertTrue(limit.admits())
        self.assertEqual(limit.open, 0)

    def test_refusalLogged(self) -> None:
        """A refusal is logged at once as a warning naming service and limit."""
        limit = ConnectionLimit(1, Clock(), "chat")
        limit.opened()
        with capturedLogs() as events:
            limit.admits()
        self.assertEqual(
            [formatEvent(event) for event in events],
            ["chat: refused 1 connection(s): limit of 1 reached"],
        )
        self.assertEqual(events[0]["log_level"], LogLevel.warn)

    def test_refusalsThrottled(self) -> None:
        """Under a flood, refusals are logged at most once per interval."""
        clock = Clock()
        limit = ConnectionLimit(1, clock, "chat")
        limit.opened()
        with capturedLogs() as events:
            for _ in range(1000):
                limit.admits()
            clock.advance(REFUSAL_LOG_INTERVAL / 2)
            beforeInterval = len(events)
            clock.advance(REFUSAL_LOG_INTERVAL / 2)
        self.assertEqual(beforeInterval, 1)
        self.assertEqual(
            formatEvent(events[-1]),
            "chat: refused 999 connection(s): limit of 1 reached",
        )
        self.assertEqual(len(events), 2)

    def test_admittedNotLogged(self) -> None:
        """Admitting a connection logs nothing."""
        limit = ConnectionLimit(1, Clock(), "chat")
        with capturedLogs() as events:
            limit.admits()
        self.assertEqual(events, [])
