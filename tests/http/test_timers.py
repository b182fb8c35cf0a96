"""
Tests for L{twisted_services.http.timers}: a connection's deadlines on one
timer, driven by a L{Clock}.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from twisted_services.http.timers import ConnectionTimer


class Recorder:
    """A L{ConnectionTimer} on a L{Clock}, and the callbacks it made."""

    def __init__(
        self, idleTimeout: float = 60.0, headerTimeout: float = 10.0, grace: float = 3.0
    ) -> None:
        self.clock = Clock()
        self.calls: list[str] = []
        self.timer = ConnectionTimer(
            self.clock,
            idleTimeout,
            headerTimeout,
            grace,
            expired=lambda: self.calls.append("expired"),
            graceOver=lambda: self.calls.append("graceOver"),
        )
        self.timer.start(self.clock.seconds())

    def readAt(self, when: float) -> None:
        """Advance to C{when} and note a read then, as the protocol does."""
        self.clock.advance(when - self.clock.seconds())
        self.timer.lastActivity = when

    def advanceTo(self, when: float) -> None:
        self.clock.advance(when - self.clock.seconds())


class IdleTests(SynchronousTestCase):
    """The idle deadline runs from the last read."""

    def test_expiresAfterIdleTimeout(self) -> None:
        """With no read, C{expired} is called C{idleTimeout} after the start."""
        recorder = Recorder(idleTimeout=60)
        recorder.advanceTo(59.9)
        self.assertEqual(recorder.calls, [])
        recorder.advanceTo(60)
        self.assertEqual(recorder.calls, ["expired"])
        self.assertEqual(recorder.clock.getDelayedCalls(), [])

    def test_readsMoveDeadlineOnOneCall(self) -> None:
        """
        Reads move the idle deadline on without touching the call, which
        reschedules itself for the deadline when it fires early.
        """
        recorder = Recorder(idleTimeout=60)
        [call] = recorder.clock.getDelayedCalls()
        for when in range(10, 60, 10):
            recorder.readAt(when)
            self.assertEqual(recorder.clock.getDelayedCalls(), [call])
        recorder.advanceTo(60)
        self.assertEqual(recorder.calls, [])
        recorder.advanceTo(109.9)
        self.assertEqual(recorder.calls, [])
        recorder.advanceTo(110)
        self.assertEqual(recorder.calls, ["expired"])

    def test_noIdleTimeout(self) -> None:
        """An idle timeout of 0 sets no call at all."""
        recorder = Recorder(idleTimeout=0)
        self.assertEqual(recorder.clock.getDelayedCalls(), [])


class HeadTests(SynchronousTestCase):
    """A head must be complete C{headerTimeout} after it began, reads or not."""

    def test_headDeadlineNearer(self) -> None:
        """A head deadline nearer than the idle one brings the call forward."""
        recorder = Recorder(idleTimeout=60, headerTimeout=10)
        recorder.readAt(5)
        recorder.timer.headBegan(5)
        [call] = recorder.clock.getDelayedCalls()
        self.assertEqual(call.getTime(), 15)
        recorder.readAt(14)
        recorder.advanceTo(15)
        self.assertEqual(recorder.calls, ["expired"])

    def test_headDeadlineFurther(self) -> None:
        """
        A head deadline past the call leaves it alone; when it fires the call
        is set for the head deadline, which still ends the head in time.
        """
        recorder = Recorder(idleTimeout=60, headerTimeout=10)
        recorder.readAt(55)
        recorder.timer.headBegan(55)
        [call] = recorder.clock.getDelayedCalls()
        self.assertEqual(call.getTime(), 60)
        recorder.advanceTo(60)
        self.assertEqual(recorder.calls, [])
        recorder.advanceTo(65)
        self.assertEqual(recorder.calls, ["expired"])

    def test_headDone(self) -> None:
        """A head complete in time no longer counts: only the idle deadline does."""
        recorder = Recorder(idleTimeout=60, headerTimeout=10)
        recorder.timer.headBegan(0)
        recorder.readAt(9)
        recorder.timer.headDone()
        recorder.advanceTo(68.9)
        self.assertEqual(recorder.calls, [])
        recorder.advanceTo(69)
        self.assertEqual(recorder.calls, ["expired"])

    def test_withoutIdleTimeout(self) -> None:
        """The head deadline holds with no idle timeout."""
        recorder = Recorder(idleTimeout=0, headerTimeout=5)
        recorder.timer.headBegan(0)
        recorder.readAt(4)
        recorder.advanceTo(5)
        self.assertEqual(recorder.calls, ["expired"])
        self.assertEqual(recorder.clock.getDelayedCalls(), [])


class BodyTests(SynchronousTestCase):
    """A body must be complete its timeout after it began, reads or not."""

    def test_bodyDeadline(self) -> None:
        """Reads that keep the idle deadline away do not move the body's."""
        recorder = Recorder(idleTimeout=60, headerTimeout=10)
        recorder.timer.bodyBegan(0, 20)
        for when in range(5, 20, 5):
            recorder.readAt(when)
        self.assertEqual(recorder.calls, [])
        recorder.advanceTo(20)
        self.assertEqual(recorder.calls, ["expired"])

    def test_bodyDone(self) -> None:
        """A body complete in time no longer counts: only the idle deadline does."""
        recorder = Recorder(idleTimeout=60, headerTimeout=10)
        recorder.timer.bodyBegan(0, 20)
        recorder.readAt(19)
        recorder.timer.bodyDone()
        recorder.advanceTo(78.9)
        self.assertEqual(recorder.calls, [])
        recorder.advanceTo(79)
        self.assertEqual(recorder.calls, ["expired"])


class ClosingTests(SynchronousTestCase):
    """Once closing, only the grace period is left."""

    def test_graceOver(self) -> None:
        """C{graceOver}, not C{expired}, is called C{closeGrace} after closing."""
        recorder = Recorder(idleTimeout=60, headerTimeout=10, grace=3)
        recorder.timer.headBegan(0)
        recorder.advanceTo(1)
        recorder.timer.closing(1)
        [call] = recorder.clock.getDelayedCalls()
        self.assertEqual(call.getTime(), 4)
        recorder.advanceTo(4)
        self.assertEqual(recorder.calls, ["graceOver"])
        self.assertEqual(recorder.clock.getDelayedCalls(), [])

    def test_graceWithoutIdleTimeout(self) -> None:
        """The grace period is timed with no idle timeout too."""
        recorder = Recorder(idleTimeout=0, grace=3)
        recorder.timer.closing(0)
        recorder.advanceTo(3)
        self.assertEqual(recorder.calls, ["graceOver"])

    def test_stop(self) -> None:
        """L{ConnectionTimer.stop} cancels the call; nothing is called after."""
        recorder = Recorder()
        recorder.timer.closing(0)
        recorder.timer.stop()
        self.assertEqual(recorder.clock.getDelayedCalls(), [])
        recorder.advanceTo(100)
        self.assertEqual(recorder.calls, [])
