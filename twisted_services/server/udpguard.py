"""
Rules that keep a UDP service from being used as a reflection amplifier or
from ping-ponging with another UDP service.

A UDP reply goes to an address nobody verified. Well-known source ports
(below 1024) and our own port are where spoofed loops come from (echo to
chargen, converter to converter), and a per-source token bucket caps what any
one victim can be sent.
"""

from __future__ import annotations

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from twisted_services.core.ratelimit import SourceRateLimiter
from twisted_services.core.reporting import ThrottledReport

DROP_LOG_INTERVAL = 10.0


class ReflectionGuard:
    """
    Decides whether a datagram from C{(host, port)} may be answered, and
    counts the ones that may not, logging the count at most once per interval.
    """

    _log = Logger()

    def __init__(
        self,
        serviceName: str,
        clock: IReactorTime,
        rate: float,
        burst: int,
        maxSources: int = 10000,
    ) -> None:
        self._serviceName = serviceName
        self._limiter = SourceRateLimiter(rate, burst, clock, maxSources)
        self._drops = ThrottledReport(clock, DROP_LOG_INTERVAL, self._logDropped)
        self.ownPort = 0
        self.dropped = 0

    def allows(self, address: tuple[str, int]) -> bool:
        """Whether a reply to C{address} is allowed now; a refusal is counted."""
        host, port = address[0], address[1]
        if port < 1024 or port == self.ownPort or not self._limiter.allow(host):
            self.drop()
            return False
        return True

    def drop(self) -> None:
        """Count a datagram left unanswered for any reason."""
        self.dropped += 1
        self._drops.record()

    def stop(self) -> None:
        self._drops.stop()

    def _logDropped(self, count: int) -> None:
        self._log.warn(
            "{service}: dropped {count} datagram(s) (unanswerable, from a "
            "reserved or our own port, or over the per-source rate limit)",
            service=self._serviceName,
            count=count,
        )
