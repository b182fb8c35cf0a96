"""
Tests for L{twisted_services.core.ratelimit}: token buckets and the bounded table
of per-source buckets.
"""

from __future__ import annotations

from hypothesis import given, settings, strategies
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from twisted_services.core.ratelimit import SourceRateLimiter, TokenBucket


def taken(bucket: TokenBucket, now: float, times: int) -> int:
    """How many of C{times} attempts at C{now} get a token."""
    return sum(bucket.take(now) for _ in range(times))


class TokenBucketTests(SynchronousTestCase):
    """L{TokenBucket} allows C{burst} at once and C{rate} per second after."""

    def test_burstAtOnce(self) -> None:
        """A new bucket allows exactly C{burst} events at the same instant."""
        bucket = TokenBucket(rate=1, burst=5, now=0)
        self.assertEqual(taken(bucket, 0, 10), 5)

    def test_refillsAtRate(self) -> None:
        """An empty bucket earns one token every C{1 / rate} seconds."""
        bucket = TokenBucket(rate=4, burst=2, now=0)
        taken(bucket, 0, 2)
        self.assertFalse(bucket.take(0.2))
        self.assertTrue(bucket.take(0.25))
        self.assertFalse(bucket.take(0.25))
        self.assertEqual(taken(bucket, 0.75, 5), 2)

    def test_fractionsAccumulate(self) -> None:
        """Partial tokens earned between attempts add up."""
        bucket = TokenBucket(rate=1, burst=1, now=0)
        bucket.take(0)
        self.assertFalse(bucket.take(0.5))
        self.assertTrue(bucket.take(1.0))

    def test_neverAboveBurst(self) -> None:
        """However long a bucket rests, it holds at most C{burst} tokens."""
        bucket = TokenBucket(rate=10, burst=3, now=0)
        self.assertEqual(taken(bucket, 10**6, 10), 3)

    def test_deniedAttemptsCostNothing(self) -> None:
        """Attempts over the limit do not delay the next token."""
        bucket = TokenBucket(rate=1, burst=1, now=0)
        bucket.take(0)
        taken(bucket, 0.9, 100)
        self.assertTrue(bucket.take(1.0))

    def test_idleSince(self) -> None:
        """L{TokenBucket.idleSince} is the time of the last attempt."""
        bucket = TokenBucket(rate=1, burst=1, now=3)
        self.assertEqual(bucket.idleSince(), 3)
        bucket.take(7.5)
        self.assertEqual(bucket.idleSince(), 7.5)

    def test_badParameters(self) -> None:
        """A rate of 0 or less, or a burst below 1, is a L{ValueError}."""
        for rate, burst in [(0, 1), (-1, 1), (1, 0), (1, 0.5)]:
            self.assertRaises(ValueError, TokenBucket, rate, burst, 0)

    @settings(max_examples=200, deadline=None)
    @given(
        rate=strategies.floats(0.1, 100),
        burst=strategies.integers(1, 50),
        steps=strategies.lists(strategies.floats(0, 5), max_size=100),
    )
    def test_neverExceedsRatePlusBurst(
        self, rate: float, burst: int, steps: list[float]
    ) -> None:
        """Over any span, at most C{burst + rate * span} events are allowed."""
        bucket = TokenBucket(rate, burst, now=0)
        now = 0.0
        allowed = 0
        for step in steps:
            now += step
            allowed += taken(bucket, now, 3)
        self.assertLessEqual(allowed, burst + rate * now + 1e-6)


class SourceRateLimiterTests(SynchronousTestCase):
    """L{SourceRateLimiter} keeps one bucket per source in a bounded table."""

    def test_perSource(self) -> None:
        """Each source has its own burst."""
        limiter = SourceRateLimiter(rate=1, burst=2, clock=Clock())
        self.assertEqual([limiter.allow("a") for _ in range(3)], [True, True, False])
        self.assertEqual([limiter.allow("b") for _ in range(3)], [True, True, False])
        self.assertEqual(len(limiter), 2)

    def test_refillsWithClock(self) -> None:
        """Time on the clock gives a limited source more tokens."""
        clock = Clock()
        limiter = SourceRateLimiter(rate=2, burst=1, clock=clock)
        limiter.allow("a")
        self.assertFalse(limiter.allow("a"))
        clock.advance(0.5)
        self.assertTrue(limiter.allow("a"))

    def test_idleEntriesExpire(self) -> None:
        """A source idle for C{burst / rate} seconds is forgotten."""
        clock = Clock()
        limiter = SourceRateLimiter(rate=2, burst=4, clock=clock)
        limiter.allow("a")
        clock.advance(1.5)
        limiter.allow("b")
        self.assertEqual(len(limiter), 2)
        clock.advance(0.5)
        limiter.allow("c")
        self.assertEqual(len(limiter), 2)
        clock.advance(2)
        limiter.allow("d")
        self.assertEqual(len(limiter), 1)

    def test_recentUseKeepsEntry(self) -> None:
        """A source seen again is not expired by its first sighting's age."""
        clock = Clock()
        limiter = SourceRateLimiter(rate=1, burst=2, clock=clock)
        limiter.allow("a")
        clock.advance(1.5)
        limiter.allow("a")
        clock.advance(1)
        limiter.allow("b")
        self.assertEqual(len(limiter), 2)

    def test_floodBounded(self) -> None:
        """A flood of distinct sources never grows the table past C{maxSources}."""
        limiter = SourceRateLimiter(rate=1, burst=1, clock=Clock(), maxSources=100)
        for index in range(10000):
            self.assertTrue(limiter.allow(f"127.8.{index // 256}.{index % 256}"))
        self.assertEqual(len(limiter), 100)

    def test_evictsLeastRecentlySeen(self) -> None:
        """When the table is full, the source seen longest ago is forgotten."""
        limiter = SourceRateLimiter(rate=1, burst=1, clock=Clock(), maxSources=2)
        limiter.allow("a")
        limiter.allow("b")
        self.assertFalse(limiter.allow("a"))
        limiter.allow("c")
        # "a" was seen after "b", so "b" went and "a" is still limited.
        self.assertFalse(limiter.allow("a"))
        self.assertTrue(limiter.allow("b"))

    def test_burstThenRefused(self) -> None:
        """
        A source gets exactly C{burst} replies at once (the legal burst is
        never cut short) and the one after is refused.
        """
        limiter = SourceRateLimiter(rate=20, burst=40, clock=Clock())
        self.assertEqual(sum(limiter.allow("a") for _ in range(40)), 40)
        self.assertFalse(limiter.allow("a"))

    def test_steadyRateAllowed(self) -> None:
        """
        A source sending at exactly C{rate}, after spending its burst, is
        always answered; a little faster, and it is refused.
        """
        clock = Clock()
        limiter = SourceRateLimiter(rate=4, burst=2, clock=clock)
        self.assertEqual(sum(limiter.allow("a") for _ in range(2)), 2)
        allowed = []
        for _ in range(40):
            clock.advance(0.25)
            allowed.append(limiter.allow("a"))
        self.assertEqual(allowed, [True] * 40)
        clock.advance(0.2)
        self.assertFalse(limiter.allow("a"))

    def test_clockSetBackRefillsNothing(self) -> None:
        """
        A wall clock set backwards gives no tokens, and the refill restarts
        from the earlier time, as L{TokenBucket} does.
        """
        clock = Clock()
        clock.advance(100)
        limiter = SourceRateLimiter(rate=1, burst=1, clock=clock)
        self.assertTrue(limiter.allow("a"))
        clock.advance(-50)
        self.assertFalse(limiter.allow("a"))
        clock.advance(1)
        self.assertTrue(limiter.allow("a"))

    @settings(max_examples=200, deadline=None)
    @given(
        rate=strategies.floats(0.1, 100),
        burst=strategies.integers(1, 50),
        steps=strategies.lists(strategies.floats(-1, 5), max_size=100),
    )
    def test_sameAnswersAsTokenBucket(
        self, rate: float, burst: int, steps: list[float]
    ) -> None:
        """
        For one source the limiter, whose bucket arithmetic is inlined for
        speed, answers every attempt as a L{TokenBucket} does, clock set
        backwards included.
        """
        clock = Clock()
        limiter = SourceRateLimiter(rate, burst, clock, maxSources=10)
        bucket = TokenBucket(rate, burst, now=0)
        for step in steps:
            clock.advance(step)
            for _ in range(3):
                self.assertEqual(limiter.allow("a"), bucket.take(clock.seconds()))

    def test_badParameters(self) -> None:
        """Bad rate, burst or table size values are refused when it is made."""
        self.assertRaises(ValueError, SourceRateLimiter, 0, 1, Clock())
        self.assertRaises(ValueError, SourceRateLimiter, 1, 0, Clock())
        self.assertRaises(ValueError, SourceRateLimiter, 1, 1, Clock(), 0)
