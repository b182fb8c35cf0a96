"""
A ceiling on open connections, shared by the TCP services' factories.

C{twisted.protocols.policies.LimitConnectionsByPeer} is broken in Twisted 26.10
(it indexes an C{IPv4Address}), and a global ceiling is what an operator needs
to protect the process's descriptors and memory anyway.
"""

from __future__ import annotations

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from twisted_services.core.reporting import ThrottledReport

REFUSAL_LOG_INTERVAL = 10.0


class ConnectionLimit:
    """
    Counts a service's open connections against C{maximum}; refusals are
    logged at most once per L{REFUSAL_LOG_INTERVAL} under a flood.
    """

    _log = Logger()

    def __init__(self, maximum: int, clock: IReactorTime, serviceName: str) -> None:
        self.maximum = maximum
        self.open = 0
        self._serviceName = serviceName
        self._refusals = ThrottledReport(clock, REFUSAL_LOG_INTERVAL, self._logRefused)

    def admits(self) -> bool:
        """
        Whether one more connection fits; a refusal is recorded for the log.
        The caller counts an admitted connection with L{opened}.
        """
        if self.open < self.maximum:
            return True
        self._refusals.record()
        return False

    def opened(self) -> None:
        self.open += 1

    def closed(self) -> None:
        self.open -= 1

    def _logRefused(self, count: int) -> None:
        self._log.warn(
            "{service}: refused {count} connection(s): limit of {maximum} reached",
            service=self._serviceName,
            count=count,
            maximum=self.maximum,
        )
