"""
A client run on a pseudo-terminal, as a person runs it: what it writes is
fed to conch's in-memory terminal emulator (L{helper.TerminalBuffer}), so a
test reads the screen a person would see, rows and cursor, rather than
bytes. Waiting is done with deadlines on C{select}, never with sleeps.
"""

from __future__ import annotations

import fcntl
import os
import select
import struct
import subprocess
import termios
import time
from collections.abc import Callable, Sequence

from twisted.conch.insults import helper, insults
from twisted.internet.testing import StringTransport

from tests.support import forkserver

WIDTH = 80
HEIGHT = 24


class Screen:
    """What a terminal of C{width} by C{height} shows of the bytes fed to it."""

    def __init__(self, width: int = WIDTH, height: int = HEIGHT) -> None:
        self.buffer = helper.TerminalBuffer()
        self.buffer.width, self.buffer.height = width, height
        self._parser = insults.ClientProtocol(lambda: self.buffer)
        self._parser.makeConnection(StringTransport())

    def feed(self, data: bytes) -> None:
        """Show C{data} as a terminal would."""
        self._parser.dataReceived(data)

    def rows(self) -> list[str]:
        """The screen, one string per row, trailing blanks removed."""
        return [row.rstrip() for row in bytes(self.buffer).decode().split("\n")]

    def lastRow(self) -> str:
        """The lowest row with something on it."""
        rows = [row for row in self.rows() if row]
        return rows[-1] if rows else ""

    def cursor(self) -> tuple[int, int]:
        """The cursor's column and row."""
        return self.buffer.x, self.buffer.y


class PseudoTerminal(Screen):
    """
    C{command} with its standard input and output on a pseudo-terminal of
    L{WIDTH} by L{HEIGHT}, and standard error on a pipe.
    """

    def __init__(self, command: Sequence[str]) -> None:
        super().__init__()
        self.master, self.slave = os.openpty()
        fcntl.ioctl(
            self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", HEIGHT, WIDTH, 0, 0)
        )
        self.process = forkserver.Popen(
            list(command),
            stdin=self.slave,
            stdout=self.slave,
            stderr=subprocess.PIPE,
            env={**os.environ, "TERM": "xterm"},
            start_new_session=True,
        )

    def type(self, keys: bytes) -> None:
        """Send keys as the terminal would (Enter is C{\\r}, arrows are CSI)."""
        view = memoryview(keys)
        while view:
            view = view[os.write(self.master, view) :]

    def waitFor(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        """Read the screen until C{condition()} holds; fail after C{timeout}."""
        deadline = time.monotonic() + timeout
        while not condition():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    "timed out; the screen:\n" + "\n".join(self.rows())
                )
            readable, _, _ = select.select([self.master], [], [], remaining)
            if readable and not self._read():
                raise AssertionError(
                    "the client closed its terminal; the screen:\n"
                    + "\n".join(self.rows())
                )

    def _read(self) -> bool:
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: every slave descriptor is closed
            return False
        self.feed(data)
        return bool(data)

    def wait(self, timeout: float = 10.0) -> tuple[int, str]:
        """Wait for the exit, reading the screen; the status and stderr."""
        deadline = time.monotonic() + timeout
        while self.process.poll() is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("the client did not exit")
            readable, _, _ = select.select([self.master], [], [], min(remaining, 0.1))
            if readable:
                self._read()
        assert self.process.stderr is not None
        return self.process.returncode, self.process.stderr.read().decode()

    def modes(self) -> list[int]:
        """The terminal's termios settings (to see they were put back)."""
        return termios.tcgetattr(self.slave)

    def close(self) -> None:
        """Kill the process if it still runs and close the terminal."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.process.stderr is not None:
            self.process.stderr.close()
        os.close(self.master)
        os.close(self.slave)
