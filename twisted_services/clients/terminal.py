"""
What the terminal clients share: lines from a server made safe to print,
and the terminal's file flags put back on exit.
"""

from __future__ import annotations

import fcntl
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from twisted.internet.defer import Deferred, succeed

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


class FinishingStandardIO:
    """
    C{finish} for a protocol on C{twisted.internet.stdio.StandardIO}: write
    out what is buffered, close, and tell the caller when that is done.

    The protocol sets C{outputGone} when standard output is closed under it,
    and calls L{stdioClosed} from its C{connectionLost}.

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

    def stdioClosed(self) -> None:
        """Standard I/O is closed: fire what L{finish} returned."""
        self._lost = True
        finished, self._finished = self._finished or [], None
        for waiting in finished:
            waiting.callback(None)
