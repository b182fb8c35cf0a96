"""
Token buckets: one per client for chat flood control, one per source address
for the UDP services, with a bounded table of sources.
"""

from __future__ import annotations

from collections import OrderedDict

from twisted.internet.interfaces import IReactorTime


class TokenBucket:
    """
    Allows C{burst} events at once and C{rate} events per second on average.
    Time is passed in, so the bucket is a pure value that tests drive directly.
    """

    __slots__ = ("_burst", "_rate", "_tokens", "_updated")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._updated = now

    def take(self, now: float) -> bool:
        """Spend one token if there is one; C{False} means over the limit."""
        self._refill(now)
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False

    def _refill(self, now: float) -> None:
        elapsed = now - self._updated
        if elapsed:
            # A wall clock set backwards refills nothing, but moves the mark.
            refill = max(elapsed, 0.0) * self._rate
            self._tokens = min(self._burst, self._tokens + refill)
            self._updated = now

    def spend(self, amount: float, now: float) -> float:
        """
        Spend C{amount} tokens at once, going into debt if there are not
        enough (what was received is already here); the return value is how
        many seconds until the debt is paid off, 0 if there is none.
        """
        self._refill(now)
        self._tokens -= amount
        return max(-self._tokens / self._rate, 0.0)

    def idleSince(self) -> float:
        return self._updated


class SourceRateLimiter:
    """
    One L{TokenBucket} per source (an IP address), in a table of at most
    C{maxSources} entries.

    A bucket left alone for C{burst / rate} seconds is full again, so it is
    indistinguishable from a new one and is expired. When the table is full
    the least recently seen source is forgotten: a flood of spoofed sources
    costs bounded memory, and at worst gives a forgotten source one more burst.
    """

    def __init__(
        self, rate: float, burst: int, clock: IReactorTime, maxSources: int = 10000
    ) -> None:
        TokenBucket(rate, burst, 0)  # validates the parameters up front
        self._rate = rate
        self._burst = burst
        self._clock = clock
        self._maxSources = maxSources
        self._refillTime = burst / rate
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def allow(self, source: str) -> bool:
        """Whether C{source} may have one more reply now."""
        now = self._clock.seconds()
        buckets = self._buckets
        bucket = buckets.get(source)
        if bucket is None:
            self._expire(now)
            if len(buckets) >= self._maxSources:
                buckets.popitem(last=False)
            bucket = buckets[source] = TokenBucket(self._rate, self._burst, now)
        else:
            buckets.move_to_end(source)
        return bucket.take(now)

    def _expire(self, now: float) -> None:
        buckets = self._buckets
        while buckets:
            oldest = next(iter(buckets.values()))
            if now - oldest.idleSince() < self._refillTime:
                return
            buckets.popitem(last=False)
