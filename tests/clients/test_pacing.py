"""
Tests for L{twisted_services.clients.pacing}: lines go out no faster than a
server's token bucket lets them in, on a L{Clock}.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from twisted_services.clients.pacing import LinePacer
from twisted_services.core.ratelimit import TokenBucket


class Producer:
    """Records whether it is paused."""

    paused = False

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False

    def stopProducing(self) -> None:
        pass


def pacer(
    rate: float = 4.0, burst: int = 10, maxQueued: int = 256
) -> tuple[LinePacer, list[bytes], Clock]:
    """A L{LinePacer} sending into a list, on a clock."""
    clock = Clock()
    sent: list[bytes] = []
    return LinePacer(sent.append, clock, rate, burst, maxQueued), sent, clock


def lines(count: int) -> list[bytes]:
    return [b"line %d" % n for n in range(count)]


class LinePacerTests(SynchronousTestCase):
    """L{LinePacer} sends a burst at once, then at its rate, in order."""

    def test_burstAtOnce(self) -> None:
        """Up to the burst, every line goes out at once."""
        linePacer, sent, _ = pacer(burst=10)
        for line in lines(10):
            self.assertTrue(linePacer.push(line))
        self.assertEqual(sent, lines(10))
        self.assertEqual(len(linePacer), 0)

    def test_overBurstWaits(self) -> None:
        """The line after the burst waits 1/rate seconds, and no longer."""
        linePacer, sent, clock = pacer(rate=4.0, burst=10)
        for line in lines(11):
            linePacer.push(line)
        self.assertEqual(len(sent), 10)
        clock.advance(0.24)
        self.assertEqual(len(sent), 10)
        clock.advance(0.01)
        self.assertEqual(sent, lines(11))

    def test_pasteUnderServerLimit(self) -> None:
        """
        A paste of 100 lines at the defaults (4/s, burst 10) meets the
        server's default bucket (5/s, burst 20) and is refused nothing.
        """
        self.assertEqual(self._refusedByServer(rate=4.0, burst=10), 0)

    def test_pasteOverServerLimit(self) -> None:
        """
        The same paste paced a little over the server's rate (6/s, burst 20)
        has lines refused: the server's limit is what the pace must stay under.
        """
        self.assertGreater(self._refusedByServer(rate=6.0, burst=20), 0)

    def _refusedByServer(self, rate: float, burst: int) -> int:
        clock = Clock()
        server = TokenBucket(5.0, 20, clock.seconds())
        refused: list[bytes] = []

        def send(line: bytes) -> None:
            if not server.take(clock.seconds()):
                refused.append(line)

        linePacer = LinePacer(send, clock, rate, burst, 256)
        for line in lines(100):
            linePacer.push(line)
        for _ in range(30 * 100):  # 30 s in 10 ms steps: bounded
            if not len(linePacer):
                break
            clock.advance(0.01)
        self.assertEqual(len(linePacer), 0)
        return len(refused)

    def test_queueBounded(self) -> None:
        """
        A full queue pauses the input's producer and refuses further lines;
        the producer resumes once half the queue is sent.
        """
        linePacer, sent, clock = pacer(rate=1.0, burst=1, maxQueued=4)
        producer = Producer()
        linePacer.pauseWhenFull(producer)
        for line in lines(4):
            self.assertTrue(linePacer.push(line))
        self.assertFalse(producer.paused)  # one sent, three queued
        self.assertTrue(linePacer.push(b"fifth"))
        self.assertTrue(producer.paused)
        self.assertFalse(linePacer.push(b"sixth"))
        clock.advance(1)
        self.assertTrue(producer.paused)  # three queued
        clock.advance(1)
        self.assertFalse(producer.paused)  # two queued
        clock.pump([1, 1])
        self.assertEqual(sent, [*lines(4), b"fifth"])

    def test_whenIdle(self) -> None:
        """L{LinePacer.whenIdle} fires once the last queued line is sent."""
        linePacer, _, clock = pacer(rate=2.0, burst=1)
        self.successResultOf(linePacer.whenIdle())
        linePacer.push(b"a")
        linePacer.push(b"b")
        idle = linePacer.whenIdle()
        self.assertNoResult(idle)
        clock.advance(0.5)
        self.successResultOf(idle)

    def test_stop(self) -> None:
        """After L{LinePacer.stop} nothing is sent and nothing is scheduled."""
        linePacer, sent, clock = pacer(rate=1.0, burst=1)
        linePacer.push(b"a")
        linePacer.push(b"b")
        linePacer.stop()
        self.assertEqual(clock.getDelayedCalls(), [])
        self.assertFalse(linePacer.push(b"c"))
        self.assertEqual(sent, [b"a"])

    def test_badQueueSize(self) -> None:
        """A queue must hold at least one line."""
        self.assertRaises(ValueError, pacer, maxQueued=0)
