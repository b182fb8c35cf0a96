"""
The chat terminal client: C{python -m twisted_services.chat SERVER}.

What you type is sent to the server line by line and what the server sends is
printed as it arrives, on C{twisted.internet.stdio}. Two line protocols share
the work: L{ServerConnection} on the socket and L{Terminal} on standard input
and output. Each side's transport is the other's streaming producer, as in
C{twisted.protocols.portforward}: a terminal that stops reading (Ctrl-S, a
slow pipe) stops us reading from the server instead of buffering without
limit, and a server that stops reading stops us reading what is typed.

The terminal stays in its normal (cooked) mode, so an incoming line may be
printed in the middle of a line being typed; what was typed is still sent
whole when Enter is pressed. Redrawing the input line would need raw mode
and a line editor (as C{twisted.conch.manhole} has).

Leaving: C{/quit} or end of input (Ctrl-D) sends C{/quit}; the client then
prints what the server still sends (at least C{* bye}) until the server closes
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
from twisted_services.clients.runner import runClient
from twisted_services.clients.terminal import (
    FinishingStandardIO,
    HeldOutput,
    StandardIOFactory,
    cleanLine,
    pairProducers,
)
from twisted_services.core.lines import BoundedLineReceiver

DEFAULT_PORT = 12345
QUIT_TIMEOUT = 5.0

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

    def __init__(self, clock: IReactorTime, quitTimeout: float = QUIT_TIMEOUT) -> None:
        self._clock = clock
        self._quitTimeout = quitTimeout
        self._show: HeldOutput[str] = HeldOutput()
        self._giveUp: IDelayedCall | None = None
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
        """Send one line (without its line ending) to the server."""
        self.sendLine(line)

    def leave(self) -> None:
        """
        We asked to quit: wait for the server to close the connection, but
        not for longer than the quit timeout.
        """
        if self.leaving:
            return
        self.leaving = True
        self._giveUp = self._clock.callLater(self._quitTimeout, self._abort)

    def _abort(self) -> None:
        self._giveUp = None
        self.transport.abortConnection()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self._giveUp is not None and self._giveUp.active():
            self._giveUp.cancel()
        self._giveUp = None
        self.connectionEnded(reason)
        self.closed.callback(reason.value)


@implementer(IHalfCloseableProtocol)
class Terminal(FinishingStandardIO, BoundedLineReceiver):
    """
    The standard input and output side: typed lines go to the server, the
    server's lines are written out one per LF-terminated line.
    """

    # The server has its own (smaller) limit; this one only bounds memory.
    MAX_LENGTH = 64 * 1024

    def __init__(self, server: ServerConnection) -> None:
        self.server = server
        self.left = False

    def connectionMade(self) -> None:
        # Each side pauses the other: see the module docstring. The socket
        # is attached before standard I/O starts.
        pairProducers(self.transport, self.server.transport)
        self.server.showOn(self.show)

    def completeLineReceived(self, line: bytes) -> None:
        line = line.rstrip(b"\r")
        if self.left or not line.strip():
            return
        self.server.say(line)
        if isQuit(line):
            self._leave(sendQuit=False)

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

    def _leave(self, sendQuit: bool) -> None:
        if self.left:
            return
        self.left = True
        if sendQuit:
            self.server.say(b"/quit")
        self.server.leave()


async def chat(
    reactor: IReactorTime,
    options: Options,
    standardIO: StandardIOFactory = stdio.StandardIO,
    stderr: TextIO = sys.stderr,
) -> None:
    """
    Connect to the server, talk until it closes the connection, and exit
    (through L{SystemExit}) with status 1 on a connection failure, a failed
    TLS verification or an error. Nothing is read or sent before a TLS
    server is verified.
    """
    server = ServerConnection(reactor)
    await connectServer(reactor, "chat", options, server, stderr)
    if options["nick"]:
        server.say(b"/nick " + options["nick"].encode("utf-8"))
    terminal = Terminal(server)
    standardIO(terminal, reactor=reactor)
    reason = await server.closed
    await terminal.finish()
    if not server.leaving:
        exitUnlessClosedCleanly("chat", reason, stderr)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Run the client with C{argv} (default: C{sys.argv[1:]}) and exit."""
    runClient("chat", Options(), chat, argv)
