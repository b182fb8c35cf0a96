"""
Tests for L{twisted_services.server.connections}: the connection limit, the
tracker that drains connections on shutdown, and the factory that uses it.
"""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from twisted_services.server.connections import (
    REFUSAL_LOG_INTERVAL,
    ConnectionLimit,
    ConnectionTracker,
    ShutdownService,
    TrackingFactory,
)

PEER = IPv4Address("TCP", "127.0.0.1", 40000)


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


class FakeConnection:
    """A L{Drainable} that records what it was asked to do."""

    def __init__(self, tracker: ConnectionTracker) -> None:
        self.tracker = tracker
        self.calls: list[str] = []
        tracker.opened(self)

    def drain(self) -> None:
        self.calls.append("drain")

    def abort(self) -> None:
        self.calls.append("abort")

    def lost(self) -> None:
        self.tracker.closed(self)


class ConnectionTrackerTests(SynchronousTestCase):
    """L{ConnectionTracker} admits, knows and drains a service's connections."""

    def test_countsOpen(self) -> None:
        """Opened connections count against the limit until closed."""
        tracker = ConnectionTracker("echo", Clock(), 2)
        first = FakeConnection(tracker)
        FakeConnection(tracker)
        self.assertEqual(len(tracker), 2)
        self.assertFalse(tracker.admits())
        first.lost()
        self.assertEqual(len(tracker), 1)
        self.assertTrue(tracker.admits())

    def test_drainAsksEveryConnection(self) -> None:
        """A drain asks each open connection to finish and waits for all."""
        tracker = ConnectionTracker("chat", Clock(), 10)
        connections = [FakeConnection(tracker) for _ in range(3)]
        drained = tracker.drain()
        self.assertTrue(tracker.shuttingDown)
        self.assertEqual([c.calls for c in connections], [["drain"]] * 3)
        for connection in connections[:2]:
            connection.lost()
        self.assertNoResult(drained)
        connections[2].lost()
        self.successResultOf(drained)

    def test_drainWithNothingOpen(self) -> None:
        """With no connection open, a drain is complete at once."""
        self.successResultOf(ConnectionTracker("http", Clock(), 1).drain())

    def test_abortsAfterTimeout(self) -> None:
        """Connections left after C{drainTimeout} are aborted, and logged."""
        clock = Clock()
        tracker = ConnectionTracker("http", clock, 10, drainTimeout=5)
        quick, slow = FakeConnection(tracker), FakeConnection(tracker)
        drained = tracker.drain()
        quick.lost()
        with capturedLogs() as events:
            clock.advance(5)
        self.assertEqual(slow.calls, ["drain", "abort"])
        self.assertEqual(quick.calls, ["drain"])
        self.assertIn(
            "http: 1 connection(s) not finished within 5 seconds, aborting",
            [formatEvent(e) for e in events],
        )
        slow.lost()
        self.successResultOf(drained)

    def test_noAbortOnceDrained(self) -> None:
        """A drain that completes in time cancels its abort timer."""
        clock = Clock()
        tracker = ConnectionTracker("http", clock, 10, drainTimeout=5)
        connection = FakeConnection(tracker)
        tracker.drain()
        connection.lost()
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_negativeTimeoutRefused(self) -> None:
        """A negative drain timeout is a programming error."""
        self.assertRaises(ValueError, ConnectionTracker, "x", Clock(), 1, -1)


class TrackingFactoryTests(SynchronousTestCase):
    """L{TrackingFactory} builds protocols only for admitted connections."""

    def factory(self, maximum: int, whenFull: Protocol | None = None) -> Factory:
        class Tracked(TrackingFactory):
            protocol = Protocol

            def protocolWhenFull(self) -> Protocol | None:
                return whenFull

        factory = Tracked()
        factory.connections = ConnectionTracker("test", Clock(), maximum)
        return factory

    def test_builtWhileAdmitted(self) -> None:
        """Below the limit the factory's protocol is built."""
        self.assertIsInstance(self.factory(1).buildProtocol(PEER), Protocol)

    def test_fullGetsProtocolWhenFull(self) -> None:
        """Past the limit the connection gets L{protocolWhenFull}."""
        full = Protocol()
        factory = self.factory(1, full)
        FakeConnection(factory.connections)
        self.assertIs(factory.buildProtocol(PEER), full)

    def test_noneWhileShuttingDown(self) -> None:
        """While draining, nothing is built: the port closes the socket."""
        factory = self.factory(5, Protocol())
        factory.connections.drain()
        self.assertIsNone(factory.buildProtocol(PEER))


class ShutdownServiceTests(SynchronousTestCase):
    """L{ShutdownService} drains its tracker when the application stops."""

    def test_stopDrains(self) -> None:
        """Stopping returns the drain; starting again admits connections."""
        tracker = ConnectionTracker("chat", Clock(), 5)
        connection = FakeConnection(tracker)
        service = ShutdownService(tracker)
        service.startService()
        stopped = service.stopService()
        self.assertEqual(connection.calls, ["drain"])
        self.assertNoResult(stopped)
        connection.lost()
        self.successResultOf(stopped)
        service.startService()
        self.assertFalse(tracker.shuttingDown)
