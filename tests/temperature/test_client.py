"""
Tests for L{twisted_services.temperature.client}: the command line and
address pieces as pure functions, L{TemperatureRequest} on a fake UDP port
with a L{Clock}, the standard input reader on a fake transport, and the
converting loop on a fake reactor. The real program against the real service
is tested in C{test_temperature_integration}.
"""

from __future__ import annotations

import io
import socket
import sys
from collections.abc import Sequence
from typing import Any

from twisted.internet.defer import Deferred, ensureDeferred, fail, succeed
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport, StringTransportWithDisconnection
from twisted.python.failure import Failure
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from tests.clients.test_runner import assertPrintsVersion
from twisted_services.temperature.client import (
    DEFAULT_PORT,
    DEFAULT_TIMEOUT,
    ERROR_REPLY,
    NO_REPLY,
    OK,
    NoReply,
    OneValue,
    Options,
    Server,
    StandardInputValues,
    TemperatureRequest,
    ValueTooLong,
    _run,
    convert,
    describeServer,
    main,
    normalHost,
    pickAddress,
    resolveServer,
)
from twisted_services.temperature.conversion import MAX_REQUEST
from twisted_services.testing import FakeDatagramTransport, attachDatagram

SERVER = ("127.0.0.1", 1314)
ELSEWHERE = ("127.0.2.7", 1314)


def request(
    value: bytes = b"100", timeout: float = 2.0, server: tuple[str, int] = SERVER
) -> tuple[TemperatureRequest, FakeDatagramTransport, Clock]:
    """A started L{TemperatureRequest} on a fake UDP port, with its clock."""
    clock = Clock()
    protocol = TemperatureRequest(clock, server, value, timeout)
    host = "::" if ":" in server[0] else "0.0.0.0"
    transport = attachDatagram(protocol, FakeDatagramTransport(host, 50000))
    return protocol, transport, clock


def info(family: int, host: str, port: int = DEFAULT_PORT) -> Any:
    """One C{getaddrinfo} result."""
    sockaddr = (host, port, 0, 0) if family == socket.AF_INET6 else (host, port)
    return (family, socket.SOCK_DGRAM, socket.IPPROTO_UDP, "", sockaddr)


class FakeUDPPort:
    """What L{FakeUDPReactor.listenUDP} returns: stopping it stops the protocol."""

    def __init__(self, protocol: Any, transport: FakeDatagramTransport) -> None:
        self.protocol = protocol
        self.transport = transport

    def stopListening(self) -> None:
        self.transport.stopListening()
        self.protocol.doStop()


class FakeUDPReactor(Clock):
    """A L{Clock} whose C{listenUDP} starts the protocol on a fake port."""

    def __init__(self) -> None:
        super().__init__()
        self.ports: list[FakeUDPPort] = []
        self.interfaces: list[str] = []

    def listenUDP(
        self, port: int, protocol: Any, interface: str = "", maxPacketSize: int = 8192
    ) -> FakeUDPPort:
        self.interfaces.append(interface)
        transport = FakeDatagramTransport(
            interface or "0.0.0.0", 50000 + len(self.ports)
        )
        fake = FakeUDPPort(protocol, transport)
        self.ports.append(fake)
        protocol.makeConnection(transport)
        return fake

    @property
    def latest(self) -> TemperatureRequest:
        """The request on the port opened last."""
        protocol: TemperatureRequest = self.ports[-1].protocol
        return protocol


class ListValues:
    """Values from a list; replies collected in L{shown}."""

    def __init__(self, values: Sequence[bytes | Exception]) -> None:
        self._values = list(values)
        self.shown: list[str] = []
        self.finished = False

    def nextValue(self) -> Deferred[bytes | None]:
        if not self._values:
            return succeed(None)
        value = self._values.pop(0)
        if isinstance(value, Exception):
            return fail(value)
        return succeed(value)

    def show(self, text: str) -> None:
        self.shown.append(text)

    def finish(self) -> Deferred[None]:
        self.finished = True
        return succeed(None)


def options(*arguments: str) -> Options:
    """Parsed client options."""
    parsed = Options()
    parsed.parseOptions(list(arguments))
    return parsed


def parseServer(argument: str) -> tuple[str, int]:
    """The host and port the client's L{Options} make of C{--server}."""
    parsed = options("100", f"--server={argument}")
    return parsed["host"], parsed["port"]


class Conversion:
    """L{convert} running on a L{FakeUDPReactor}, for values from a list."""

    def __init__(
        self,
        values: Sequence[bytes | Exception],
        server: str = "127.0.0.1:1314",
        timeout: float = 2.0,
        resolved: Sequence[Any] = (),
    ) -> None:
        self.reactor = FakeUDPReactor()
        self.values = ListValues(values)
        self.stderr = io.StringIO()
        self.resolved: list[tuple[str, int]] = []

        def resolve(host: str, port: int) -> Deferred[Sequence[Any]]:
            self.resolved.append((host, port))
            return succeed(resolved)

        parsed = options("x", "--server", server, "--timeout", str(timeout))
        self.status = ensureDeferred(
            convert(self.reactor, parsed, self.values, self.stderr, resolve)
        )

    def reply(self, data: bytes, source: tuple[str, int] = SERVER) -> None:
        """The server (or C{source}) answers the request in flight."""
        self.reactor.latest.datagramReceived(data, source)


class ParseServerTests(SynchronousTestCase):
    """L{Options} reads C{--server}, on the service's port by default."""

    def test_hostAndPort(self) -> None:
        """HOST:PORT is that host and port."""
        self.assertEqual(parseServer("example.org:4000"), ("example.org", 4000))
        self.assertEqual(parseServer("127.0.0.1:1314"), ("127.0.0.1", 1314))

    def test_hostAlone(self) -> None:
        """A host without a port means the service's default port."""
        self.assertEqual(parseServer("localhost"), ("localhost", DEFAULT_PORT))

    def test_bracketedIPv6(self) -> None:
        """[IPV6]:PORT is that address and port; [IPV6] alone the default port."""
        self.assertEqual(parseServer("[::1]:1314"), ("::1", 1314))
        self.assertEqual(parseServer("[2001:db8::5]:9"), ("2001:db8::5", 9))
        self.assertEqual(parseServer("[::1]"), ("::1", DEFAULT_PORT))

    def test_bareIPv6(self) -> None:
        """An IPv6 address without brackets is a host on the default port."""
        self.assertEqual(parseServer("::1"), ("::1", DEFAULT_PORT))

    def test_bad(self) -> None:
        """Bad ports, empty hosts and malformed brackets are usage errors."""
        for argument in [
            "",
            " ",
            ":1314",
            "host:0",
            "host:65536",
            "host:x",
            "host:",
            "[::1]:",
            "[::1]x",
            "[::1",
            "[nothost]:1",
            "2001:db8::5:z",
        ]:
            self.assertRaises(UsageError, parseServer, argument)

    def test_describe(self) -> None:
        """L{describeServer} brackets IPv6 hosts, as C{--server} is written."""
        self.assertEqual(describeServer("localhost", 1314), "localhost:1314")
        self.assertEqual(describeServer("::1", 1314), "[::1]:1314")


class AddressTests(SynchronousTestCase):
    """Address normalisation and the choice among resolved addresses."""

    def test_normalHost(self) -> None:
        """Every spelling of an IP address becomes one; names stay as they are."""
        self.assertEqual(normalHost("0:0:0::1"), "::1")
        self.assertEqual(normalHost("2001:DB8::1"), "2001:db8::1")
        self.assertEqual(normalHost("127.0.0.1"), "127.0.0.1")
        self.assertEqual(normalHost("localhost"), "localhost")

    def test_prefersIPv4(self) -> None:
        """With both families resolved, the first IPv4 address is used."""
        infos = [
            info(socket.AF_INET6, "::1"),
            info(socket.AF_INET, "127.0.0.1"),
            info(socket.AF_INET, "127.0.0.2"),
        ]
        self.assertEqual(pickAddress(infos), (socket.AF_INET, "127.0.0.1"))

    def test_IPv6Only(self) -> None:
        """A name with only IPv6 addresses uses the first of them."""
        infos = [info(socket.AF_INET6, "0::1"), info(socket.AF_INET6, "::2")]
        self.assertEqual(pickAddress(infos), (socket.AF_INET6, "::1"))

    def test_nothing(self) -> None:
        """No usable address is a L{LookupError}."""
        self.assertRaises(LookupError, pickAddress, [])

    def test_literalsNeedNoResolver(self) -> None:
        """IP addresses are used as they are, without resolving."""

        def resolve(host: str, port: int) -> Deferred[Sequence[Any]]:
            raise AssertionError("resolved")

        server = self.successResultOf(
            ensureDeferred(resolveServer("127.0.0.1", 1314, resolve))
        )
        self.assertEqual(server, Server("127.0.0.1", 1314, socket.AF_INET, "127.0.0.1"))
        self.assertEqual(server.interface, "")
        server = self.successResultOf(
            ensureDeferred(resolveServer("0::1", 1314, resolve))
        )
        self.assertEqual(server, Server("0::1", 1314, socket.AF_INET6, "::1"))
        self.assertEqual(server.interface, "::")
        self.assertEqual(server.describe(), "[0::1]:1314")

    def test_namesAreResolved(self) -> None:
        """A name is resolved, and the server keeps the name for messages."""
        asked: list[tuple[str, int]] = []

        def resolve(host: str, port: int) -> Deferred[Sequence[Any]]:
            asked.append((host, port))
            return succeed([info(socket.AF_INET6, "::1")])

        server = self.successResultOf(
            ensureDeferred(resolveServer("localhost", 1314, resolve))
        )
        self.assertEqual(asked, [("localhost", 1314)])
        self.assertEqual(server.address, "::1")
        self.assertEqual(server.family, socket.AF_INET6)
        self.assertEqual(server.describe(), "localhost:1314")


class OptionsTests(SynchronousTestCase):
    """The client's command line."""

    def test_defaults(self) -> None:
        """The server is localhost:1314 and the timeout 2 seconds by default."""
        parsed = options("100")
        self.assertEqual(parsed["value"], "100")
        self.assertEqual((parsed["host"], parsed["port"]), ("localhost", 1314))
        self.assertEqual(parsed["timeout"], DEFAULT_TIMEOUT)

    def test_optionsAfterValue(self) -> None:
        """Options may come before or after VALUE, in any spelling."""
        for arguments in [
            ["100", "--server", "h:1", "--timeout", "0.5"],
            ["--server=h:1", "100", "-t0.5"],
            ["-s", "h:1", "-t", "0.5", "100"],
            ["--serv", "h:1", "--time=0.5", "--", "100"],
        ]:
            parsed = options(*arguments)
            self.assertEqual(
                (parsed["value"], parsed["host"], parsed["port"], parsed["timeout"]),
                ("100", "h", 1, 0.5),
                arguments,
            )

    def test_negativeValues(self) -> None:
        """A value starting with C{-} and a digit or a point is not an option."""
        for value in ["-40", "-40c", "-40 C", "-.5", "-1e2", "-"]:
            self.assertEqual(options(value, "--timeout", "1")["value"], value)
            self.assertEqual(options("-t", "1", value)["value"], value)

    def test_doubleDash(self) -> None:
        """After C{--} anything is VALUE."""
        self.assertEqual(options("--", "-inf")["value"], "-inf")

    def test_badTimeout(self) -> None:
        """The timeout must be a finite number of seconds over zero."""
        for timeout in ["0", "-1", "nan", "inf", "soon"]:
            self.assertRaises(UsageError, options, "100", f"--timeout={timeout}")

    def test_oneValue(self) -> None:
        """Exactly one VALUE is needed."""
        self.assertRaises(UsageError, options)
        self.assertRaises(UsageError, options, "1", "2")

    def test_version(self) -> None:
        """
        C{--version}, before or after VALUE, prints this project's version,
        not Twisted's, and exits 0.
        """
        assertPrintsVersion(self, Options(), "--version")
        assertPrintsVersion(self, Options(), "100", "--version")

    def test_badServer(self) -> None:
        """A bad C{--server} is a usage error."""
        self.assertRaises(UsageError, options, "100", "--server", "h:x")

    def test_mainUsageError(self) -> None:
        """A usage error is said on standard error with the synopsis; status 2."""
        stderr = io.StringIO()
        self.patch(sys, "stderr", stderr)
        with self.assertRaises(SystemExit) as raised:
            main(["100", "--server", "host:0"])
        self.assertEqual(raised.exception.code, 2)
        self.assertIn("bad port in 'host:0'", stderr.getvalue())
        self.assertIn(
            "Usage: python -m twisted_services.temperature", stderr.getvalue()
        )


class TemperatureRequestTests(SynchronousTestCase):
    """L{TemperatureRequest}: one request, its retry and its reply."""

    def test_sendsToServer(self) -> None:
        """Starting sends the value, as it is, to the server's address."""
        _, transport, _ = request(b" 98.6F ")
        self.assertEqual(transport.written, [(b" 98.6F ", SERVER)])

    def test_reply(self) -> None:
        """A datagram from the server is the reply; no timer is left behind."""
        protocol, transport, clock = request()
        protocol.datagramReceived(b"212 F\n", SERVER)
        self.assertEqual(self.successResultOf(protocol.reply), b"212 F\n")
        self.assertEqual(clock.getDelayedCalls(), [])
        self.assertEqual(len(transport.written), 1)

    def test_errorReply(self) -> None:
        """An error reply is a reply like any other (the caller judges it)."""
        protocol, _, _ = request(b"abc")
        protocol.datagramReceived(b"ERROR not a number\n", SERVER)
        self.assertEqual(self.successResultOf(protocol.reply), b"ERROR not a number\n")

    def test_retryThenNoReply(self) -> None:
        """
        Unanswered, the request is sent once more halfway through the
        timeout, and when the whole timeout passes the result is L{NoReply}.
        """
        protocol, transport, clock = request(timeout=2.0)
        clock.advance(0.999)
        self.assertEqual(len(transport.written), 1)
        self.assertNoResult(protocol.reply)
        clock.advance(0.001)
        self.assertEqual(transport.written, [(b"100", SERVER)] * 2)
        clock.advance(0.999)
        self.assertNoResult(protocol.reply)
        clock.advance(0.001)
        self.failureResultOf(protocol.reply, NoReply)
        self.assertEqual(clock.getDelayedCalls(), [])
        self.assertEqual(len(transport.written), 2)

    def test_replyToRetry(self) -> None:
        """A reply after the retry still counts."""
        protocol, transport, clock = request()
        clock.advance(1.5)
        protocol.datagramReceived(b"212 F\n", SERVER)
        self.assertEqual(self.successResultOf(protocol.reply), b"212 F\n")
        self.assertEqual(clock.getDelayedCalls(), [])
        self.assertEqual(len(transport.written), 2)

    def test_otherSourcesIgnored(self) -> None:
        """
        Datagrams from any other host, or from another port of the server's
        host, are ignored; the server's reply is still taken afterwards.
        """
        protocol, _, _ = request()
        protocol.datagramReceived(b"-40 F\n", ELSEWHERE)
        protocol.datagramReceived(b"-40 F\n", ("127.0.0.1", 1315))
        protocol.datagramReceived(b"-40 F\n", ("::ffff:127.0.0.1", 1314))
        self.assertNoResult(protocol.reply)
        self.assertEqual(protocol.ignored, 3)
        protocol.datagramReceived(b"212 F\n", SERVER)
        self.assertEqual(self.successResultOf(protocol.reply), b"212 F\n")

    def test_IPv6SpellingsMatch(self) -> None:
        """A reply from the server's IPv6 address counts, however it is spelled."""
        protocol, transport, _ = request(server=("0:0::1", 1314))
        self.assertEqual(transport.written, [(b"100", ("::1", 1314))])
        protocol.datagramReceived(b"212 F\n", ("::1", 1314))
        self.assertEqual(self.successResultOf(protocol.reply), b"212 F\n")

    def test_duplicateReplyIgnored(self) -> None:
        """A second reply (to the retry) changes nothing."""
        protocol, _, clock = request()
        clock.advance(1.5)
        protocol.datagramReceived(b"212 F\n", SERVER)
        protocol.datagramReceived(b"0 F\n", SERVER)
        self.assertEqual(self.successResultOf(protocol.reply), b"212 F\n")

    def test_sendFails(self) -> None:
        """An error sending (no route, say) ends the request at once."""

        class Unreachable(FakeDatagramTransport):
            def write(self, data: bytes, addr: tuple[str, int]) -> None:
                raise OSError(101, "Network is unreachable")

        clock = Clock()
        protocol = TemperatureRequest(clock, SERVER, b"100")
        attachDatagram(protocol, Unreachable())
        self.assertEqual(self.failureResultOf(protocol.reply, OSError).value.errno, 101)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_stoppedBeforeReply(self) -> None:
        """A port stopped before the reply came ends the request with L{NoReply}."""
        protocol, _, clock = request()
        protocol.doStop()
        self.failureResultOf(protocol.reply, NoReply)
        self.assertEqual(clock.getDelayedCalls(), [])


class ConvertTests(SynchronousTestCase):
    """L{convert}: values in, replies printed, the exit status out."""

    def test_replyPrinted(self) -> None:
        """A reply is shown without its LF; the status is 0."""
        run = Conversion([b"100"])
        run.reply(b"212 F\n")
        self.assertEqual(self.successResultOf(run.status), OK)
        self.assertEqual(run.values.shown, ["212 F"])
        self.assertEqual(run.stderr.getvalue(), "")
        self.assertTrue(run.values.finished)

    def test_errorReply(self) -> None:
        """An C{ERROR} reply goes to standard error; the status is 1."""
        run = Conversion([b"abc"])
        run.reply(b"ERROR not a number\n")
        self.assertEqual(self.successResultOf(run.status), ERROR_REPLY)
        self.assertEqual(run.values.shown, [])
        self.assertEqual(run.stderr.getvalue(), "ERROR not a number\n")

    def test_noReply(self) -> None:
        """
        Unanswered after one retry and the whole timeout, the value gets
        C{no reply from HOST:PORT} and the status is 2.
        """
        run = Conversion([b"100"], timeout=0.5)
        request = run.reactor.latest
        run.reactor.advance(0.25)
        self.assertEqual(request.sent, 2)
        self.assertNoResult(run.status)
        run.reactor.advance(0.25)
        self.assertEqual(self.successResultOf(run.status), NO_REPLY)
        self.assertEqual(run.stderr.getvalue(), "no reply from 127.0.0.1:1314\n")
        self.assertEqual(run.reactor.getDelayedCalls(), [])

    def test_replyFromElsewhereIgnored(self) -> None:
        """A datagram from another address is not taken for the reply."""
        run = Conversion([b"100"])
        run.reply(b"-40 F\n", ELSEWHERE)
        self.assertNoResult(run.status)
        run.reply(b"212 F\n")
        self.assertEqual(self.successResultOf(run.status), OK)
        self.assertEqual(run.values.shown, ["212 F"])

    def test_portPerRequest(self) -> None:
        """
        Each value goes out from a port of its own, closed once answered, so
        a late duplicate reply cannot answer the next value.
        """
        run = Conversion([b"100", b"0"])
        first = run.reactor.ports[0]
        run.reply(b"212 F\n")
        self.assertTrue(first.transport.stopped)
        self.assertEqual(len(run.reactor.ports), 2)
        run.reply(b"32 F\n")
        self.assertEqual(self.successResultOf(run.status), OK)
        self.assertEqual(run.values.shown, ["212 F", "32 F"])
        self.assertTrue(all(port.transport.stopped for port in run.reactor.ports))

    def test_worstStatus(self) -> None:
        """With several values, every one is tried and the worst status wins."""
        run = Conversion([b"abc", b"100", b"5"], timeout=1)
        run.reply(b"ERROR not a number\n")
        run.reactor.advance(0.5)
        run.reactor.advance(0.5)
        run.reply(b"41 F\n")
        self.assertEqual(self.successResultOf(run.status), NO_REPLY)
        self.assertEqual(run.values.shown, ["41 F"])
        self.assertEqual(
            run.stderr.getvalue(),
            "ERROR not a number\nno reply from 127.0.0.1:1314\n",
        )

    def test_tooLong(self) -> None:
        """A value the service would drop is not sent; the status is 1."""
        run = Conversion([b"1" * (MAX_REQUEST + 1), ValueTooLong(), b"1" * MAX_REQUEST])
        self.assertEqual(len(run.reactor.ports), 1)
        run.reply(b"ERROR out of range\n")
        self.assertEqual(self.successResultOf(run.status), ERROR_REPLY)
        self.assertEqual(
            run.stderr.getvalue().count("value too long (over 512 bytes)"), 2
        )

    def test_controlsRemoved(self) -> None:
        """Escape sequences in a reply never reach the terminal."""
        run = Conversion([b"100"])
        run.reply(b"\x1b[2J212 F\x07\r\n")
        self.successResultOf(run.status)
        self.assertEqual(run.values.shown, ["212 F"])

    def test_resolvedOnce(self) -> None:
        """A name is resolved once and its address used for every value."""
        run = Conversion(
            [b"1", b"2"],
            server="localhost:1314",
            resolved=[info(socket.AF_INET6, "::1")],
        )
        self.assertEqual(run.reactor.interfaces, ["::"])
        self.assertEqual(
            run.reactor.ports[0].transport.written, [(b"1", ("::1", 1314))]
        )
        run.reply(b"33.8 F\n", ("::1", 1314))
        run.reply(b"35.6 F\n", ("::1", 1314))
        self.assertEqual(self.successResultOf(run.status), OK)
        self.assertEqual(run.resolved, [("localhost", 1314)])

    def test_unresolvable(self) -> None:
        """A name that does not resolve is said so; the status is 2."""
        run = Conversion([b"1"], server="nowhere.invalid:1314")
        self.assertEqual(self.successResultOf(run.status), NO_REPLY)
        self.assertEqual(
            run.stderr.getvalue(),
            "temperature: cannot resolve nowhere.invalid: no IPv4 or IPv6 address\n",
        )
        self.assertEqual(run.reactor.ports, [])
        self.assertTrue(run.values.finished)


class OneValueTests(SynchronousTestCase):
    """L{OneValue}: the VALUE from the command line."""

    def test_oneThenNone(self) -> None:
        """The value comes once, then the end; replies go to the output."""
        output = io.StringIO()
        values = OneValue(b"100", output)
        self.assertEqual(self.successResultOf(values.nextValue()), b"100")
        self.assertIsNone(self.successResultOf(values.nextValue()))
        values.show("212 F")
        self.assertEqual(output.getvalue(), "212 F\n")
        self.successResultOf(values.finish())


class StandardInputValuesTests(SynchronousTestCase):
    """L{StandardInputValues}: values from standard input, one per line."""

    def setUp(self) -> None:
        self.values = StandardInputValues()
        self.transport = StringTransport()
        self.values.makeConnection(self.transport)

    def next(self) -> bytes | None:
        result: bytes | None = self.successResultOf(self.values.nextValue())
        return result

    def test_pausedUntilWanted(self) -> None:
        """Input is read only while a value is wanted."""
        self.assertEqual(self.transport.producerState, "paused")
        wanted = self.values.nextValue()
        self.assertEqual(self.transport.producerState, "producing")
        self.values.dataReceived(b"100\n")
        self.assertEqual(self.successResultOf(wanted), b"100")
        self.assertEqual(self.transport.producerState, "paused")

    def test_oneLineAtATime(self) -> None:
        """Lines that arrive together are handed over one per request."""
        self.values.dataReceived(b"100\r\n37.5\n\n98.6F\n")
        self.assertEqual(
            [self.next() for _ in range(4)], [b"100", b"37.5", b"", b"98.6F"]
        )
        self.assertNoResult(self.values.nextValue())

    def test_endOfInput(self) -> None:
        """An unterminated last line counts; then the end is L{None}."""
        self.values.dataReceived(b"1\n2")
        self.values.readConnectionLost()
        self.assertEqual([self.next(), self.next(), self.next()], [b"1", b"2", None])

    def test_endWhileWaiting(self) -> None:
        """The end of input while a value is wanted ends the values."""
        wanted = self.values.nextValue()
        self.values.readConnectionLost()
        self.assertIsNone(self.successResultOf(wanted))

    def test_longLine(self) -> None:
        """
        A line too long to send is reported as L{ValueTooLong}, once, and
        the next line still comes.
        """
        self.values.dataReceived(b"1" * 300)
        wanted = self.values.nextValue()
        self.values.dataReceived(b"1" * 300)
        self.failureResultOf(wanted, ValueTooLong)
        wanted = self.values.nextValue()
        self.values.dataReceived(b"1" * 1000)
        self.assertNoResult(wanted)
        self.values.dataReceived(b"1\n5\n")
        self.assertEqual(self.successResultOf(wanted), b"5")

    def test_longestLine(self) -> None:
        """A line of the longest size sent, with CRLF, is a value."""
        line = b"1" * MAX_REQUEST
        self.values.dataReceived(line + b"\r\n")
        self.assertEqual(self.next(), line)

    def test_show(self) -> None:
        """Replies are written one per line."""
        self.values.show("212 F")
        self.assertEqual(self.transport.value(), b"212 F\n")

    def test_outputGone(self) -> None:
        """When nobody reads the replies any more, the values end."""
        wanted = self.values.nextValue()
        self.values.writeConnectionLost()
        self.assertIsNone(self.successResultOf(wanted))
        self.values.dataReceived(b"100\n")
        self.assertIsNone(self.next())
        self.successResultOf(self.values.finish())

    def test_finish(self) -> None:
        """Finishing closes standard I/O and fires once it is closed."""
        finished = self.values.finish()
        self.assertTrue(self.transport.disconnecting)
        self.assertNoResult(finished)
        self.values.connectionLost(Failure(Exception("closed")))
        self.successResultOf(finished)


class RunTests(SynchronousTestCase):
    """The program's body, on a fake reactor and fake standard I/O."""

    def test_standardInput(self) -> None:
        """VALUE C{-} reads values from standard input and prints there."""
        attached: list[StringTransportWithDisconnection] = []

        def standardIO(protocol: Any, reactor: object = None) -> None:
            transport = StringTransportWithDisconnection()
            transport.protocol = protocol
            protocol.makeConnection(transport)
            attached.append(transport)

        reactor = FakeUDPReactor()
        done = ensureDeferred(
            _run(reactor, options("-", "--server", "127.0.0.1:1314"), standardIO)
        )
        (stdio,) = attached
        stdio.protocol.dataReceived(b"100\n")
        reactor.latest.datagramReceived(b"212 F\n", SERVER)
        stdio.protocol.readConnectionLost()
        self.assertEqual(stdio.value(), b"212 F\n")
        self.assertFalse(stdio.connected)
        self.successResultOf(done)
