"""
What the services count, as plain integers: a protocol bumps an attribute per
event (a few tens of nanoseconds) and the collectors read them only when
Prometheus scrapes. Nothing here imports C{prometheus_client}, so counting
costs the same whether or not C{--metrics} is on.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

MAX_CONNECTIONS = "max_connections"
"""The C{reason} of a connection refused past C{--max-connections}."""

PER_ADDRESS = "per_address"
"""The C{reason} of a connection refused past its address's open limit."""

CONNECT_RATE = "connect_rate"
"""The C{reason} of a connection refused past its address's connect rate."""


class StreamCounters:
    """
    What every TCP service counts, owned by its L{ConnectionTracker} (which
    counts the connections) and bumped by its protocols (bytes, timeouts).

    @ivar accepted: connections admitted.
    @ivar refused: connections refused, by the limit that refused them (only
        the limits the service has are keys).
    @ivar timedOut: connections closed because their client went quiet too
        long (or, for http, took too long over a request).
    @ivar bytesReceived: bytes read from clients.
    @ivar bytesSent: bytes written to clients.
    """

    __slots__ = ("accepted", "bytesReceived", "bytesSent", "refused", "timedOut")

    def __init__(self, refusalReasons: Sequence[str] = (MAX_CONNECTIONS,)) -> None:
        self.accepted = 0
        self.refused = dict.fromkeys(refusalReasons, 0)
        self.timedOut = 0
        self.bytesReceived = 0
        self.bytesSent = 0


UNANSWERABLE = "unanswerable"
"""Dropped: the datagram itself may not be answered (empty, too long, a reply)."""

RESERVED_PORT = "reserved_port"
"""Dropped: from a port below 1024 or from the service's own port."""

RATE_LIMITED = "rate_limited"
"""Dropped: its source is over its reply rate."""

SEND_FAILED = "send_failed"
"""Dropped: the system would not send the reply."""


class DatagramCounters:
    """
    What a request/reply UDP service counts: datagrams answered, and those
    dropped by reason.
    """

    __slots__ = (
        "answered",
        "rateLimited",
        "reservedPort",
        "sendFailed",
        "unanswerable",
    )

    def __init__(self) -> None:
        self.answered = 0
        self.unanswerable = 0
        self.reservedPort = 0
        self.rateLimited = 0
        self.sendFailed = 0

    def dropped(self) -> dict[str, int]:
        """The drops by reason, as the C{reason} label spells each."""
        return {
            UNANSWERABLE: self.unanswerable,
            RESERVED_PORT: self.reservedPort,
            RATE_LIMITED: self.rateLimited,
            SEND_FAILED: self.sendFailed,
        }


DURATION_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
"""Upper bounds, in seconds, of a request duration histogram's buckets."""


class Histogram:
    """
    A histogram as plain numbers: a count per bucket (not cumulative; the
    last one is C{+Inf}) and the sum. L{observe} takes a count, so that the
    requests answered in one read are recorded at once.
    """

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float] = DURATION_BUCKETS) -> None:
        if list(bounds) != sorted(bounds) or not bounds:
            raise ValueError("bounds must be given, in increasing order")
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float, count: int = 1) -> None:
        """Record C{count} observations of C{value}."""
        # bisect_left: a value equal to a bound belongs to that bound's bucket
        # ("less than or equal", as Prometheus's le says).
        self.counts[bisect_left(self.bounds, value)] += count
        self.sum += value * count

    def cumulative(self) -> list[tuple[str, int]]:
        """The buckets as Prometheus wants them: C{(le, count so far)}."""
        buckets = []
        total = 0
        for bound, count in zip((*self.bounds, float("inf")), self.counts, strict=True):
            total += count
            buckets.append((_le(bound), total))
        return buckets


def _le(bound: float) -> str:
    """A bucket's C{le} label: C{+Inf}, or the bound as Prometheus prints it."""
    return "+Inf" if bound == float("inf") else repr(float(bound))
