"""
Logging for events that can come in floods (refused connections, dropped
datagrams): report the first at once, then at most once per interval with a
count, so an attacker cannot fill the log.
"""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.interfaces import IDelayedCall, IReactorTime


class ThrottledReport:
    """
    Calls C{report(count)} for the first event, then at most once per
    C{interval} seconds with the number of events since the last report.
    """

    def __init__(
        self, clock: IReactorTime, interval: float, report: Callable[[int], None]
    ) -> None:
        self._clock = clock
        self._interval = interval
        self._report = report
        self._unreported = 0
        self._window: IDelayedCall | None = None

    def record(self) -> None:
        """Note one event; report it now unless a report went out recently."""
        if self._window is None:
            self._report(1)
            self._window = self._clock.callLater(self._interval, self._closeWindow)
        else:
            self._unreported += 1

    def _closeWindow(self) -> None:
        self._window = None
        if self._unreported:
            count, self._unreported = self._unreported, 0
            self._report(count)
            self._window = self._clock.callLater(self._interval, self._closeWindow)

    def stop(self) -> None:
        """Report what is pending and cancel the timer (when the service stops)."""
        if self._window is not None:
            self._window.cancel()
            self._window = None
        if self._unreported:
            count, self._unreported = self._unreported, 0
            self._report(count)
