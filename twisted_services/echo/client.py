"""
The echo client: C{python -m twisted_services.echo [--ca FILE] SERVER}.

It sends standard input to the echo service byte for byte until end of
input, then closes its sending side, and writes everything that comes back
to standard output, byte for byte, until the server closes the connection.
SERVER is as for the chat client (C{HOST:PORT}, C{[IPV6]:PORT}, C{HOST} for
port L{DEFAULT_PORT}, or an endpoint description such as C{tls:HOST:PORT});
a C{tls:} server's certificate chain and host name are verified before
anything is read or sent.

Each side's transport is the other's streaming producer, as in
C{twisted.protocols.portforward}: a server that stops reading stops us
reading standard input, and a standard output that stops draining stops us
reading from the server, so a large input is never held in memory.

Closing the sending side: on TCP and UNIX sockets, C{loseWriteConnection}
(a FIN; the echo service sees C{readConnectionLost}). Twisted's TLS
transport has no C{loseWriteConnection} of its own (the attribute it seems
to have is the TCP transport's, reached through C{ProtocolWrapper}'s
C{__getattr__}: calling it would end TCP under TLS without a close_notify).
Its C{loseConnection} comes close: it sends close_notify, keeps delivering
what arrives, and closes TCP once the server's own close_notify comes. But
against Twisted's TLS server, sent at end of input with echoes still in
flight, it lost the tail of the echo now and then (a few KiB of 400 KiB,
timing-dependent; the server's L{Echo} had received and written it all).
So over TLS the client sends close_notify only once as many bytes have come
back as it sent: the echo service returns every byte, and a server that
returns fewer still ends it by closing.

Exit status: 0 when the server closed the connection cleanly, 1 when it
could not be reached or verified or the connection was lost with an error,
2 for a bad command line.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import NoReturn, TextIO

from twisted.internet import stdio
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IHalfCloseableDescriptor,
    IHalfCloseableProtocol,
    INegotiated,
    ITransport,
)
from twisted.internet.protocol import Protocol, connectionDone
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
    pairProducers,
)

DEFAULT_PORT = 8888


class Options(ServerOptions):
    """Command line of the echo client."""

    defaultPort = DEFAULT_PORT
    synopsis = "Usage: python -m twisted_services.echo [--ca FILE] SERVER"
    longdesc = (
        "Send standard input to a twisted-services echo server and write what "
        "comes back to standard output, until the server closes. SERVER is "
        "HOST:PORT, [IPV6]:PORT, HOST (port 8888), or a Twisted client "
        "endpoint description such as tcp:HOST:PORT, tls:HOST:PORT or "
        "unix:PATH. A tls: server's certificate and host name are verified."
    )


def closeSending(transport: ITransport) -> None:
    """
    Close the sending side of C{transport} and keep receiving: see the
    module docstring for why TLS is told apart first (L{StandardIO} calls
    this for TLS only once everything sent came back).
    """
    if INegotiated.providedBy(transport):
        transport.loseConnection()
    elif IHalfCloseableDescriptor.providedBy(transport):
        transport.loseWriteConnection()  # type: ignore[attr-defined]
    else:
        # No way to half-close: what the server sends back may be cut short.
        transport.loseConnection()


class ServerConnection(Protocol, HandshakeWaiter):
    """
    The socket side: what arrives goes to C{output} once one is attached
    (kept until then); L{closed} fires with why the connection ended.
    """

    def __init__(self) -> None:
        self._output: HeldOutput[bytes] = HeldOutput()
        self.received = 0
        self.onReceived: Callable[[], None] | None = None
        self.closed: Deferred[BaseException] = Deferred()

    def connectionMade(self) -> None:
        self.waitForHandshake(self.transport)

    def sendTo(self, output: Callable[[bytes], None]) -> None:
        """Write what arrives with C{output} from now on, kept bytes first."""
        self._output.attach(output)

    def dataReceived(self, data: bytes) -> None:
        self.received += len(data)
        self._output(data)
        if self.onReceived is not None:
            self.onReceived()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.connectionEnded(reason)
        self.closed.callback(reason.value)


@implementer(IHalfCloseableProtocol)
class StandardIO(FinishingStandardIO, Protocol):
    """
    The standard input and output side: input goes to the server as it is
    read, and what the server sends is written out.
    """

    def __init__(self, server: ServerConnection) -> None:
        self.server = server
        self.sent = 0
        self.inputEnded = False
        self.sendingClosed = False

    def connectionMade(self) -> None:
        # Each side pauses the other: see the module docstring. The socket
        # is attached before standard I/O starts.
        pairProducers(self.transport, self.server.transport)
        self.server.sendTo(self.writeOutput)

    def dataReceived(self, data: bytes) -> None:
        self.sent += len(data)
        self.server.transport.write(data)

    def readConnectionLost(self) -> None:
        """
        End of input: everything is sent; close our sending side, over TLS
        once it has all come back (see the module docstring).
        """
        self.inputEnded = True
        # A registered producer would keep the socket from closing its side.
        self.server.transport.unregisterProducer()
        if INegotiated.providedBy(self.server.transport):
            self.server.onReceived = self._closeWhenEchoed
            self._closeWhenEchoed()
        else:
            self._closeSending()

    def _closeWhenEchoed(self) -> None:
        if self.server.received >= self.sent:
            self._closeSending()

    def _closeSending(self) -> None:
        if not self.sendingClosed:
            self.sendingClosed = True
            self.server.onReceived = None
            closeSending(self.server.transport)

    def writeConnectionLost(self) -> None:
        """Nobody reads what comes back any more (a closed pipe): give up."""
        self.outputGone = True
        self.server.transport.abortConnection()


async def echo(
    reactor: object,
    options: Options,
    standardIO: StandardIOFactory = stdio.StandardIO,
    stderr: TextIO = sys.stderr,
) -> None:
    """
    Connect, relay standard input and output until the server closes, and
    exit (through L{SystemExit}) with status 1 on a connection failure, a
    failed TLS verification or an error; 2 for an unusable server or CA file.
    """
    server = ServerConnection()
    await connectServer(reactor, "echo", options, server, stderr)
    terminal = StandardIO(server)
    standardIO(terminal, reactor=reactor)
    reason = await server.closed
    await terminal.finish()
    if terminal.outputGone:
        stderr.write("echo: standard output closed\n")
        raise SystemExit(1)
    exitUnlessClosedCleanly("echo", reason, stderr)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Run the client with C{argv} (default: C{sys.argv[1:]}) and exit."""
    runClient("echo", Options(), echo, argv)
