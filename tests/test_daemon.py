"""
Integration test: C{twistd} in daemon mode, as a classic init script runs
it: C{twistd --pidfile P --logfile L echo ...} detaches, and C{kill $(cat P)}
stops it.

The daemon is not our child once it detaches, so its end is awaited on a
pidfd (readable once the process has exited), which also serves as the
bounded wait while its log file is polled. Nothing sleeps.
"""

from __future__ import annotations

import os
import re
import select
import signal
import socket

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from tests.support.files import temporaryDirectory
from tests.support.twistd import (
    STARTUP_TIMEOUT,
    STOP_TIMEOUT,
    runCommand,
    twistdCommand,
)
from tests.support.waiting import polling

_LISTENING = re.compile(r"echo listening on tcp:127\.0\.0\.1:(?P<port>\d+)")
# Between looks at the log file: short, and cut short if the daemon dies.
POLL_INTERVAL = 0.05


def exited(pidfd: int, timeout: float) -> bool:
    """Whether the process behind C{pidfd} exits within C{timeout} seconds."""
    readable, _, _ = select.select([pidfd], [], [], timeout)
    return bool(readable)


class DaemonTests(SynchronousTestCase):
    """C{twistd} without C{-n}: detach, pidfile, log file, SIGTERM."""

    def setUp(self) -> None:
        if not hasattr(os, "pidfd_open"):
            raise SkipTest("needs os.pidfd_open (Linux 5.3, Python 3.9)")
        self.directory = temporaryDirectory(self, "daemon-")
        self.pidfile = self.directory / "echo.pid"
        self.logfile = self.directory / "echo.log"

    def daemon(self) -> tuple[int, int]:
        """
        Start the daemon: the command must return, having written the pidfile.

        @return: the daemon's pid and a pidfd for it, closed (and the daemon
            killed, if it still runs) when the test ends.
        """
        result = runCommand(
            twistdCommand(
                [
                    "--pidfile",
                    str(self.pidfile),
                    "--logfile",
                    str(self.logfile),
                    "echo",
                    "--port",
                    "0",
                    "--interface",
                    "127.0.0.1",
                ]
            ),
            timeout=STARTUP_TIMEOUT,
        )
        self.assertEqual(
            result.returncode, 0, f"twistd:\n{result.stdout}{result.stderr}"
        )
        pid = int(self.pidfile.read_text().strip())
        pidfd = os.pidfd_open(pid)
        self.addCleanup(os.close, pidfd)
        self.addCleanup(self.kill, pidfd)
        return pid, pidfd

    def kill(self, pidfd: int) -> None:
        """Kill the daemon if it still runs."""
        if not exited(pidfd, 0):
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            exited(pidfd, STOP_TIMEOUT)

    def log(self) -> str:
        """The daemon's log so far."""
        try:
            return self.logfile.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def listeningPort(self, pidfd: int) -> int:
        """The port the daemon's log says it listens on, once it says so."""
        for _ in polling(STARTUP_TIMEOUT, "the listening line in the log"):
            match = _LISTENING.search(self.log())
            if match:
                return int(match["port"])
            if exited(pidfd, POLL_INTERVAL):
                raise AssertionError("the daemon exited; log:\n" + self.log())
        raise AssertionError("unreachable")  # polling() raises first

    def test_detachServeStop(self) -> None:
        """
        The command returns while the daemon runs on, in a process of its
        own; the daemon serves, and SIGTERM to the pid in the pidfile stops
        it cleanly: the process ends, the pidfile goes, and the log holds no
        traceback.
        """
        pid, pidfd = self.daemon()
        self.assertNotEqual(pid, os.getpid())
        port = self.listeningPort(pidfd)

        with socket.create_connection(("127.0.0.1", port), timeout=10.0) as client:
            client.sendall(b"daemon\n")
            received = b""
            for remaining in polling(10.0, "the echo"):
                client.settimeout(remaining)
                chunk = client.recv(64)
                self.assertNotEqual(chunk, b"", f"closed after {received!r}")
                received += chunk
                if len(received) >= 7:
                    break
            self.assertEqual(received, b"daemon\n")

        os.kill(int(self.pidfile.read_text().strip()), signal.SIGTERM)
        self.assertTrue(
            exited(pidfd, STOP_TIMEOUT), "still running after SIGTERM:\n" + self.log()
        )
        self.assertFalse(self.pidfile.exists(), "the pidfile outlived the daemon")
        log = self.log()
        self.assertIn("Main loop terminated.", log)
        self.assertNotIn("Traceback", log)
