"""
Runs the real C{twistd} as a subprocess for integration tests, and finds the
addresses its listeners bound from the log lines they write.

Waiting is done with deadlines on C{select} and C{Popen.wait}, never with
sleeps, and every process is killed if a test forgets it.
"""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

STARTUP_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0

_LISTENING = re.compile(
    r"(?P<service>\w+) listening on (?P<kind>tcp|udp|unix):(?P<address>\S+)"
)
_TWISTD = "from twisted.scripts.twistd import run; run()"


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
        return socket.AF_INET6 if ":" in self.host else socket.AF_INET

    def connect(self, timeout: float = 10.0) -> socket.socket:
        """A blocking TCP (or UNIX) socket connected to this listener."""
        if self.kind == "unix":
            client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            client.settimeout(timeout)
            client.connect(self.path)
            return client
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        return socket.create_connection((host, self.port), timeout=timeout)

    @property
    def loopbackAddress(self) -> tuple[str, int]:
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        return host, self.port


def _parseBound(match: re.Match[str]) -> Bound:
    service, kind, address = match["service"], match["kind"], match["address"]
    if kind == "unix":
        return Bound(service, kind, "", 0, path=address)
    host, _, port = address.rpartition(":")
    return Bound(service, kind, host.strip("[]"), int(port))


@dataclass
class Twistd:
    """A running C{twistd -n PLUGIN ...}, its output and its bound listeners."""

    process: subprocess.Popen[bytes]
    bound: list[Bound] = field(default_factory=list)
    output: list[str] = field(default_factory=list)
    _pending: bytes = b""

    @classmethod
    def start(
        cls,
        plugin: str,
        arguments: Sequence[str] = (),
        listeners: int = 1,
        env: dict[str, str] | None = None,
        pass_fds: Sequence[int] = (),
        prefix: Sequence[str] = (),
    ) -> Twistd:
        """
        Start C{twistd -n PLUGIN ARGUMENTS} and wait until C{listeners}
        listeners have logged their addresses.
        """
        command = [
            *prefix,
            sys.executable,
            "-c",
            _TWISTD,
            "-n",
            "--pidfile=",
            plugin,
            *arguments,
        ]
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            pass_fds=pass_fds,
        )
        twistd = cls(process)
        try:
            twistd.waitFor(lambda: len(twistd.bound) >= listeners, STARTUP_TIMEOUT)
        except BaseException:
            twistd.kill()
            raise
        return twistd

    def _readAvailable(self, timeout: float) -> bool:
        """Read what output there is within C{timeout}; C{False} at EOF."""
        stdout = self.process.stdout
        assert stdout is not None
        ready, _, _ = select.select([stdout], [], [], timeout)
        if not ready:
            return True
        chunk = os.read(stdout.fileno(), 65536)
        if not chunk:
            return False
        lines = (self._pending + chunk).split(b"\n")
        self._pending = lines.pop()
        for raw in lines:
            line = raw.decode("utf-8", "replace")
            self.output.append(line)
            match = _LISTENING.search(line)
            if match:
                self.bound.append(_parseBound(match))
        return True

    def waitFor(self, condition, timeout: float) -> None:  # type: ignore[no-untyped-def]
        """Read output until C{condition()} holds; fail after C{timeout}."""
        deadline = time.monotonic() + timeout
        while not condition():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    "twistd: timed out; output so far:\n" + self.log()
                )
            if not self._readAvailable(min(remaining, 0.5)) and not condition():
                raise AssertionError("twistd exited; output:\n" + self.log())

    def waitForLog(self, pattern: str, timeout: float = 10.0) -> str:
        """Wait for a log line matching the regular expression C{pattern}."""
        compiled = re.compile(pattern)
        found: list[str] = []

        def seen() -> bool:
            found[:] = [line for line in self.output if compiled.search(line)]
            return bool(found)

        self.waitFor(seen, timeout)
        return found[0]

    def log(self) -> str:
        return "\n".join(self.output)

    def listener(self, kind: str = "tcp") -> Bound:
        """The first listener of C{kind} (C{tcp}, C{udp} or C{unix})."""
        return next(bound for bound in self.bound if bound.kind == kind)

    def rss(self) -> int:
        """The process's resident memory in bytes, from /proc."""
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS in /proc status")

    def stop(self, signum: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int:
        """Send C{signum}, collect the rest of the output, return the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signum)
        deadline = time.monotonic() + timeout
        while self._readAvailable(max(0.0, min(0.5, deadline - time.monotonic()))):
            if time.monotonic() >= deadline:
                self.kill()
                raise AssertionError("twistd did not stop:\n" + self.log())
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def runTwistd(
    plugin: str, arguments: Sequence[str] = (), timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    """Run C{twistd -n PLUGIN ARGUMENTS} to completion (for start-up failures)."""
    return subprocess.run(
        [sys.executable, "-c", _TWISTD, "-n", "--pidfile=", plugin, *arguments],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
