"""
Tests for L{twisted_services.echo.client}: the command line, both sides on
fake transports (relaying, producers, half-closing), and the connecting
coroutine on a memory reactor.
"""

from __future__ import annotations

import io
import sys
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.error import ConnectionLost
from twisted.internet.error import ConnectionRefusedError as RefusedError
from twisted.internet.interfaces import IHalfCloseableDescriptor, INegotiated
from twisted.internet.testing import (
    MemoryReactorClock,
    StringTransportWithDisconnection,
)
from twisted.python.failure import Failure
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import alsoProvides, implementer

from tests.clients.test_runner import assertPrintsVersion
from tests.support import forkserver
from twisted_services import __version__
from twisted_services.echo.client import (
    DEFAULT_PORT,
    Options,
    ServerConnection,
    StandardIO,
    echo,
)


@implementer(IHalfCloseableDescriptor)
class HalfCloseableTransport(StringTransportWithDisconnection):
    """A fake socket that records C{loseWriteConnection}."""

    writeClosed = False

    def loseWriteConnection(self) -> None:
        self.writeClosed = True


def attach(protocol: Any, transport: Any = None) -> Any:
    """Connect C{protocol} to C{transport} (a fresh fake by default)."""
    if transport is None:
        transport = StringTransportWithDisconnection()
    transport.protocol = protocol
    protocol.makeConnection(transport)
    return transport


class Session:
    """Both sides of the client, each on a fake transport."""

    def __init__(self, tls: bool = False) -> None:
        socket = HalfCloseableTransport()
        if tls:
            alsoProvides(socket, INegotiated)
        self.server = ServerConnection()
        self.socket = attach(self.server, socket)
        # Standard I/O starts only once the handshake is done.
        self.server.handshakeCompleted()
        self.standard = StandardIO(self.server)
        self.stdio = attach(self.standard)


class FakeStandardIO:
    """Stands in for C{StandardIO}: attaches the protocol to a fake transport."""

    def __init__(self, protocol: Any, reactor: object = None) -> None:
        self.transport = attach(protocol)


class OptionsTests(SynchronousTestCase):
    """L{Options} parses C{[--ca FILE] SERVER}."""

    def test_server(self) -> None:
        """SERVER is converted as for the chat client, with port 8888."""
        options = Options()
        options.parseOptions(["localhost"])
        self.assertEqual(options["endpoint"], f"tcp:host=localhost:port={DEFAULT_PORT}")
        self.assertIsNone(options["ca"])

    def test_ca(self) -> None:
        """C{--ca} goes with a C{tls:} server, and only with one."""
        options = Options()
        options.parseOptions(["--ca", "ca.pem", "tls:localhost:8443"])
        self.assertEqual(options["ca"], "ca.pem")
        self.assertRaises(
            UsageError, Options().parseOptions, ["--ca", "ca.pem", "localhost:1"]
        )

    def test_serverRequired(self) -> None:
        """Exactly one SERVER."""
        self.assertRaises(UsageError, Options().parseOptions, [])

    def test_version(self) -> None:
        """C{--version} prints this project's version, not Twisted's, and exits 0."""
        assertPrintsVersion(self, Options(), "--version")

    def test_versionCommand(self) -> None:
        """C{python -m twisted_services.echo --version} says the version and exits 0."""
        result = forkserver.run(
            [sys.executable, "-m", "twisted_services.echo", "--version"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        self.assertEqual(
            (result.returncode, result.stdout, result.stderr),
            (0, f"twisted-services {__version__}\n", ""),
        )


class RelayTests(SynchronousTestCase):
    """Standard input goes to the server and the server's bytes to output."""

    def test_producersBothWays(self) -> None:
        """Each side's transport is the other's streaming producer."""
        session = Session()
        self.assertIs(session.stdio.producer, session.socket)
        self.assertIs(session.socket.producer, session.stdio)
        self.assertTrue(session.stdio.streaming and session.socket.streaming)

    def test_bytesExact(self) -> None:
        """Arbitrary bytes pass unchanged both ways, with no framing."""
        session = Session()
        data = bytes(range(256)) * 3 + b"\r\n\x00"
        session.standard.dataReceived(data)
        self.assertEqual(session.socket.value(), data)
        session.server.dataReceived(data[:100])
        session.server.dataReceived(data[100:])
        self.assertEqual(session.stdio.value(), data)

    def test_earlyBytesKept(self) -> None:
        """Bytes that arrive before standard I/O starts are written first."""
        server = ServerConnection()
        attach(server)
        server.dataReceived(b"early ")
        stdio = attach(StandardIO(server))
        server.dataReceived(b"late")
        self.assertEqual(stdio.value(), b"early late")

    def test_endOfInputHalfCloses(self) -> None:
        """At EOF on TCP the write side closes at once and reading goes on."""
        session = Session()
        session.standard.dataReceived(b"abc")
        session.standard.readConnectionLost()
        self.assertIsNone(session.socket.producer)
        self.assertTrue(session.socket.writeClosed)
        self.assertTrue(session.socket.connected)
        session.server.dataReceived(b"abc")
        self.assertEqual(session.stdio.value(), b"abc")

    def test_endOfInputTLS(self) -> None:
        """
        Over TLS, close_notify (C{loseConnection}) waits until every byte
        sent came back, and C{loseWriteConnection} is never used.
        """
        session = Session(tls=True)
        session.standard.dataReceived(b"abcdef")
        session.server.dataReceived(b"ab")
        session.standard.readConnectionLost()
        self.assertTrue(session.socket.connected)
        session.server.dataReceived(b"cde")
        self.assertTrue(session.socket.connected)
        session.server.dataReceived(b"f")
        self.assertFalse(session.socket.connected)
        self.assertFalse(session.socket.writeClosed)
        self.assertEqual(session.stdio.value(), b"abcdef")

    def test_outputGone(self) -> None:
        """When standard output closes, the connection is aborted."""
        session = Session()
        session.standard.writeConnectionLost()
        self.assertFalse(session.socket.connected)

    def test_finish(self) -> None:
        """L{StandardIO.finish} unregisters the socket and closes standard I/O."""
        session = Session()
        finished = session.standard.finish()
        self.assertIsNone(session.stdio.producer)
        self.successResultOf(finished)


class EchoTests(SynchronousTestCase):
    """L{echo} connects, relays and decides the exit status."""

    def start(self, arguments: list[str]) -> tuple[Deferred[None], Any, io.StringIO]:
        options = Options()
        options.parseOptions(arguments)
        reactor = MemoryReactorClock()
        stderr = io.StringIO()
        return (
            ensureDeferred(echo(reactor, options, FakeStandardIO, stderr)),
            reactor,
            stderr,
        )

    def connected(self) -> tuple[Deferred[None], Any, io.StringIO]:
        finished, reactor, stderr = self.start(["127.0.0.1:7"])
        protocol = reactor.tcpClients[0][2].buildProtocol(
            IPv4Address("TCP", "127.0.0.1", 7)
        )
        return finished, attach(protocol), stderr

    def test_connectionRefused(self) -> None:
        """A failed connection exits 1 with one line on stderr."""
        finished, reactor, stderr = self.start(["127.0.0.1:1"])
        reactor.tcpClients[0][2].clientConnectionFailed(
            reactor.connectors[0], Failure(RefusedError())
        )
        self.assertEqual(self.failureResultOf(finished, SystemExit).value.code, 1)
        self.assertRegex(
            stderr.getvalue(), r"^echo: cannot connect to 127.0.0.1:1: .+\n$"
        )

    def test_badCAFile(self) -> None:
        """An unreadable CA file exits 2 naming it, before connecting."""
        finished, reactor, stderr = self.start(["--ca", "/nonexistent.pem", "tls:h:1"])
        self.assertEqual(self.failureResultOf(finished, SystemExit).value.code, 2)
        self.assertIn("/nonexistent.pem", stderr.getvalue())
        self.assertEqual(reactor.tcpClients, [])

    def test_serverCloses(self) -> None:
        """A clean close by the server exits 0."""
        finished, transport, stderr = self.connected()
        transport.loseConnection()
        self.assertIsNone(self.successResultOf(finished))
        self.assertEqual(stderr.getvalue(), "")

    def test_connectionLost(self) -> None:
        """A connection lost with an error exits 1, saying why."""
        finished, transport, stderr = self.connected()
        transport.connected = False
        transport.protocol.connectionLost(Failure(ConnectionLost("reset")))
        self.assertEqual(self.failureResultOf(finished, SystemExit).value.code, 1)
        self.assertIn("echo: connection lost: ", stderr.getvalue())
