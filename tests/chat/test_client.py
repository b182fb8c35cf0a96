"""
Tests for L{twisted_services.chat.client}: the pure pieces, both line
protocols on fake transports, the connecting coroutine on a memory reactor,
and the real client driven through pipes against a real C{twistd -n chat}.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import termios
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.endpoints import clientFromString
from twisted.internet.error import ConnectionLost
from twisted.internet.error import ConnectionRefusedError as RefusedError
from twisted.internet.task import Clock
from twisted.internet.testing import (
    MemoryReactorClock,
    StringTransportWithDisconnection,
)
from twisted.python.failure import Failure
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from tests.clients.screen import PseudoTerminal
from tests.clients.test_runner import assertPrintsVersion
from tests.support import forkserver
from tests.support.twistd import Twistd, startTwistd
from twisted_services.chat import tap
from twisted_services.chat.client import (
    DEFAULT_PORT,
    QUIT_TIMEOUT,
    EditingTerminal,
    Options,
    ServerConnection,
    Terminal,
    chat,
    isQuit,
)
from twisted_services.clients.lineeditor import EditorStandardIO
from twisted_services.clients.terminal import cleanLine

PROCESS_TIMEOUT = 10.0


def attach(protocol: Any) -> StringTransportWithDisconnection:
    """Connect C{protocol} to a fake transport that reports disconnection."""
    transport = StringTransportWithDisconnection()
    transport.protocol = protocol
    protocol.makeConnection(transport)
    return transport


def connectedServer(
    clock: Clock | None = None,
) -> tuple[ServerConnection, StringTransportWithDisconnection, Clock]:
    """A L{ServerConnection} on a fake socket, with its clock."""
    clock = clock or Clock()
    server = ServerConnection(clock)
    return server, attach(server), clock


class Session:
    """A L{Terminal} and a L{ServerConnection}, each on a fake transport."""

    def __init__(self) -> None:
        self.server, self.socket, self.clock = connectedServer()
        self.terminal = Terminal(self.server)
        self.stdio = attach(self.terminal)

    def typed(self, data: bytes) -> bytes:
        """Feed C{data} as typed input; return what went to the server."""
        self.socket.clear()
        self.terminal.dataReceived(data)
        return self.socket.value()

    def received(self, data: bytes) -> bytes:
        """Feed C{data} from the server; return what was printed."""
        self.stdio.clear()
        self.server.dataReceived(data)
        return self.stdio.value()


class FakeStandardIO:
    """Stands in for C{StandardIO}: attaches the protocol to a fake transport."""

    def __init__(self, protocol: Any, reactor: object = None) -> None:
        self.protocol = protocol
        self.transport = attach(protocol)


def endpointDescription(server: str) -> str:
    """The endpoint description the client's L{Options} make of SERVER."""
    options = Options()
    options.parseOptions([server])
    endpoint: str = options["endpoint"]
    return endpoint


class EndpointDescriptionTests(SynchronousTestCase):
    """The SERVER argument becomes an endpoint string, on the chat's port."""

    def test_hostAndPort(self) -> None:
        """HOST:PORT is a TCP endpoint."""
        self.assertEqual(
            endpointDescription("chat.example.org:6667"),
            "tcp:host=chat.example.org:port=6667",
        )
        self.assertEqual(
            endpointDescription("127.0.0.1:12345"), "tcp:host=127.0.0.1:port=12345"
        )

    def test_bareHost(self) -> None:
        """A host without a port means the chat's default port."""
        self.assertEqual(
            endpointDescription("localhost"), f"tcp:host=localhost:port={DEFAULT_PORT}"
        )

    def test_bracketedIPv6(self) -> None:
        """[IPV6]:PORT is TCP to that address, its colons escaped for the parser."""
        description = endpointDescription("[::1]:12345")
        self.assertEqual(description, r"tcp:host=\:\:1:port=12345")
        reactor = MemoryReactorClock()
        clientFromString(reactor, description).connect(None)  # type: ignore[arg-type]
        self.assertEqual(reactor.tcpClients[0][:2], ("::1", 12345))

    def test_bareIPv6(self) -> None:
        """An IPv6 address, bracketed or not, without a port uses the default."""
        expected = rf"tcp:host=\:\:1:port={DEFAULT_PORT}"
        self.assertEqual(endpointDescription("::1"), expected)
        self.assertEqual(endpointDescription("[::1]"), expected)

    def test_descriptionsPassThrough(self) -> None:
        """Endpoint descriptions come back unchanged, whatever their case."""
        for description in [
            "tcp:localhost:12345",
            "tcp:host=localhost:port=12345",
            "tls:chat.example.org:12345",
            "unix:/run/chat.sock",
            "unix:8080",
            "TCP:localhost:1",
            "tor:example.onion:12345",
        ]:
            self.assertEqual(endpointDescription(description), description)

    def test_badPort(self) -> None:
        """A port that is not 1-65535 is a usage error naming the argument."""
        for argument in ["host:0", "host:65536", "host:http", "host:", "[::1]:x"]:
            with self.assertRaises(UsageError) as raised:
                endpointDescription(argument)
            self.assertIn(repr(argument), str(raised.exception))

    def test_empty(self) -> None:
        """An empty argument is a usage error."""
        self.assertRaises(UsageError, endpointDescription, " ")


class OptionsTests(SynchronousTestCase):
    """L{Options} parses C{[--nick NAME] SERVER}."""

    def test_serverAndNick(self) -> None:
        """The server argument is kept and converted; --nick and -n set the nick."""
        options = Options()
        options.parseOptions(["--nick", "alice", "localhost:4000"])
        self.assertEqual(options["server"], "localhost:4000")
        self.assertEqual(options["endpoint"], "tcp:host=localhost:port=4000")
        self.assertEqual(options["nick"], "alice")
        options = Options()
        options.parseOptions(["-n", "bob", "unix:/tmp/chat"])
        self.assertEqual(
            (options["nick"], options["endpoint"]), ("bob", "unix:/tmp/chat")
        )

    def test_noNick(self) -> None:
        """Without --nick the nick is L{None}: the server's guest name stays."""
        options = Options()
        options.parseOptions(["localhost"])
        self.assertIsNone(options["nick"])

    def test_serverRequired(self) -> None:
        """Exactly one server argument is required."""
        self.assertRaises(UsageError, Options().parseOptions, [])
        self.assertRaises(UsageError, Options().parseOptions, ["a:1", "b:2"])

    def test_version(self) -> None:
        """C{--version} prints this project's version, not Twisted's, and exits 0."""
        assertPrintsVersion(self, Options(), "--version")

    def test_nickIsOneWord(self) -> None:
        """A nick with white space, or an empty one, is a usage error."""
        for nick in ["a b", "", " alice", "alice\t"]:
            self.assertRaises(
                UsageError, Options().parseOptions, ["--nick", nick, "localhost"]
            )


class CleanLineTests(SynchronousTestCase):
    """L{cleanLine} makes a server line safe to print."""

    def test_lineEnding(self) -> None:
        """A trailing CR (of CRLF) goes; text stays as it is."""
        self.assertEqual(cleanLine(b"<bob> hi there\r"), "<bob> hi there")

    def test_invalidUTF8(self) -> None:
        """Invalid UTF-8 becomes U+FFFD; valid multibyte text survives."""
        self.assertEqual(cleanLine(b"caf\xc3\xa9 \xff"), "caf\u00e9 \ufffd")

    def test_escapeSequences(self) -> None:
        """CSI, OSC, 8-bit CSI, other escapes and C0/C1 controls are removed."""
        self.assertEqual(cleanLine(b"\x1b[31mred\x1b[0m"), "red")
        self.assertEqual(cleanLine(b"\x1b]0;owned\x07title"), "title")
        self.assertEqual(cleanLine(b"\x1b]8;;http://x\x1b\\link"), "link")
        self.assertEqual(cleanLine("\x9b2Jclear".encode()), "clear")
        self.assertEqual(cleanLine(b"\x1bcreset\x07\x08\x00\x7f!"), "reset!")
        self.assertEqual(cleanLine(b"lone escape\x1b"), "lone escape")

    def test_tabKept(self) -> None:
        """A tab is harmless and kept."""
        self.assertEqual(cleanLine(b"a\tb"), "a\tb")


class IsQuitTests(SynchronousTestCase):
    """L{isQuit} recognises the C{/quit} command as the server parses it."""

    def test_quit(self) -> None:
        """C{/quit} alone or with a reason is a quit; nothing else is."""
        for line in [b"/quit", b"/quit gone fishing", b"/QUIT", b"/Quit\tnow"]:
            self.assertTrue(isQuit(line), line)
        for line in [b"/quitter", b"//quit", b"quit", b"", b" /quit", b"say /quit"]:
            self.assertFalse(isQuit(line), line)


class ServerConnectionTests(SynchronousTestCase):
    """L{ServerConnection} shows the server's lines and sends the user's."""

    def test_linesShown(self) -> None:
        """Each CRLF-terminated line is shown once complete, in order."""
        server, _, _ = connectedServer()
        shown: list[str] = []
        server.showOn(shown.append)
        server.dataReceived(b"* welcome\r\n<bob> h")
        self.assertEqual(shown, ["* welcome"])
        server.dataReceived(b"i\r\n<carol> yo\n")
        self.assertEqual(shown, ["* welcome", "<bob> hi", "<carol> yo"])

    def test_earlyLinesKept(self) -> None:
        """Lines that arrive before a display is attached are shown on attach."""
        server, _, _ = connectedServer()
        server.dataReceived(b"one\r\ntwo\r\n")
        shown: list[str] = []
        server.showOn(shown.append)
        server.dataReceived(b"three\r\n")
        self.assertEqual(shown, ["one", "two", "three"])

    def test_say(self) -> None:
        """L{ServerConnection.say} sends the line ending in LF."""
        server, transport, _ = connectedServer()
        server.say(b"/nick alice")
        self.assertEqual(transport.value(), b"/nick alice\n")

    def test_longLineDropped(self) -> None:
        """
        An over-long line is dropped with one notice, and the lines after it
        in the same chunk are still shown.
        """
        server, transport, _ = connectedServer()
        shown: list[str] = []
        server.showOn(shown.append)
        longLine = b"x" * (server.MAX_LENGTH + 10)
        server.dataReceived(b"before\r\n" + longLine + b"\r\nafter\r\nlast\r\n")
        self.assertEqual(
            shown,
            ["before", "! the server sent an over-long line; dropped", "after", "last"],
        )
        self.assertTrue(transport.connected)

    def test_longLineInPieces(self) -> None:
        """A long line arriving in pieces gives one notice and none of its tail."""
        server, _, _ = connectedServer()
        shown: list[str] = []
        server.showOn(shown.append)
        piece = b"y" * (server.MAX_LENGTH // 2)
        for _ in range(5):
            server.dataReceived(piece)
        server.dataReceived(b"tail\r\nnext\r\n")
        self.assertEqual(
            shown, ["! the server sent an over-long line; dropped", "next"]
        )

    def test_leaveTimesOut(self) -> None:
        """After L{ServerConnection.leave}, a silent server is dropped in time."""
        server, transport, clock = connectedServer()
        server.leave()
        server.leave()
        self.assertEqual(len(clock.getDelayedCalls()), 1)
        clock.advance(QUIT_TIMEOUT - 0.1)
        self.assertTrue(transport.connected)
        clock.advance(0.2)
        self.assertFalse(transport.connected)
        self.assertTrue(transport.disconnected)  # aborted, not closed
        self.assertTrue(server.leaving)

    def test_serverClosesAfterQuit(self) -> None:
        """When the server closes first, the quit timer goes away."""
        server, transport, clock = connectedServer()
        server.leave()
        transport.loseConnection()
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_closedFires(self) -> None:
        """L{ServerConnection.closed} fires with why the connection ended."""
        server, _, _ = connectedServer()
        closed = server.closed
        server.connectionLost(Failure(ConnectionLost("reset")))
        self.assertIsInstance(self.successResultOf(closed), ConnectionLost)


class TerminalTests(SynchronousTestCase):
    """L{Terminal} sends typed lines and prints the server's."""

    def test_producersBothWays(self) -> None:
        """Each side's transport is registered as the other's streaming producer."""
        session = Session()
        self.assertIs(session.stdio.producer, session.socket)
        self.assertIs(session.socket.producer, session.stdio)
        self.assertTrue(session.stdio.streaming)
        self.assertTrue(session.socket.streaming)

    def test_typedLinesSent(self) -> None:
        """Each typed line goes to the server as one LF-terminated line."""
        session = Session()
        self.assertEqual(session.typed(b"hello\nhow are"), b"hello\n")
        self.assertEqual(session.typed(b" you?\n/who\n"), b"how are you?\n/who\n")

    def test_crlfTyped(self) -> None:
        """A CR before the LF (a Windows pipe, a raw terminal) is not sent."""
        session = Session()
        self.assertEqual(session.typed(b"hi\r\n"), b"hi\n")

    def test_blankLinesNotSent(self) -> None:
        """Empty and all-blank lines are not sent (the server ignores them)."""
        session = Session()
        self.assertEqual(session.typed(b"\n  \n\r\nx\n"), b"x\n")

    def test_serverLinesPrinted(self) -> None:
        """Server lines are printed cleaned, ending in LF, as they arrive."""
        session = Session()
        self.assertEqual(
            session.received(b"* welcome\r\n<bob> \x1b[2Jhi\r\n"),
            b"* welcome\n<bob> hi\n",
        )
        self.assertEqual(
            session.received(b"<bob> caf\xc3\xa9\r\n"), "<bob> café\n".encode()
        )

    def test_printedWhileTyping(self) -> None:
        """A half-typed line neither delays nor is sent with incoming lines."""
        session = Session()
        self.assertEqual(session.typed(b"half a li"), b"")
        self.assertEqual(session.received(b"<bob> hey\r\n"), b"<bob> hey\n")
        self.assertEqual(session.typed(b"ne\n"), b"half a line\n")

    def test_earlyServerLinesPrinted(self) -> None:
        """Lines the server sent before standard I/O started are printed first."""
        server, _, _ = connectedServer()
        server.dataReceived(b"* welcome, you are guest1\r\n")
        stdio = attach(Terminal(server))
        self.assertEqual(stdio.value(), b"* welcome, you are guest1\n")

    def test_quitTyped(self) -> None:
        """
        C{/quit} is sent, the client waits for the server to close, and
        nothing typed afterwards is sent.
        """
        session = Session()
        self.assertEqual(session.typed(b"/quit see you\nmore\n"), b"/quit see you\n")
        self.assertTrue(session.server.leaving)
        self.assertEqual(session.typed(b"still here?\n"), b"")
        self.assertEqual(len(session.clock.getDelayedCalls()), 1)

    def test_endOfInput(self) -> None:
        """At EOF an unfinished last line is sent, then C{/quit}."""
        session = Session()
        session.typed(b"last words")
        session.socket.clear()
        session.terminal.readConnectionLost()
        self.assertEqual(session.socket.value(), b"last words\n/quit\n")
        self.assertTrue(session.server.leaving)
        self.assertTrue(session.socket.connected)

    def test_endOfInputAfterQuit(self) -> None:
        """EOF after a typed C{/quit} sends nothing more."""
        session = Session()
        session.typed(b"/quit\n")
        session.socket.clear()
        session.terminal.readConnectionLost()
        self.assertEqual(session.socket.value(), b"")

    def test_longTypedLine(self) -> None:
        """An over-long typed line is not sent; the user is told; typing goes on."""
        session = Session()
        longLine = b"z" * (Terminal.MAX_LENGTH + 1)
        session.stdio.clear()
        self.assertEqual(session.typed(longLine + b"\nshort\n"), b"short\n")
        self.assertEqual(session.stdio.value(), b"! line too long, not sent\n")

    def test_outputGone(self) -> None:
        """When standard output closes, the client quits and prints nothing more."""
        session = Session()
        session.socket.clear()
        session.terminal.writeConnectionLost()
        self.assertEqual(session.socket.value(), b"/quit\n")
        self.assertEqual(session.received(b"* bye\r\n"), b"")
        self.successResultOf(session.terminal.finish())

    def test_finish(self) -> None:
        """L{Terminal.finish} unregisters the socket and closes standard I/O."""
        session = Session()
        finished = session.terminal.finish()
        self.assertIsNone(session.stdio.producer)
        self.assertFalse(session.stdio.connected)
        self.successResultOf(finished)
        self.successResultOf(session.terminal.finish())


class PacingTests(SynchronousTestCase):
    """What the client sends is paced under the server's flood limit."""

    def test_defaultsUnderServer(self) -> None:
        """The client's default pace is under the server's default limit."""
        client, server = Options(), tap.Options()
        client.parseOptions(["localhost"])
        server.parseOptions([])
        self.assertLess(client["rate"], server["rate"])
        self.assertLess(client["burst"], server["burst"])

    def test_paceOptions(self) -> None:
        """C{--rate}, C{--burst} and C{--max-queued} set the pace; zero is refused."""
        options = Options()
        options.parseOptions(
            ["--rate", "2.5", "--burst", "3", "--max-queued", "7", "localhost"]
        )
        self.assertEqual(
            (options["rate"], options["burst"], options["max-queued"]), (2.5, 3, 7)
        )
        for option in ["--rate", "--burst", "--max-queued"]:
            self.assertRaises(
                UsageError, Options().parseOptions, [option, "0", "localhost"]
            )

    def test_burstThenPaced(self) -> None:
        """Lines past the burst go out at the rate, in order."""
        clock = Clock()
        server = ServerConnection(clock, rate=2.0, burst=2)
        socket = attach(server)
        for n in range(4):
            server.say(b"%d" % n)
        self.assertEqual(socket.value(), b"0\n1\n")
        clock.advance(0.5)
        self.assertEqual(socket.value(), b"0\n1\n2\n")
        clock.advance(0.5)
        self.assertEqual(socket.value(), b"0\n1\n2\n3\n")

    def test_quitWaitsForQueue(self) -> None:
        """
        Leaving sends what waits first; the quit timeout starts only once
        the last line is out.
        """
        clock = Clock()
        server = ServerConnection(clock, rate=1.0, burst=1)
        socket = attach(server)
        for line in [b"a", b"b", b"c", b"/quit"]:
            server.say(line)
        server.leave()
        clock.pump([1, 1, 1])
        self.assertEqual(socket.value(), b"a\nb\nc\n/quit\n")
        clock.advance(QUIT_TIMEOUT - 0.1)
        self.assertTrue(socket.connected)
        clock.advance(0.2)
        self.assertFalse(socket.connected)

    def test_queueFull(self) -> None:
        """
        Past the queue's limit a line is dropped and the user told once;
        lines are taken again once there is room.
        """
        clock = Clock()
        server = ServerConnection(clock, rate=1.0, burst=1, maxQueued=1)
        shown: list[str] = []
        server.showOn(shown.append)
        socket = attach(server)
        for line in [b"a", b"b", b"c", b"d"]:
            server.say(line)
        self.assertEqual(shown, ["! too many lines waiting to be sent; dropped"])
        clock.advance(1)
        server.say(b"e")
        clock.advance(1)
        self.assertEqual(socket.value(), b"a\nb\ne\n")

    def test_pipeInputPaused(self) -> None:
        """
        With the queue full, lines already read from a pipe wait in the
        reader instead of being dropped, and go once there is room.
        """
        clock = Clock()
        server = ServerConnection(clock, rate=1.0, burst=1, maxQueued=2)
        socket = attach(server)
        terminal = Terminal(server)
        attach(terminal)
        terminal.dataReceived(b"1\n2\n3\n4\n5\n")
        self.assertEqual(socket.value(), b"1\n")
        clock.pump([1, 1, 1, 1])
        self.assertEqual(socket.value(), b"1\n2\n3\n4\n5\n")


class EditingTerminalTests(SynchronousTestCase):
    """L{EditingTerminal} joins the line editor to the server connection."""

    def setUp(self) -> None:
        self.server, self.socket, self.clock = connectedServer()
        self.server.dataReceived(b"* welcome\r\n")
        self.editor = EditingTerminal(self.server)
        self.io = EditorStandardIO(lambda: self.editor)
        self.stdio = attach(self.io)

    def test_wiring(self) -> None:
        """
        Both sides pause each other, a full send queue pauses the terminal,
        and lines held from before are shown above the input line.
        """
        self.assertIs(self.stdio.producer, self.socket)
        self.assertIs(self.socket.producer, self.stdio)
        self.assertIn(b"\x1b[J* welcome\r", self.stdio.value())
        self.assertIs(self.server.pacer._producer, self.stdio)

    def test_typedLineSent(self) -> None:
        """Enter sends the line, UTF-8 encoded; /quit leaves."""
        self.io.dataReceived("h\u00e9\r/quit bye\rmore\r".encode())
        self.assertEqual(self.socket.value(), "h\u00e9\n/quit bye\n".encode())
        self.assertTrue(self.server.leaving)

    def test_endOfInput(self) -> None:
        """Ctrl-D on an empty line sends C{/quit} and leaves."""
        self.io.dataReceived(b"\x04")
        self.assertEqual(self.socket.value(), b"/quit\n")
        self.assertTrue(self.server.leaving)

    def test_terminalGone(self) -> None:
        """If the terminal goes away the client quits, and finishing is done."""
        self.stdio.loseConnection()
        self.assertEqual(self.socket.value(), b"/quit\n")
        self.successResultOf(self.io.finish())


class ChatTests(SynchronousTestCase):
    """L{chat} connects, wires up standard I/O and decides the exit status."""

    def start(
        self, arguments: list[str]
    ) -> tuple[Deferred[None], MemoryReactorClock, io.StringIO]:
        """Run L{chat} on a memory reactor, with a fake stdio and stderr."""
        options = Options()
        options.parseOptions(arguments)
        reactor = MemoryReactorClock()
        stderr = io.StringIO()
        return (
            ensureDeferred(
                chat(reactor, options, FakeStandardIO, stderr, lambda: False)
            ),
            reactor,
            stderr,
        )

    def connected(
        self, arguments: list[str]
    ) -> tuple[Deferred[None], StringTransportWithDisconnection, io.StringIO]:
        """Run L{chat} and complete its TCP connection on a fake transport."""
        finished, reactor, stderr = self.start(arguments)
        factory = reactor.tcpClients[0][2]
        protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 12345))
        transport = StringTransportWithDisconnection()
        transport.protocol = protocol
        protocol.makeConnection(transport)
        return finished, transport, stderr

    def test_connectionRefused(self) -> None:
        """A failed connection exits with status 1 and one line on stderr."""
        finished, reactor, stderr = self.start(["127.0.0.1:1"])
        self.assertEqual(reactor.tcpClients[0][:2], ("127.0.0.1", 1))
        factory = reactor.tcpClients[0][2]
        factory.clientConnectionFailed(reactor.connectors[0], Failure(RefusedError()))
        failure = self.failureResultOf(finished, SystemExit)
        self.assertEqual(failure.value.code, 1)
        message = stderr.getvalue()
        self.assertTrue(message.startswith("chat: cannot connect to 127.0.0.1:1: "))
        self.assertEqual(message.count("\n"), 1)

    def test_badEndpoint(self) -> None:
        """An endpoint description Twisted cannot parse exits with status 2."""
        finished, _, stderr = self.start(["nosuchtype:a:b"])
        self.assertEqual(self.failureResultOf(finished, SystemExit).value.code, 2)
        self.assertIn("chat: bad server 'nosuchtype:a:b'", stderr.getvalue())

    def test_nickSentOnConnect(self) -> None:
        """With --nick, C{/nick NAME} is the first line sent."""
        _, transport, _ = self.connected(["--nick", "alice", "localhost"])
        self.assertEqual(transport.value(), b"/nick alice\n")

    def test_serverCloses(self) -> None:
        """When the server closes the connection the client finishes cleanly."""
        finished, transport, stderr = self.connected(["localhost"])
        self.assertNoResult(finished)
        transport.loseConnection()
        self.assertIsNone(self.successResultOf(finished))
        self.assertEqual(stderr.getvalue(), "")

    def test_connectionLost(self) -> None:
        """A connection lost with an error exits with status 1, saying why."""
        finished, transport, stderr = self.connected(["localhost"])
        transport.connected = False
        transport.protocol.connectionLost(Failure(ConnectionLost("reset by peer")))
        self.assertEqual(self.failureResultOf(finished, SystemExit).value.code, 1)
        self.assertIn("chat: connection lost: ", stderr.getvalue())


def chatCommand(*arguments: str) -> list[str]:
    """The command line of the chat client in this interpreter."""
    return [sys.executable, "-m", "twisted_services.chat", *arguments]


class ClientProcess:
    """The real client in a subprocess, typed at through a pipe."""

    def __init__(self, *arguments: str) -> None:
        self.process = forkserver.Popen(
            chatCommand(*arguments),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        # Twisted's output drainer works for any process: it collects lines
        # in a thread and waits on them with deadlines.
        self.output = Twistd(self.process)

    def type(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text.encode())
        self.process.stdin.flush()

    def waitForLine(self, line: str) -> None:
        self.output.waitFor(lambda: line in self.output.output, PROCESS_TIMEOUT)

    def endInput(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()

    def wait(self) -> tuple[int, str]:
        """Wait for the exit; its status and what it wrote on stderr."""
        status = self.process.wait(PROCESS_TIMEOUT)
        self.output.kill()
        assert self.process.stderr is not None
        return status, self.process.stderr.read().decode()

    def kill(self) -> None:
        self.output.kill()
        for pipe in (self.process.stdin, self.process.stderr):
            if pipe is not None:
                pipe.close()


class RawClient:
    """A blocking socket that reads the chat's CRLF lines, with deadlines."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.socket = socket.create_connection(address, timeout=PROCESS_TIMEOUT)
        self.buffer = b""

    def send(self, line: str) -> None:
        self.socket.sendall(line.encode() + b"\n")

    def readLine(self) -> str:
        while b"\r\n" not in self.buffer:
            chunk = self.socket.recv(65536)
            if not chunk:
                raise AssertionError(f"EOF; unread: {self.buffer!r}")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line.decode()

    def waitForLine(self, wanted: str, limit: int = 100) -> list[str]:
        """Read lines until C{wanted}; return those before it."""
        seen: list[str] = []
        for _ in range(limit):
            line = self.readLine()
            if line == wanted:
                return seen
            seen.append(line)
        raise AssertionError(f"{wanted!r} not among {seen!r}")


class ClientProcessTests(SynchronousTestCase):
    """The client as a user runs it, against the real C{twistd -n chat}."""

    def startServer(self) -> None:
        """Start the server (the tests without one start no twistd)."""
        self.twistd = startTwistd(
            self, "chat", ["--port", "0", "--interface", "127.0.0.1"]
        )
        self.address = self.twistd.listener().loopbackAddress

    def rawClient(self, nick: str) -> RawClient:
        client = RawClient(self.address)
        self.addCleanup(client.socket.close)
        client.readLine()  # the welcome
        client.send(f"/nick {nick}")
        client.waitForLine(f"*** you are now known as {nick}")
        return client

    def client(self, *arguments: str) -> ClientProcess:
        client = ClientProcess(*arguments)
        self.addCleanup(client.kill)
        return client

    def test_conversation(self) -> None:
        """
        Typed lines reach the room, the room's lines are printed while the
        client is still reading input, and EOF quits with status 0.
        """
        self.startServer()
        bob = self.rawClient("bob")
        host, port = self.address
        alice = self.client("--nick", "alice", f"{host}:{port}")
        alice.waitForLine("*** you are now known as alice")
        bob.waitForLine("*** guest2 is now known as alice")
        alice.type("hello bob\n")
        bob.waitForLine("<alice> hello bob")
        bob.send("hi \x1b[31malice")
        alice.waitForLine("<bob> hi alice")
        alice.type("/who\n")
        alice.waitForLine("*** in lobby: alice, bob")
        alice.endInput()
        bob.waitForLine("*** alice has left (quit)")
        status, stderr = alice.wait()
        self.assertEqual((status, stderr), (0, ""))
        self.assertEqual(
            alice.output.output,
            [
                "*** welcome, you are guest2 in lobby; type /help for commands",
                "*** you are now known as alice",
                "<bob> hi alice",
                "*** in lobby: alice, bob",
                "*** bye",
            ],
        )

    def test_typedQuit(self) -> None:
        """C{/quit REASON} typed leaves with that reason and status 0."""
        self.startServer()
        bob = self.rawClient("bob")
        alice = self.client("--nick", "alice", "tcp:{}:{}".format(*self.address))
        alice.waitForLine("*** you are now known as alice")
        alice.type("/quit time for tea\n")
        bob.waitForLine("*** alice has left (time for tea)")
        alice.waitForLine("*** bye")
        self.assertEqual(alice.wait(), (0, ""))

    def test_serverShutsDown(self) -> None:
        """When the server stops, the client prints its last line and exits 0."""
        self.startServer()
        alice = self.client(f"127.0.0.1:{self.address[1]}")
        alice.waitForLine(
            "*** welcome, you are guest1 in lobby; type /help for commands"
        )
        self.twistd.stop()
        alice.waitForLine("*** server shutting down")
        self.assertEqual(alice.wait(), (0, ""))

    def test_connectionRefused(self) -> None:
        """Nothing listening: one line on stderr and status 1."""
        with socket.socket() as unused:
            unused.bind(("127.0.0.1", 0))
            port = unused.getsockname()[1]
        # Nothing listens on the port once the socket is closed.
        alice = self.client(f"127.0.0.1:{port}")
        status, stderr = alice.wait()
        self.assertEqual(status, 1)
        self.assertRegex(stderr, rf"^chat: cannot connect to 127.0.0.1:{port}: .+\n$")

    def test_usageError(self) -> None:
        """A missing SERVER argument exits with status 2 and the usage line."""
        result = forkserver.run(
            chatCommand(), capture_output=True, text=True, timeout=PROCESS_TIMEOUT
        )
        self.assertEqual(result.returncode, 2)
        self.assertIn("Usage: python -m twisted_services.chat", result.stderr)


class ClientOverUNIXSocketTests(SynchronousTestCase):
    """Any client endpoint description works, a UNIX socket for one."""

    def test_unixSocket(self) -> None:
        """C{unix:PATH} reaches a server listening there."""
        directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, directory, True)
        path = os.path.join(directory, "chat.sock")
        startTwistd(self, "chat", ["--listen", f"unix:{path}"])
        client = ClientProcess(f"unix:{path}")
        self.addCleanup(client.kill)
        client.type("/rooms\n")
        client.endInput()
        self.assertEqual(client.wait(), (0, ""))
        self.assertEqual(
            client.output.output,
            [
                "*** welcome, you are guest1 in lobby; type /help for commands",
                "*** rooms: lobby (1)",
                "*** bye",
            ],
        )


class TerminalClientTests(SynchronousTestCase):
    """
    The client on a pseudo-terminal, typed at as a person types, against
    the real C{twistd -n chat}; the screen is read through a terminal
    emulator.
    """

    def start(self, serverArguments: list[str], *arguments: str) -> PseudoTerminal:
        """Start the server and, on a pseudo-terminal, alice's client."""
        twistd = startTwistd(
            self,
            "chat",
            ["--port", "0", "--interface", "127.0.0.1", *serverArguments],
        )
        self.address = twistd.listener().loopbackAddress
        self.bob = RawClient(self.address)
        self.addCleanup(self.bob.socket.close)
        self.bob.readLine()  # the welcome
        host, port = self.address
        alice = PseudoTerminal(
            chatCommand("--nick", "alice", *arguments, f"{host}:{port}")
        )
        self.addCleanup(alice.close)
        # The server's first line shows once standard I/O is set up (and the
        # terminal in raw mode, when the client edits): typing may begin.
        alice.waitFor(lambda: any(alice.rows()))
        return alice

    def bobReads(self, count: int) -> list[str]:
        """The next C{count} lines alice says that bob receives (and no other)."""
        said: list[str] = []
        for _ in range(count + 10):
            line = self.bob.readLine()
            if line.startswith("<alice> "):
                said.append(line)
                if len(said) == count:
                    break
        return said

    def test_incomingLineAboveTyping(self) -> None:
        """
        A line from the room arrives while alice is half-way through typing:
        it is printed whole on its own row above her input, which stays as
        typed, cursor at its end; the line she finishes is sent whole.
        """
        alice = self.start([])
        alice.type(b"partial li")
        alice.waitFor(lambda: alice.lastRow().endswith("partial li"))
        self.bob.send("message while alice is typing")
        alice.waitFor(
            lambda: any("message while alice is typing" in r for r in alice.rows())
        )
        rows = [row for row in alice.rows() if row]
        self.assertRegex(rows[-2], r"^<guest\d+> message while alice is typing$")
        self.assertEqual(rows[-1], "> partial li")
        self.assertEqual(
            alice.cursor(), (len("> partial li"), alice.rows().index("> partial li"))
        )
        alice.type(b"ne\r")
        self.bob.waitForLine("<alice> partial line")

    def test_history(self) -> None:
        """Up brings back the line sent before, to edit and send again."""
        alice = self.start([])
        alice.type(b"first words\r")
        self.bob.waitForLine("<alice> first words")
        alice.type(b"\x1b[A")
        alice.waitFor(lambda: alice.lastRow() == "> first words")
        alice.type(b"\x7f\x7f\x7f\x7f\x7fagain\r")
        self.bob.waitForLine("<alice> first again")

    def test_pastePaced(self) -> None:
        """
        A paste of 40 lines, twice the server's burst, reaches the room
        whole and in order, with no error on alice's screen: the client
        paces what it sends under the server's limits. Both run ten times
        their default pace, kept in the same ratio, so that the paste takes
        about a second rather than eight (that the defaults themselves keep
        the client under the server is L{PacingTests.test_defaultsUnderServer}).
        """
        alice = self.start(
            ["--rate", "50", "--burst", "20"], "--rate", "40", "--burst", "10"
        )
        lines = [f"pasted line {n}" for n in range(40)]
        alice.type(b"".join(line.encode() + b"\r" for line in lines))
        self.assertEqual(self.bobReads(40), [f"<alice> {line}" for line in lines])
        alice.waitFor(lambda: "> pasted line 39" in alice.rows())
        self.assertEqual([row for row in alice.rows() if row.startswith("!")], [])

    def test_endOfInput(self) -> None:
        """
        Ctrl-D on an empty line quits with status 0 and gives the terminal
        its settings back.
        """
        alice = self.start([])
        alice.type(b"\x04")
        self.bob.waitForLine("*** alice has left (quit)")
        status, stderr = alice.wait()
        self.assertEqual((status, stderr), (0, ""))
        localModes = alice.modes()[3]
        self.assertTrue(localModes & termios.ECHO)
        self.assertTrue(localModes & termios.ICANON)
