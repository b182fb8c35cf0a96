"""
The chat terminal client: C{python -m twisted_services.chat SERVER}.

What you type is sent to the server line by line and what the server sends is
printed as it arrives, on C{twisted.internet.stdio}. Two line protocols share
the work: L{ServerConnection} on the socket and L{Terminal} on standard input
and output. Each side's transport is the other's streaming producer, as in
C{twisted.protocols.portforward}: a terminal that stops reading (Ctrl-S, a
slow pipe) stops us reading from the server instead of buffering without
limit, and a server that stops reading stops us reading what is typed.

When a person types at a terminal, L{EditingTerminal} gives them a real
input line (L{twisted_services.clients.lineeditor}, on C{twisted.conch}):
the server's lines are printed above it and never split what is being
typed, and up and down bring back earlier lines. When standard input is a
pipe or a file (scripts, C{--plain}), L{Terminal} reads it line by line and
prints the server's lines as they come.

What is sent is paced by a L{LinePacer} under the server's flood limit
(C{--rate}, C{--burst}), so a pasted or piped batch of lines arrives whole
instead of meeting C{! slow down}: with the defaults, 4 lines a second after
a burst of 10, against the server's 5 and 20.

Leaving: C{/quit} or end of input (Ctrl-D) sends C{/quit}; the client then
prints what the server still sends (at least C{*** bye}) until the server closes
the connection, and exits with status 0. It gives up waiting after
L{QUIT_TIMEOUT} seconds. A failed connection, or one lost with an error,
exits with status 1 and says why on standard error; usage errors exit with 2.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn, TextIO

from twisted.internet import stdio
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IDelayedCall,
    IHalfCloseableProtocol,
    IReactorCore,
    IReactorTime,
)
from twisted.internet.protocol import connectionDone
from twisted.python import usage
from twisted.python.failure import Failure
from zope.interface import implementer

from twisted_services.clients.endpoints import (
    HandshakeWaiter,
    ServerOptions,
    connectServer,
    exitUnlessClosedCleanly,
)
from twisted_services.clients.lineeditor import (
    EditorStandardIO,
    LineEditor,
    onResize,
    rawTerminal,
    sizeWatcher,
    stdioIsTerminal,
    terminalSize,
)
from twisted_services.clients.pacing import LinePacer
from twisted_services.clients.runner import runClient
from twisted_services.clients.terminal import (
    FinishingStandardIO,
    HeldOutput,
    StandardIOFactory,
    cleanLine,
    pairProducers,
)
from twisted_services.core.lines import BoundedLineReceiver
from twisted_services.server.options import positiveFloat, positiveInt

DEFAULT_PORT = 12345
QUIT_TIMEOUT = 5.0

# Under the server's defaults (5 lines a second, bursts of 20), with room
# for lines that bunch up on the way.
DEFAULT_RATE = 4.0
DEFAULT_BURST = 10
MAX_QUEUED = 256

_QUIT = re.compile(rb"/quit(?:[ \t].*)?", re.IGNORECASE | re.DOTALL)


def isQuit(line: bytes) -> bool:
    """
    Whether a typed line is the C{/quit} command, after which the server
    closes: the server ignores the command's case and takes a tab for a
    space, but not leading blanks.
    """
    return _QUIT.fullmatch(line) is not None


class Options(ServerOptions):
    """Command line of the chat client."""

    defaultPort = DEFAULT_PORT
    synopsis = "Usage: python -m twisted_services.chat [--nick NAME] [--ca FILE] SERVER"
    longdesc = (
        "Interactive client for the twisted-services chat. SERVER is HOST:PORT, "
        "[IPV6]:PORT, HOST (port 12345), or a Twisted client endpoint "
        "description such as tcp:HOST:PORT, tls:HOST:PORT or unix:PATH. A "
        "tls: server's certificate and host name are verified. Type lines to "
        "send them; /quit or Ctrl-D leaves."
    )
    optParameters = [
        ["nick", "n", None, "Take this nick once connected (sends /nick NAME)."],
        [
            "rate",
            None,
            DEFAULT_RATE,
            "Lines per second to send at most, on average; keep it under the "
            "server's --rate.",
            positiveFloat,
        ],
        [
            "burst",
            None,
            DEFAULT_BURST,
            "Lines to send at once before --rate applies; keep it under the "
            "server's --burst.",
            positiveInt,
        ],
        [
            "max-queued",
            None,
            MAX_QUEUED,
            "Lines that may wait to be sent; past that, reading input waits.",
            positiveInt,
        ],
    ]
    optFlags = [
        ["plain", None, "Read input line by line even on a terminal (no editing)."],
    ]

    def postOptions(self) -> None:
        """
        A nick goes out as one word; the server judges the rest. C{--ca}
        without a C{tls:} server would silently go unencrypted.
        """
        nick = self["nick"]
        if nick is not None and (not nick or any(c.isspace() for c in nick)):
            raise usage.UsageError(f"bad nick {nick!r}: one word expected")
        super().postOptions()


class ServerConnection(BoundedLineReceiver, HandshakeWaiter):
    """
    The socket side: shows each line the server sends and sends what the
    user types. Lines that arrive before a display is attached are kept.
    L{secured} fires once it may talk (after the handshake, over TLS).
    """

    # Bounds what a hostile server can make us buffer; real lines are short.
    MAX_LENGTH = 1024 * 1024

    def __init__(
        self,
        clock: IReactorTime,
        quitTimeout: float = QUIT_TIMEOUT,
        rate: float = DEFAULT_RATE,
        burst: int = DEFAULT_BURST,
        maxQueued: int = MAX_QUEUED,
    ) -> None:
        self._clock = clock
        self._quitTimeout = quitTimeout
        self._show: HeldOutput[str] = HeldOutput()
        self._giveUp: IDelayedCall | None = None
        self.pacer = LinePacer(self.sendLine, clock, rate, burst, maxQueued)
        self._refusing = False
        self.leaving = False
        self.closed: Deferred[BaseException] = Deferred()

    def connectionMade(self) -> None:
        self.waitForHandshake(self.transport)

    def showOn(self, display: Callable[[str], None]) -> None:
        """Show lines with C{display} from now on, starting with any kept ones."""
        self._show.attach(display)

    def completeLineReceived(self, line: bytes) -> None:
        self._show(cleanLine(line))

    def longLineDropped(self) -> None:
        self._show("! the server sent an over-long line; dropped")

    def say(self, line: bytes) -> None:
        """
        Send one line (without its line ending) to the server, as soon as
        the pace allows. A line that finds the queue full is dropped, and
        the user told once.
        """
        if self.pacer.push(line):
            self._refusing = False
        elif not self._refusing:
            self._refusing = True
            self._show("! too many lines waiting to be sent; dropped")

    def leave(self) -> None:
        """
        We asked to quit: once what waits is sent, wait for the server to
        close the connection, but not for longer than the quit timeout.
        """
        if self.leaving:
            return
        self.leaving = True
        self.pacer.whenIdle().addCallback(self._waitForClose)

    def _waitForClose(self, ignored: object) -> None:
        if self.connected:
            self._giveUp = self._clock.callLater(self._quitTimeout, self._abort)

    def _abort(self) -> None:
        self._giveUp = None
        self.transport.abortConnection()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.connected = False
        self.pacer.stop()
        if self._giveUp is not None and self._giveUp.active():
            self._giveUp.cancel()
        self._giveUp = None
        self.connectionEnded(reason)
        self.closed.callback(reason.value)


class TypedLines:
    """
    What the user's lines do, whichever way they are read: each goes to
    the server, C{/quit} leaves, and nothing is sent after leaving.
    """

    server: ServerConnection
    left = False

    def lineTyped(self, line: bytes) -> None:
        """Send a typed line (blank ones are not sent: the server ignores them)."""
        if self.left or not line.strip():
            return
        self.server.say(line)
        if isQuit(line):
            self._leave(sendQuit=False)

    def _leave(self, sendQuit: bool) -> None:
        if self.left:
            return
        self.left = True
        if sendQuit:
            self.server.say(b"/quit")
        self.server.leave()


@implementer(IHalfCloseableProtocol)
class Terminal(FinishingStandardIO, BoundedLineReceiver, TypedLines):
    """
    Standard input and output that are not a terminal: typed lines go to
    the server, the server's lines are written out one per LF-terminated line.
    """

    # The server has its own (smaller) limit; this one only bounds memory.
    MAX_LENGTH = 64 * 1024

    def __init__(self, server: ServerConnection) -> None:
        self.server = server

    def connectionMade(self) -> None:
        # Each side pauses the other: see the module docstring. The socket
        # is attached before standard I/O starts.
        pairProducers(self.transport, self.server.transport)
        # A full send queue stops the lines, not just the reading: a chunk
        # already read may hold many.
        self.server.pacer.pauseWhenFull(self)
        self.server.showOn(self.show)

    def completeLineReceived(self, line: bytes) -> None:
        self.lineTyped(line.rstrip(b"\r"))

    def longLineDropped(self) -> None:
        self.show("! line too long, not sent")

    def readConnectionLost(self) -> None:
        """End of input (Ctrl-D): send an unfinished last line, then quit."""
        rest = self.clearLineBuffer()
        if rest and not self._discarding:
            self.completeLineReceived(rest)
        self._leave(sendQuit=True)

    def writeConnectionLost(self) -> None:
        """Nobody reads what we print any more (a closed pipe): quit."""
        self.outputGone = True
        self._leave(sendQuit=True)


class EditingTerminal(LineEditor, TypedLines):
    """
    A terminal a person types at: an input line that the server's lines,
    printed above it, never split (see L{LineEditor}).
    """

    def __init__(self, server: ServerConnection, width: int = 80) -> None:
        super().__init__(width=width)
        self.server = server

    def connectionMade(self) -> None:
        super().connectionMade()
        stdio = self.terminal.transport
        pairProducers(stdio, self.server.transport)
        self.server.pacer.pauseWhenFull(stdio)
        self.server.showOn(self.showAbove)

    def lineTyped(self, line: str) -> None:  # type: ignore[override]
        TypedLines.lineTyped(self, line.encode("utf-8"))

    def endOfInput(self) -> None:
        """Ctrl-D on an empty line, or Ctrl-C: quit."""
        self._leave(sendQuit=True)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """The terminal is gone (hung up): quit."""
        self._leave(sendQuit=True)


async def chat(
    reactor: IReactorTime,
    options: Options,
    standardIO: StandardIOFactory = stdio.StandardIO,
    stderr: TextIO = sys.stderr,
    isTerminal: Callable[[], bool] = stdioIsTerminal,
) -> None:
    """
    Connect to the server, talk until it closes the connection, and exit
    (through L{SystemExit}) with status 1 on a connection failure, a failed
    TLS verification or an error. Nothing is read or sent before a TLS
    server is verified. On a terminal (unless C{--plain}), input is edited
    on an L{EditingTerminal}; otherwise it is read line by line.
    """
    server = ServerConnection(
        reactor,
        rate=options["rate"],
        burst=options["burst"],
        maxQueued=options["max-queued"],
    )
    await connectServer(reactor, "chat", options, server, stderr)
    if options["nick"]:
        server.say(b"/nick " + options["nick"].encode("utf-8"))
    if not options["plain"] and isTerminal():
        reason = await _editing(reactor, server, standardIO)  # type: ignore[arg-type]
    else:
        terminal = Terminal(server)
        standardIO(terminal, reactor=reactor)
        reason = await server.closed
        await terminal.finish()
    if not server.leaving:
        exitUnlessClosedCleanly("chat", reason, stderr)


async def _editing(
    reactor: IReactorCore, server: ServerConnection, standardIO: StandardIOFactory
) -> BaseException:
    """Talk on a terminal in raw mode, restored however this ends."""
    editor = EditingTerminal(server, width=terminalSize()[0])
    io = EditorStandardIO(lambda: editor)
    with rawTerminal(), onResize(reactor, sizeWatcher(editor)):
        standardIO(io, reactor=reactor)
        reason = await server.closed
        editor.erase()
        await io.finish()
    return reason


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Run the client with C{argv} (default: C{sys.argv[1:]}) and exit."""
    runClient("chat", Options(), chat, argv)
