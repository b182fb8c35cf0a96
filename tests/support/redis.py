"""
Debian's real C{redis-server} for integration tests and benchmarks: on
127.0.0.1 and a free port, in a temporary directory, with no persistence;
it can be stopped and started again on the same port, as an outage would.

Tests that need it skip with L{SKIP_REASON} when it is not installed.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile

from tests.support.waiting import polling

REDIS_SERVER = shutil.which("redis-server")
SKIP_REASON = (
    "redis-server is not installed (apt-get install redis-server; .ci/run does)"
)
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


def freePort() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class RedisServer:
    """One C{redis-server}; L{start} it, L{stop} it, start it again."""

    def __init__(self) -> None:
        if REDIS_SERVER is None:
            raise RuntimeError(SKIP_REASON)
        self._directory = tempfile.TemporaryDirectory(prefix="redis-test-")
        self.port = freePort()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The URL chat's C{--redis} takes."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start it (on the same port as before) and wait until it answers."""
        assert REDIS_SERVER is not None
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self._directory.name,
                "--logfile",
                "",
                "--loglevel",
                "warning",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for remaining in polling(START_TIMEOUT, "redis-server answering PING"):
            if self.process.poll() is not None:
                raise AssertionError(f"redis-server exited: {self.process.returncode}")
            if self._pong(remaining):
                return
            # Between tries, wait on the process: its exit ends the wait early.
            try:
                self.process.wait(min(remaining, 0.02))
            except subprocess.TimeoutExpired:
                pass

    def _pong(self, timeout: float) -> bool:
        try:
            with socket.create_connection(
                ("127.0.0.1", self.port), timeout=min(timeout, 0.5)
            ) as connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def command(self, *words: str) -> bytes:
        """Send one inline command and return the first reply bytes (for checks)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as conn:
            conn.sendall(" ".join(words).encode() + b"\r\n")
            return conn.recv(65536)

    def stop(self) -> None:
        """Stop it, if it runs, and wait for it to exit."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def close(self) -> None:
        """Stop it and remove its directory."""
        self.stop()
        self._directory.cleanup()
