"""
Per-address admission: how many connections one address may hold at once,
and how often it may open a new one, so that one host cannot churn the
chat (every arrival and departure is announced to a room) or fill it.

Local to this server, as a connection is.
"""

from __future__ import annotations

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from twisted_services.core.ratelimit import SourceRateLimiter
from twisted_services.core.reporting import ThrottledReport

REFUSAL_LOG_INTERVAL = 10.0
"""Refusals are logged at most once per this many seconds, with a count."""

TOO_MANY = "too many connections from your address"
TOO_FAST = "connecting too often from your address"


class AddressAdmission:
    """
    Admits connections from an address while it holds fewer than
    C{maxPerAddress} (0 for no limit) and has opened at most C{burst} at once
    and C{rate} a second on average; refusals are logged, throttled.

    @param maxSources: how many addresses' connection rates are remembered
        (the least recently seen is forgotten first).
    """

    _log = Logger()

    def __init__(
        self,
        clock: IReactorTime,
        maxPerAddress: int,
        rate: float,
        burst: int,
        maxSources: int = 10000,
    ) -> None:
        if maxPerAddress < 0:
            raise ValueError("maxPerAddress must be 0 (no limit) or more")
        self.maxPerAddress = maxPerAddress
        self._rates = SourceRateLimiter(rate, burst, clock, maxSources)
        self._open: dict[str, int] = {}
        self._refused: dict[str, int] = {}
        self._report = ThrottledReport(clock, REFUSAL_LOG_INTERVAL, self._logRefused)

    def refusal(self, host: str) -> str | None:
        """
        Why a new connection from C{host} is refused, or L{None} if it is
        admitted (the caller then counts it with L{opened}). Every attempt
        counts against the rate, refused or not.
        """
        fast = not self._rates.allow(host)
        if self.maxPerAddress and self._open.get(host, 0) >= self.maxPerAddress:
            why = TOO_MANY
        elif fast:
            why = TOO_FAST
        else:
            return None
        self._refused[why] = self._refused.get(why, 0) + 1
        self._report.record()
        return why

    def opened(self, host: str) -> None:
        """An admitted connection from C{host} is open."""
        self._open[host] = self._open.get(host, 0) + 1

    def closed(self, host: str) -> None:
        """A connection from C{host} that L{opened} counted is closed."""
        left = self._open.get(host, 0) - 1
        if left > 0:
            self._open[host] = left
        else:
            self._open.pop(host, None)

    def openFrom(self, host: str) -> int:
        """How many connections C{host} holds."""
        return self._open.get(host, 0)

    def _logRefused(self, count: int) -> None:
        reasons = ", ".join(f"{n} {why}" for why, n in sorted(self._refused.items()))
        self._refused.clear()
        self._log.warn(
            "chat: refused {count} connection(s): {reasons}",
            count=count,
            reasons=reasons,
        )
