"""
What the terminal clients share on standard I/O: lines from a server made
safe to print, output held until standard I/O starts, the two sides pausing
each other, a finish that flushes before closing, and the terminal's file
flags put back on exit.
"""

from __future__ import annotations

import fcntl
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

from twisted.internet.defer import Deferred, succeed
from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure

_T = TypeVar("_T")

StandardIOFactory = Callable[..., object]
"""
C{twisted.internet.stdio.StandardIO}, or a stand-in for tests: called with a
protocol and C{reactor=}, it connects the protocol to standard I/O.
"""

# What must never reach the user's terminal even if a server sends it: CSI,
# OSC and other escape sequences, the 8-bit CSI, and every C0/C1 control but
# tab. The server strips these from what clients say; this is defence in
# depth against a server that does not.
_TERMINAL_CONTROLS = re.compile(
    r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[ -/]*[0-~])"
    r"|\x9b[0-?]*[ -/]*[@-~]"
    r"|[\x00-\x08\x0a-\x1f\x7f-\x9f]"
)


def cleanLine(line: bytes) -> str:
    """
    A line as the server sent it, fit for a terminal: the line ending gone,
    decoded as UTF-8 (invalid bytes become U+FFFD), controls and escape
    sequences removed.
    """
    text = line.rstrip(b"\r").decode("utf-8", "replace")
    return _TERMINAL_CONTROLS.sub("", text)


@contextmanager
def restoringFileFlags(descriptors: Sequence[int]) -> Iterator[None]:
    """
    Standard I/O makes its descriptors non-blocking, and a terminal shares
    them with the shell that started us: put their flags back afterwards.
    """
    saved: dict[int, int] = {}
    for fd in descriptors:
        try:
            saved[fd] = fcntl.fcntl(fd, fcntl.F_GETFL)
        except OSError:
            pass
    try:
        yield
    finally:
        for fd, flags in saved.items():
            try:
                fcntl.fcntl(fd, fcntl.F_SETFL, flags)
            except OSError:
                pass


def pairProducers(stdio: Any, socket: Any) -> None:
    """
    Make each transport the other's streaming producer, as
    C{twisted.protocols.portforward} does: a side that stops draining stops
    us reading from the other, so neither side is buffered without limit.
    """
    stdio.registerProducer(socket, True)
    socket.registerProducer(stdio, True)


class HeldOutput(Generic[_T]):
    """
    Where a server connection sends what it receives for standard output,
    which does not exist until the connection is made and verified: what
    comes before L{attach} (a welcome line, say) is held, then written first.
    """

    def __init__(self) -> None:
        self._write: Callable[[_T], None] | None = None
        self._held: list[_T] = []

    def attach(self, write: Callable[[_T], None]) -> None:
        """Write with C{write} from now on, starting with what was held."""
        self._write = write
        held, self._held = self._held, []
        for item in held:
            write(item)

    def __call__(self, item: _T) -> None:
        """Write C{item}, or hold it until there is somewhere to write it."""
        if self._write is None:
            self._held.append(item)
        else:
            self._write(item)


class FinishingStandardIO:
    """
    Mixed into a protocol on C{twisted.internet.stdio.StandardIO}: output
    that stops once nobody reads it, and C{finish} to write out what is
    buffered, close, and tell the caller when that is done.

    The protocol sets C{outputGone} when standard output is closed under it;
    a C{connectionLost} of its own must call this one (or L{stdioClosed}).

    @cvar hasProducer: whether a producer (the server connection) is
        registered on standard output and must be unregistered first.
    """

    hasProducer = True
    outputGone = False
    _lost = False
    _finished: list[Deferred[None]] | None = None

    def finish(self) -> Deferred[None]:
        """
        Flush what is still to be written and close standard I/O; the result
        fires once that is done (at once if output is already gone).
        """
        if self._lost or self.outputGone:
            return succeed(None)
        finished: Deferred[None] = Deferred()
        if self._finished is None:
            self._finished = []
        self._finished.append(finished)
        if self.hasProducer:
            # A registered (perhaps paused) producer would keep the transport
            # waiting for it instead of closing once its buffer is written.
            self.transport.unregisterProducer()  # type: ignore[attr-defined]
        self.transport.loseConnection()  # type: ignore[attr-defined]
        return finished

    def writeOutput(self, data: bytes) -> None:
        """Write C{data} to standard output, unless nobody reads it any more."""
        if not self.outputGone and not self._lost:
            self.transport.write(data)  # type: ignore[attr-defined]

    def show(self, text: str) -> None:
        """Write one line of text for the user, in UTF-8, ending in LF."""
        self.writeOutput(text.encode("utf-8", "replace") + b"\n")

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """Standard I/O is closed (both ways)."""
        self.stdioClosed()

    def stdioClosed(self) -> None:
        """Standard I/O is closed: fire what L{finish} returned."""
        self._lost = True
        finished, self._finished = self._finished or [], None
        for waiting in finished:
            waiting.callback(None)
