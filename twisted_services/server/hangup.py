"""
SIGHUP, as logrotate set-ups send it: reopen every log file, never stop.

Without a handler SIGHUP kills the process outright: no goodbye to chat
users, no log line, a stale pidfile in daemon mode. L{HangupService}, one per
process, reopens twistd's C{--logfile} and calls C{reopen()} on every
L{IReopenable} service in the tree, then logs that it did. twistd's own
SIGUSR1 (rotate C{--logfile}) is left as it is.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from types import FrameType
from typing import Any

from twisted.application.service import Service
from twisted.logger import Logger
from twisted.python.logfile import BaseLogFile

from twisted_services.core.twistedprivate import openLogFiles
from twisted_services.server.reopening import IReopenable
from twisted_services.server.tree import rootOf, walk

_Handler = Callable[[int, FrameType | None], Any] | int | None


class HangupService(Service):
    """
    Installs a SIGHUP handler while running; on SIGHUP, in the reactor
    thread, reopens the process's log files and logs one line saying so.
    """

    _log = Logger()

    def __init__(
        self,
        reactor: Any = None,
        logFiles: Callable[[], list[BaseLogFile]] = openLogFiles,
    ) -> None:
        """
        @param reactor: provides C{callFromThread}; the global reactor by
            default.
        @param logFiles: the log files twistd writes to (its C{--logfile}).
        """
        self._reactor = reactor
        self._logFiles = logFiles
        self._previous: _Handler = None

    def startService(self) -> None:
        super().startService()
        if self._reactor is None:
            from twisted.internet import reactor

            self._reactor = reactor
        self._previous = signal.signal(signal.SIGHUP, self._received)

    def stopService(self) -> None:
        super().stopService()
        if self._previous is not None:
            signal.signal(signal.SIGHUP, self._previous)
            self._previous = None

    def _received(self, signum: int, frame: FrameType | None) -> None:
        # A signal handler may run between any two bytecodes: the work waits
        # for the reactor's thread.
        self._reactor.callFromThread(self.reopen)

    def reopen(self) -> None:
        """Reopen twistd's log file and every L{IReopenable}'s, and say so."""
        reopened: list[str] = []
        for logFile in self._logFiles():
            try:
                logFile.reopen()
                reopened.append(logFile.path)
            except OSError:
                self._log.failure("SIGHUP: cannot reopen {path}", path=logFile.path)
        for service in walk(rootOf(self)):
            reopenable = IReopenable(service, None)
            if reopenable is None:
                continue
            name = service.name or type(service).__name__
            try:
                reopenable.reopen()
                reopened.append(name)
            except Exception:
                # reopen() must not raise; one that does still stops nothing.
                self._log.failure("SIGHUP: {service} failed to reopen", service=name)
        self._log.info(
            "SIGHUP: reopened the log files of {reopened}; still serving",
            reopened=", ".join(reopened) or "nothing (no log files open)",
        )
