"""
Runs the real C{twistd} as a subprocess for integration tests, and finds the
addresses its listeners bound from the log lines they write.

A thread drains the process's output from the moment it starts, so a chatty
server can never block on a full pipe while a test is busy with its sockets.
Waiting is done with deadlines on a condition variable and on C{Popen.wait},
never with sleeps, and L{startTwistd} kills the process when the test ends.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from twisted.trial.unittest import SynchronousTestCase

from tests.support import forkserver

STARTUP_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0

_LISTENING = re.compile(
    r"(?P<service>\w+) listening on (?P<kind>tcp|udp|unix):(?P<address>\S+)"
)
# A shell without job control starts background commands with SIGINT
# ignored, their children too, and Twisted then leaves SIGINT ignored (it
# handles it only where Python's own handler is in place): give twistd
# Python's handler back, as it has when started from a terminal.
_TWISTD = (
    "import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from twisted.scripts.twistd import run; run()"
)
_WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1"}


def twistdCommand(arguments: Sequence[str]) -> list[str]:
    """The command line for C{twistd ARGUMENTS} in this interpreter."""
    return [sys.executable, "-c", _TWISTD, *arguments]


def pluginCommand(
    plugin: str, arguments: Sequence[str] = (), options: Sequence[str] = ()
) -> list[str]:
    """
    The command line for C{twistd -n OPTIONS PLUGIN ARGUMENTS}, with no
    pidfile (tests run in parallel and in read-only places).
    """
    return twistdCommand(["-n", "--pidfile=", *options, plugin, *arguments])


def _environment(extra: dict[str, str] | None) -> dict[str, str]:
    # Unbuffered, so every log line reaches the pipe as it is written.
    return {**os.environ, "PYTHONUNBUFFERED": "1", **(extra or {})}


@dataclass
class Bound:
    """One listener's address, as its log line gave it."""

    service: str
    kind: str
    host: str
    port: int
    path: str = ""

    @property
    def family(self) -> int:
        if self.kind == "unix":
            return socket.AF_UNIX
        return socket.AF_INET6 if ":" in self.host else socket.AF_INET

    @property
    def loopbackAddress(self) -> tuple[str, int]:
        """Where a local client reaches it (wildcards become loopback)."""
        return _WILDCARDS.get(self.host, self.host), self.port

    def connect(self, timeout: float = 10.0) -> socket.socket:
        """A blocking TCP (or UNIX) socket connected to this listener."""
        if self.kind == "unix":
            client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            client.settimeout(timeout)
            try:
                client.connect(self.path)
            except BaseException:
                client.close()
                raise
            return client
        return socket.create_connection(self.loopbackAddress, timeout=timeout)


def _parseBound(match: re.Match[str]) -> Bound:
    service, kind, address = match["service"], match["kind"], match["address"]
    if kind == "unix":
        return Bound(service, kind, "", 0, path=address)
    host, _, port = address.rpartition(":")
    return Bound(service, kind, host.strip("[]"), int(port))


class Twistd:
    """A running C{twistd -n PLUGIN ...}, its output and its bound listeners."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process
        self.bound: list[Bound] = []
        self.output: list[str] = []
        self._changed = threading.Condition()
        self._eof = False
        self._reader = threading.Thread(
            target=self._drain, name=f"twistd-{process.pid}-output", daemon=True
        )
        self._reader.start()

    @classmethod
    def spawn(
        cls,
        command: Sequence[str],
        env: dict[str, str] | None = None,
        pass_fds: Sequence[int] = (),
    ) -> Twistd:
        """
        Start C{command}, a twistd command line (perhaps behind a launcher
        that execs it), and read its output from now on; nothing is waited
        for. Tests use L{spawnTwistd} or L{startTwistd}, which also arrange
        the clean-up.
        """
        process = forkserver.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=_environment(env),
            pass_fds=pass_fds,
        )
        return cls(process)

    def _drain(self) -> None:
        """Read the output line by line until EOF (runs in its own thread)."""
        stdout = self.process.stdout
        assert stdout is not None
        try:
            for raw in stdout:
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                match = _LISTENING.search(line)
                with self._changed:
                    self.output.append(line)
                    if match:
                        self.bound.append(_parseBound(match))
                    self._changed.notify_all()
        except ValueError:
            pass  # the pipe was closed under us by kill()
        finally:
            with self._changed:
                self._eof = True
                self._changed.notify_all()

    def waitFor(self, condition: Callable[[], bool], timeout: float) -> None:
        """
        Wait until C{condition()} holds, checking it whenever output arrives;
        fail after C{timeout} seconds or if the process ends first.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while not condition():
                if self._eof:
                    raise AssertionError("twistd exited; output:\n" + self._log())
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        "twistd: timed out; output so far:\n" + self._log()
                    )
                self._changed.wait(remaining)

    def waitForLog(self, pattern: str, timeout: float = 10.0) -> str:
        """Wait for a log line matching the regular expression C{pattern}."""
        compiled = re.compile(pattern)
        found: list[str] = []

        def seen() -> bool:
            found[:] = [line for line in self.output if compiled.search(line)]
            return bool(found)

        self.waitFor(seen, timeout)
        return found[0]

    def _log(self) -> str:
        return "\n".join(self.output)

    def log(self) -> str:
        """All the output so far, one string."""
        with self._changed:
            return self._log()

    def listener(self, kind: str = "tcp", timeout: float = STARTUP_TIMEOUT) -> Bound:
        """
        The first listener of C{kind} (C{tcp}, C{udp} or C{unix}), waiting
        for its log line if it is not in yet: the process may have said it
        is ready by other means (systemd's notify socket) before this
        process has read its output.
        """
        found: list[Bound] = []

        def logged() -> bool:
            found[:] = [bound for bound in self.bound if bound.kind == kind]
            return bool(found)

        self.waitFor(logged, timeout)
        return found[0]

    def rss(self) -> int:
        """The process's resident memory in bytes, from /proc."""
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS in /proc status")

    def stop(self, signum: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int:
        """
        Send C{signum}, wait for the process to exit and its output to end,
        and return the exit status (C{-signum} if it re-raised the signal).
        """
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            status = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("twistd did not stop:\n" + self.log()) from None
        self._reader.join(timeout)
        return status

    def kill(self) -> None:
        """Kill the process if it still runs and release its pipe; idempotent."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._reader.join(STOP_TIMEOUT)
        if self.process.stdout is not None:
            self.process.stdout.close()


def spawnTwistd(
    testCase: SynchronousTestCase,
    command: Sequence[str],
    env: dict[str, str] | None = None,
    pass_fds: Sequence[int] = (),
) -> Twistd:
    """
    L{Twistd.spawn} for C{testCase}: the process is killed when the test
    ends, whatever happened.
    """
    twistd = Twistd.spawn(command, env, pass_fds)
    testCase.addCleanup(twistd.kill)
    return twistd


def startTwistd(
    testCase: SynchronousTestCase,
    plugin: str,
    arguments: Sequence[str] = (),
    listeners: int = 1,
    env: dict[str, str] | None = None,
    pass_fds: Sequence[int] = (),
    prefix: Sequence[str] = (),
    options: Sequence[str] = (),
) -> Twistd:
    """
    Start C{twistd -n OPTIONS PLUGIN ARGUMENTS} (behind C{prefix}, a
    launcher that execs it) for C{testCase}, and wait until C{listeners}
    listeners have logged their addresses. The process is killed when the
    test ends, whatever happened.
    """
    command = [*prefix, *pluginCommand(plugin, arguments, options)]
    twistd = spawnTwistd(testCase, command, env, pass_fds)
    twistd.waitFor(lambda: len(twistd.bound) >= listeners, STARTUP_TIMEOUT)
    return twistd


def runCommand(
    command: Sequence[str],
    timeout: float = 30.0,
    env: dict[str, str] | None = None,
    forked: bool = True,
) -> subprocess.CompletedProcess[str]:
    """
    Run C{command} to completion, its output captured as text: forked from
    the fork server if it is C{python -c}/C{-m}, unless C{forked} is false
    (for a test that finds the process, or its daemon, by command line).
    """
    run = forkserver.run if forked else subprocess.run
    return run(
        command,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_environment(env),
    )


def runTwistd(
    plugin: str,
    arguments: Sequence[str] = (),
    timeout: float = 30.0,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run C{twistd -n PLUGIN ARGUMENTS} to completion (for start-up failures)."""
    return runCommand(pluginCommand(plugin, arguments), timeout, env)
