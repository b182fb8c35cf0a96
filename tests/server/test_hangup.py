"""
Tests for L{twisted_services.server.hangup}: SIGHUP reopens every log file
of the process and stops nothing.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import Any

from twisted.application.service import MultiService, Service
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from twisted_services.server.hangup import HangupService
from twisted_services.server.reopening import IReopenable


class ThreadCalls:
    """A reactor's C{callFromThread}, recording calls to run later."""

    def __init__(self) -> None:
        self.calls: list[Callable[[], Any]] = []

    def callFromThread(self, f: Callable[..., Any], *args: Any) -> None:
        self.calls.append(lambda: f(*args))


class FakeLogFile:
    """A log file that counts its reopenings, or fails them."""

    def __init__(self, path: str, error: OSError | None = None) -> None:
        self.path = path
        self.error = error
        self.reopened = 0

    def reopen(self) -> None:
        if self.error is not None:
            raise self.error
        self.reopened += 1


@implementer(IReopenable)
class ReopenableService(Service):
    """A service holding log files: it counts its reopenings, or fails them."""

    def __init__(self, name: str, fails: bool = False) -> None:
        self.setName(name)
        self.fails = fails
        self.reopened = 0

    def reopen(self) -> None:
        if self.fails:
            raise RuntimeError("disk on fire")
        self.reopened += 1


class HangupServiceTests(SynchronousTestCase):
    """L{HangupService} handles SIGHUP while it runs."""

    def setUp(self) -> None:
        self.reactor = ThreadCalls()
        self.logFile = FakeLogFile("/var/log/twistd.log")
        self.hangup = HangupService(self.reactor, lambda: [self.logFile])
        # Whatever the test does, the process's own handlers come back.
        for signum in (signal.SIGHUP, signal.SIGUSR1):
            self.addCleanup(signal.signal, signum, signal.getsignal(signum))

    def tree(self, *children: Service) -> MultiService:
        """A running application: C{children} and the hangup service."""
        root = MultiService()
        for child in (*children, self.hangup):
            child.setServiceParent(root)
        root.startService()
        self.addCleanup(lambda: root.running and root.stopService())
        return root

    def test_signalReopensEverything(self) -> None:
        """
        A real SIGHUP, once the reactor runs what the handler handed it,
        reopens twistd's log file and every reopenable service, logs one
        line saying so, and every service still runs.
        """
        access = ReopenableService("http-access-log")
        root = self.tree(access)
        os.kill(os.getpid(), signal.SIGHUP)
        self.assertEqual(len(self.reactor.calls), 1)
        with capturedLogs() as events:
            self.reactor.calls[0]()
        self.assertEqual((self.logFile.reopened, access.reopened), (1, 1))
        self.assertEqual(
            [formatEvent(e) for e in events],
            [
                "SIGHUP: reopened the log files of /var/log/twistd.log, "
                "http-access-log; still serving"
            ],
        )
        self.assertTrue(all(service.running for service in root))

    def test_failuresStopNothing(self) -> None:
        """
        A log file that cannot be reopened and a reopen that raises are
        logged; the others are still reopened and nothing stops.
        """
        self.logFile.error = PermissionError(13, "Permission denied")
        broken = ReopenableService("broken", fails=True)
        fine = ReopenableService("fine")
        root = self.tree(broken, fine)
        with capturedLogs() as events:
            self.hangup.reopen()
        self.assertEqual(fine.reopened, 1)
        self.assertEqual(
            [e["log_level"] for e in events],
            [LogLevel.critical, LogLevel.critical, LogLevel.info],
        )
        self.assertIn("reopened the log files of fine;", formatEvent(events[-1]))
        self.assertTrue(all(service.running for service in root))
        self.flushLoggedErrors(PermissionError, RuntimeError)

    def test_stopRestoresHandler(self) -> None:
        """Stopping puts back the SIGHUP handler there was before."""

        def before(signum: int, frame: object) -> None:
            pass

        signal.signal(signal.SIGHUP, before)
        root = self.tree()
        self.assertIsNot(signal.getsignal(signal.SIGHUP), before)
        root.stopService()
        self.assertIs(signal.getsignal(signal.SIGHUP), before)

    def test_sigusr1LeftToTwistd(self) -> None:
        """twistd's SIGUSR1 handler (rotate the log file) is left alone."""

        def rotate(signum: int, frame: object) -> None:
            pass

        signal.signal(signal.SIGUSR1, rotate)
        self.tree()
        self.assertIs(signal.getsignal(signal.SIGUSR1), rotate)
