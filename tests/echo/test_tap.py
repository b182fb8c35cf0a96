"""
Tests for L{twisted_services.echo.tap}: C{twistd echo}'s options and the
service it builds, on a L{twisted_services.testing.UDPMemoryReactor}.
"""

from __future__ import annotations

from twisted.logger import capturedLogs, formatEvent
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from tests.support.listeners import DEFAULT_INTERFACE, defaultListen
from tests.support.tap import Tap
from twisted_services.echo import tap
from twisted_services.echo.protocol import DatagramEcho, EchoFactory
from twisted_services.echo.tap import Options, makeService
from twisted_services.testing import UDPMemoryReactor

LONG_OPTIONS = [
    "port",
    "interface",
    "listen",
    "idle-timeout",
    "max-connections",
    "udp-port",
    "udp-rate",
    "udp-burst",
]


ECHO = Tap(tap)
parse = ECHO.parse
started = ECHO.started


class OptionsTests(SynchronousTestCase):
    """L{Options} parses and validates C{twistd echo}'s command line."""

    def test_defaults(self) -> None:
        """With no arguments echo listens on TCP 8888, UDP off, documented limits."""
        options = parse()
        self.assertEqual(options["listen"], defaultListen(8888))
        self.assertEqual(options["idle-timeout"], 300)
        self.assertEqual(options["max-connections"], 10000)
        self.assertIsNone(options["udp-port"])
        self.assertEqual(options["udp-rate"], 20)
        self.assertEqual(options["udp-burst"], 40)

    def test_port(self) -> None:
        """C{--port} picks the TCP port on all interfaces."""
        self.assertEqual(parse("--port", "7")["listen"], defaultListen(7))

    def test_numbers(self) -> None:
        """The numeric options are parsed to numbers."""
        options = parse(
            "--idle-timeout=0.5",
            "--max-connections=3",
            "--udp-port=0",
            "--udp-rate=1.5",
            "--udp-burst=2",
        )
        self.assertEqual(
            [options[name] for name in LONG_OPTIONS[3:]], [0.5, 3, 0, 1.5, 2]
        )

    def test_badValues(self) -> None:
        """Out-of-range or malformed numbers are usage errors."""
        for arguments in [
            ["--port", "65536"],
            ["--port", "echo"],
            ["--idle-timeout", "-1"],
            ["--idle-timeout", "nan"],
            ["--max-connections", "0"],
            ["--max-connections", "-5"],
            ["--udp-port", "-1"],
            ["--udp-rate", "0"],
            ["--udp-burst", "0"],
        ]:
            self.assertRaises(UsageError, parse, *arguments)

    def test_interfaceWithOnlyListen(self) -> None:
        """C{--interface} with C{--listen} but no C{--port} is a usage error."""
        error = self.assertRaises(
            UsageError, parse, "--listen", "tcp:1", "--interface", "::1"
        )
        self.assertIn("--interface", str(error))

    def test_unknownOption(self) -> None:
        """An option echo does not have is a usage error."""
        self.assertRaises(UsageError, parse, "--rooms", "1")

    def test_helpDocumentsEveryOption(self) -> None:
        """C{twistd echo --help} names every long option and the default port."""
        text = str(Options())
        for name in LONG_OPTIONS:
            self.assertIn(f"--{name}=", text)
        self.assertIn("8888", text)
        self.assertIn("RFC 862", text)


class MakeServiceTests(SynchronousTestCase):
    """L{makeService} listens where the options say, with the options' limits."""

    def test_defaultListener(self) -> None:
        """By default echo listens on TCP 8888 on all interfaces, and no UDP."""
        _, reactor = started()
        [(port, factory, _, interface)] = reactor.tcpServers
        self.assertEqual((port, interface), (8888, DEFAULT_INTERFACE))
        self.assertIsInstance(factory, EchoFactory)
        self.assertEqual(reactor.udpServers, [])

    def test_portAndInterface(self) -> None:
        """C{--port} and C{--interface} reach the reactor, IPv6 included."""
        _, reactor = started("--port", "0", "--interface", "::1")
        [(port, _, _, interface)] = reactor.tcpServers
        self.assertEqual((port, interface), (0, "::1"))

    def test_everyListener(self) -> None:
        """Every C{--listen} is listened on, all with one factory."""
        service, reactor = started(
            "--listen", "tcp:0", "--listen", "unix:/tmp/echo.sock", "--port", "1"
        )
        # The drain on stop, three listeners, the metrics source, then the
        # SIGHUP service, the heap freezer and the systemd notifier.
        self.assertEqual(len(list(service)), 8)
        self.assertEqual([server[0] for server in reactor.tcpServers], [1, 0])
        self.assertEqual(reactor.unixServers[0][0], "/tmp/echo.sock")
        factories = {server[1] for server in reactor.tcpServers + reactor.unixServers}
        self.assertEqual(len(factories), 1)

    def test_factoryConfigured(self) -> None:
        """The factory gets the idle timeout, connection limit and reactor clock."""
        _, reactor = started("--idle-timeout", "7", "--max-connections", "2")
        factory = reactor.tcpServers[0][1]
        self.assertEqual(factory.idleTimeout, 7)
        self.assertEqual(factory.connections.limit.maximum, 2)
        self.assertIs(factory.clock, reactor)

    def test_listenerLogsAddress(self) -> None:
        """Starting logs the address each listener bound."""
        with capturedLogs() as events:
            started("--port", "0", "--interface", "127.0.0.1")
        self.assertIn(
            "echo listening on tcp:0.0.0.0:0", [formatEvent(e) for e in events]
        )

    def test_udpPort(self) -> None:
        """C{--udp-port} adds a UDP echo listener on C{--interface}."""
        _, reactor = started("--port", "0", "--udp-port", "7007", "-i", "::1")
        [(port, protocol, interface)] = reactor.udpServers
        self.assertEqual((port, interface), (7007, "::1"))
        self.assertIsInstance(protocol, DatagramEcho)
        self.assertEqual(len(reactor.tcpServers), 1)

    def test_udpLimits(self) -> None:
        """The UDP listener applies C{--udp-rate} and C{--udp-burst} per source."""
        _, reactor = started(
            "--udp-port", "7007", "--udp-rate", "1", "--udp-burst", "2"
        )
        [(_, protocol, _)] = reactor.udpServers
        [transport] = reactor.udpTransports
        for _ in range(3):
            protocol.datagramReceived(b"x", ("127.0.2.1", 5000))
        protocol.datagramReceived(b"loop", ("127.0.2.1", 7007))
        self.assertEqual(len(transport.written), 2)
        reactor.advance(1)
        protocol.datagramReceived(b"y", ("127.0.2.1", 5000))
        self.assertEqual(transport.written[-1], (b"y", ("127.0.2.1", 5000)))

    def test_stopService(self) -> None:
        """Stopping the service stops every listener."""
        service, _ = started("--udp-port", "0")
        service.stopService()
        self.assertFalse(any(child.running for child in service))

    def test_badListenDescription(self) -> None:
        """A bad C{--listen} is a one-line exit message, not a traceback."""
        options = parse("--listen", "tcp:0", "--listen", "tpc:8888")
        exit = self.assertRaises(SystemExit, makeService, options, UDPMemoryReactor())
        self.assertIsInstance(exit.code, str)
        self.assertIn("'tpc:8888'", exit.code)
        self.assertNotIn("\n", exit.code)

    def test_portInUse(self) -> None:
        """A port in use exits with status 1 after one critical log line."""
        message = ECHO.failedStart(self, "--port", "8888")
        self.assertTrue(
            message.startswith(f"echo: cannot listen on {defaultListen(8888)[0]}: "),
            message,
        )
