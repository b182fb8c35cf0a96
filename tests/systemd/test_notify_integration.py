"""
Integration tests: the real C{twistd -n echo} speaking systemd's notify
protocol to a C{NOTIFY_SOCKET} the test binds, and logging for the journal
with C{--logger=twisted_services.systemd.journal.observer}.

Every wait has a deadline (socket timeouts) and every loop a step limit;
nothing sleeps.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import socket
import time

from twisted.trial.unittest import SynchronousTestCase

from tests.support.files import temporaryDirectory
from tests.support.twistd import Twistd, startTwistd

STATUS = re.compile(r"^STATUS=serving echo on tcp:(?P<host>[^:]+):(?P<port>\d+)$")
WATCHDOG_USEC = 400_000
# twistd re-raises SIGTERM once stopped cleanly; systemd counts that a success.
CLEAN_EXIT = (0, -signal.SIGTERM)


class NotifySocket:
    """A unix datagram socket bound where systemd's C{NOTIFY_SOCKET} would be."""

    def __init__(self, testCase: SynchronousTestCase, abstract: bool = False) -> None:
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        testCase.addCleanup(self.socket.close)
        if abstract:
            name = f"twisted-services-test-{os.getpid()}-{id(self)}"
            self.socket.bind("\0" + name)
            self.value = "@" + name
        else:
            self.value = str(temporaryDirectory(testCase, "notify-") / "notify")
            self.socket.bind(self.value)

    def receive(self, timeout: float = 20.0) -> tuple[float, list[str]]:
        """The next notification's arrival time and its lines, or fail."""
        self.socket.settimeout(timeout)
        try:
            datagram = self.socket.recv(4096)
        except TimeoutError:
            raise AssertionError(f"no notification within {timeout}s") from None
        return time.monotonic(), datagram.decode("utf-8").split("\n")

    def pending(self) -> list[list[str]]:
        """Every notification already waiting, without blocking."""
        found: list[list[str]] = []
        self.socket.setblocking(False)
        for _ in range(1000):
            try:
                found.append(self.socket.recv(4096).decode("utf-8").split("\n"))
            except BlockingIOError:
                break
        return found


def startNotifying(
    testCase: SynchronousTestCase, notify: NotifySocket, usec: int = WATCHDOG_USEC
) -> Twistd:
    """C{twistd -n echo --port 0} told to notify C{notify}; not waited for."""
    return startTwistd(
        testCase,
        "echo",
        ["--port", "0", "--interface", "127.0.0.1"],
        listeners=0,
        env={"NOTIFY_SOCKET": notify.value, "WATCHDOG_USEC": str(usec)},
    )


class NotifyTests(SynchronousTestCase):
    """twistd tells systemd when it is ready, that it lives, and when it stops."""

    def test_readyWatchdogStopping(self) -> None:
        """
        C{READY=1} arrives once the listener accepts and the reactor runs,
        with the address in C{STATUS=}; C{WATCHDOG=1} follows about every
        half C{WATCHDOG_USEC}; SIGTERM brings C{STOPPING=1}, last.
        """
        notify = NotifySocket(self)
        twistd = startNotifying(self, notify)
        _, ready = notify.receive()
        self.assertEqual(ready[0], "READY=1")
        match = STATUS.match(ready[1])
        self.assertIsNotNone(match, ready)
        assert match is not None
        # At this moment, not later: the listener already accepts, and the
        # reactor already serves.
        with socket.create_connection(
            (match["host"], int(match["port"])), timeout=10
        ) as client:
            client.sendall(b"ping")
            self.assertEqual(client.recv(4), b"ping")
        self.assertEqual(twistd.listener().port, int(match["port"]))

        arrivals = [notify.receive(5)[0] for _ in range(5)]
        gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
        self.assertTrue(all(gap > 0.1 for gap in gaps), gaps)
        self.assertLess(sum(gaps) / len(gaps), 0.4, gaps)

        self.assertIn(twistd.stop(), CLEAN_EXIT)
        rest = notify.pending()
        self.assertEqual(rest[-1], ["STOPPING=1"], rest)
        self.assertTrue(all(lines == ["WATCHDOG=1"] for lines in rest[:-1]), rest)

    def test_abstractSocket(self) -> None:
        """An abstract C{NOTIFY_SOCKET} (C{@name}) is reached too."""
        notify = NotifySocket(self, abstract=True)
        startNotifying(self, notify, usec=0)
        _, ready = notify.receive()
        self.assertEqual(ready[0], "READY=1")

    def test_socketGone(self) -> None:
        """A C{NOTIFY_SOCKET} nobody listens on is logged; echo still serves."""
        directory = temporaryDirectory(self, "notify-")
        twistd = startTwistd(
            self,
            "echo",
            ["--port", "0", "--interface", "127.0.0.1"],
            env={"NOTIFY_SOCKET": str(directory / "missing")},
        )
        twistd.waitForLog("cannot write to NOTIFY_SOCKET")
        with twistd.listener().connect() as client:
            client.sendall(b"ping")
            self.assertEqual(client.recv(4), b"ping")
        self.assertIn(twistd.stop(), CLEAN_EXIT)


class JournalLoggerTests(SynchronousTestCase):
    """C{--logger=twisted_services.systemd.journal.observer} writes journal lines."""

    def test_journalLines(self) -> None:
        """With C{JOURNAL_STREAM} set, lines carry priorities, not timestamps."""
        twistd = startTwistd(
            self,
            "echo",
            ["--port", "0", "--interface", "127.0.0.1"],
            listeners=0,
            env={"JOURNAL_STREAM": "8:12345"},
            options=["--logger=twisted_services.systemd.journal.observer"],
        )
        line = twistd.waitForLog("echo listening on", timeout=20)
        self.assertRegex(line, r"^<6>\[\S+\] echo listening on tcp:127\.0\.0\.1:\d+$")
        self.assertIn(twistd.stop(signal.SIGTERM), CLEAN_EXIT)
        output = twistd.log().splitlines()
        self.assertTrue(all(re.match(r"<[3-7]>", x) for x in output), output)
        self.assertFalse(any(re.search(r"\d{4}-\d\d-\d\dT", x) for x in output))
