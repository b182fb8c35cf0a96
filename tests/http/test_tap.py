"""
Tests for L{twisted_services.http.tap}: C{twistd http}'s options and the
service it builds, on a L{twisted_services.testing.UDPMemoryReactor}.
"""

from __future__ import annotations

from twisted.internet.testing import MemoryReactorClock
from twisted.logger import capturedLogs, formatEvent
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from tests.support.listeners import DEFAULT_INTERFACE, defaultListen
from tests.support.tap import Tap, pluginMaker
from twisted_services.http import tap as http
from twisted_services.http.accesslog import AccessLog
from twisted_services.http.protocol import HTTPFactory
from twisted_services.http.tap import Options, makeService
from twisted_services.server.connections import ShutdownService
from twisted_services.server.hangup import HangupService
from twisted_services.server.listeners import Listener
from twisted_services.server.metrics.sources import MetricsSource
from twisted_services.systemd.notify import SystemdNotifier
from twisted_services.testing import connect

LONG_OPTIONS = [
    "port",
    "interface",
    "listen",
    "message",
    "max-body",
    "max-header-size",
    "header-timeout",
    "idle-timeout",
    "max-connections",
    "shutdown-timeout",
]


HTTP = Tap(http)
parse = HTTP.parse
started = HTTP.started


class OptionsTests(SynchronousTestCase):
    """L{Options} parses and validates C{twistd http}'s command line."""

    def test_defaults(self) -> None:
        """With no arguments http listens on TCP 8080 with the agreed limits."""
        options = parse()
        self.assertEqual(options["listen"], defaultListen(8080))
        self.assertEqual(
            [options[name] for name in LONG_OPTIONS[3:]],
            ["Hello World", 1048576, 16384, 10.0, 60.0, 10000, 5.0],
        )
        self.assertFalse(options["no-access-log"])

    def test_listening(self) -> None:
        """The shared C{--port}, C{--interface} and C{--listen} work as in echo."""
        self.assertEqual(parse("--port", "0")["listen"], defaultListen(0))
        self.assertEqual(parse("-i", "::1")["listen"], ["tcp6:8080:interface=\\:\\:1"])
        self.assertEqual(
            parse("--listen", "tcp:1", "--listen", "unix:/tmp/http")["listen"],
            ["tcp:1", "unix:/tmp/http"],
        )

    def test_values(self) -> None:
        """Every option is parsed to its type."""
        options = parse(
            "--message=Bonjour",
            "--max-body=0",
            "--max-header-size=512",
            "--header-timeout=2.5",
            "--idle-timeout=0",
            "--max-connections=3",
            "--shutdown-timeout=1.5",
            "--no-access-log",
        )
        self.assertEqual(
            [options[name] for name in LONG_OPTIONS[3:]],
            ["Bonjour", 0, 512, 2.5, 0.0, 3, 1.5],
        )
        self.assertTrue(options["no-access-log"])

    def test_badValues(self) -> None:
        """Out-of-range or malformed values are usage errors."""
        for arguments in [
            ["--port", "65536"],
            ["--max-body", "-1"],
            ["--max-body", "1.5"],
            ["--max-header-size", "0"],
            ["--header-timeout", "0"],
            ["--header-timeout", "inf"],
            ["--idle-timeout", "-1"],
            ["--max-connections", "0"],
            ["--shutdown-timeout", "-1"],
        ]:
            self.assertRaises(UsageError, parse, *arguments)

    def test_unknownOption(self) -> None:
        """An option http does not have is a usage error."""
        self.assertRaises(UsageError, parse, "--udp-port", "1")

    def test_helpDocumentsEveryOption(self) -> None:
        """C{twistd http --help} names every option, the defaults and the port."""
        text = str(Options())
        for name in LONG_OPTIONS:
            self.assertIn(f"--{name}=", text)
        self.assertIn("--no-access-log", text)
        for default in ["Hello World", "1048576", "16384", "10000", "8080"]:
            self.assertIn(default, text)
        self.assertNotRegex(text, r"(?<!\.)\.\.(?!\.)", "a doubled full stop")


class MakeServiceTests(SynchronousTestCase):
    """L{makeService} listens where the options say, with the options' limits."""

    def test_defaultListener(self) -> None:
        """By default http listens on TCP 8080 on all interfaces."""
        _, reactor = started()
        [(port, factory, _, interface)] = reactor.tcpServers
        self.assertEqual((port, interface), (8080, DEFAULT_INTERFACE))
        self.assertIsInstance(factory, HTTPFactory)

    def test_everyListenerOneFactory(self) -> None:
        """Every listener serves one factory, so one set of counters."""
        service, reactor = started(
            "--listen", "tcp:0", "--listen", "unix:/tmp/http.sock", "--port", "1"
        )
        # The shutdown service, the access log, three listeners, the metrics
        # source, then the SIGHUP service, the heap freezer and the systemd
        # notifier serviceWith adds.
        self.assertEqual(len(list(service)), 9)
        factories = {server[1] for server in reactor.tcpServers + reactor.unixServers}
        self.assertEqual(len(factories), 1)

    def test_factoryConfigured(self) -> None:
        """The factory gets every option and the reactor as its clock."""
        _, reactor = started(
            "--message=Bonjour",
            "--max-body=5",
            "--max-header-size=512",
            "--header-timeout=2.5",
            "--idle-timeout=7",
            "--max-connections=3",
            "--shutdown-timeout=1.5",
            "--no-access-log",
        )
        factory = reactor.tcpServers[0][1]
        self.assertEqual(
            [
                factory.maxBody,
                factory.maxHeaderSize,
                factory.headerTimeout,
                factory.idleTimeout,
                factory.connections.limit.maximum,
                factory.accessLog,
                factory.shutdownTimeout,
            ],
            [5, 512, 2.5, 7, 3, None, 1.5],
        )
        self.assertIs(factory.clock, reactor)
        protocol, transport = connect(factory)
        protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertTrue(transport.value().endswith(b"\r\n\r\nBonjour"))

    def test_accessLogOnByDefault(self) -> None:
        """
        Without C{--no-access-log} each request is logged to an L{AccessLog}
        on stdout, a service started first; C{--access-log FILE} names a file.
        """
        service, reactor = started()
        factory = reactor.tcpServers[0][1]
        self.assertIsInstance(factory.accessLog, AccessLog)
        self.assertIsNone(factory.accessLog.path)
        self.assertIn(factory.accessLog, list(service))
        self.assertTrue(factory.accessLog.running)
        _, reactor = started("--access-log", "/var/log/x.log")
        self.assertEqual(reactor.tcpServers[0][1].accessLog.path, "/var/log/x.log")

    def test_listenerLogsAddress(self) -> None:
        """Starting logs the address bound, as the integration tests expect."""
        with capturedLogs() as events:
            started("--port", "0", "--interface", "127.0.0.1")
        self.assertIn(
            "http listening on tcp:0.0.0.0:0", [formatEvent(e) for e in events]
        )

    def test_badListenDescription(self) -> None:
        """A bad C{--listen} is a one-line exit message, not a traceback."""
        options = parse("--listen", "tpc:8080")
        exit = self.assertRaises(SystemExit, makeService, options, MemoryReactorClock())
        self.assertIn("http: bad listen description 'tpc:8080'", exit.code)


class StopTests(SynchronousTestCase):
    """Stopping the service stops the listeners, then drains the connections."""

    def test_shutdownServiceFirst(self) -> None:
        """
        The shutdown service comes before the listeners, so that stopping,
        which goes last to first, stops the listeners before it; the access
        log starts before the listeners.
        """
        service, _ = started("--listen", "tcp:0", "--listen", "tcp:1")
        children = list(service)
        self.assertIsInstance(children[0], ShutdownService)
        self.assertIsInstance(children[1], AccessLog)
        self.assertTrue(all(isinstance(child, Listener) for child in children[2:-4]))
        self.assertIsInstance(children[-4], MetricsSource)
        self.assertIsInstance(children[-3], HangupService)
        self.assertIsInstance(children[-1], SystemdNotifier)
        self.assertEqual(len(children), 8)

    def test_stopDrains(self) -> None:
        """
        Stopping closes an idle connection at once, answers a request under
        way with C{Connection: close}, and completes when both are gone.
        """
        service, reactor = started()
        factory = reactor.tcpServers[0][1]
        _, idleTransport = connect(factory)
        busy, busyTransport = connect(factory)
        busy.dataReceived(b"GET / HTTP/1.1\r\n")
        with capturedLogs() as events:
            done = service.stopService()
        self.assertFalse(idleTransport.connected)
        self.assertNoResult(done)
        self.assertFalse(any(child.running for child in service))
        busy.dataReceived(b"\r\n")
        self.assertIn(b"Connection: close\r\n", busyTransport.value())
        self.assertFalse(busyTransport.connected)
        self.successResultOf(done)
        self.assertIn(
            "http: shutting down, finishing 2 connection(s)",
            [formatEvent(event) for event in events],
        )

    def test_stopTimesOut(self) -> None:
        """A request not done within C{--shutdown-timeout} is aborted."""
        service, reactor = started("--shutdown-timeout=3")
        factory = reactor.tcpServers[0][1]
        busy, busyTransport = connect(factory)
        busy.dataReceived(b"GET / HTTP/1.1\r\n")
        done = service.stopService()
        reactor.advance(3)
        self.assertFalse(busyTransport.connected)
        self.successResultOf(done)

    def test_restart(self) -> None:
        """A service stopped and started again accepts connections again."""
        service, reactor = started()
        factory = reactor.tcpServers[0][1]
        service.stopService()
        self.assertIsNone(factory.buildProtocol(None))
        service.startService()
        _, transport = connect(factory)
        self.assertTrue(transport.connected)


class PluginTests(SynchronousTestCase):
    """The dropin's C{http} maker names this module."""

    def test_plugin(self) -> None:
        """C{twistd http} builds its options and service from this module."""
        maker = pluginMaker("http")
        self.assertIsInstance(maker.options(), http.Options)
        self.assertIs(maker.makeService, http.makeService)
        self.assertEqual(maker.description, "Minimal, fast HTTP/1.1 responder.")


class BodyTimeoutOptionTests(SynchronousTestCase):
    """C{--body-timeout}: how long a request body may take, 408 after."""

    def test_default(self) -> None:
        """By default a body has 30 seconds; C{--help} says so."""
        self.assertEqual(parse()["body-timeout"], 30.0)
        text = str(Options())
        self.assertIn("--body-timeout=", text)
        self.assertIn("408", text)

    def test_badValues(self) -> None:
        """Zero, negative or infinite timeouts are usage errors."""
        for value in ["0", "-1", "inf", "x"]:
            self.assertRaises(UsageError, parse, "--body-timeout", value)

    def test_factoryConfigured(self) -> None:
        """The factory times bodies with the option's value."""
        _, reactor = started("--body-timeout=2.5")
        factory = reactor.tcpServers[0][1]
        self.assertEqual(factory.bodyTimeout, 2.5)
        protocol, transport = connect(factory)
        protocol.dataReceived(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab"
        )
        reactor.advance(2.5)
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 408 "))
