"""
Tests for L{twisted_services.chat.tap}: C{twistd chat}'s options and the
service it builds, on a L{twisted_services.testing.UDPMemoryReactor}.
"""

from __future__ import annotations

from twisted.internet.testing import MemoryReactorClock
from twisted.logger import capturedLogs, formatEvent
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from tests.support.listeners import DEFAULT_INTERFACE, defaultListen
from tests.support.tap import Tap
from twisted_services.chat import tap
from twisted_services.chat.protocol import ChatFactory
from twisted_services.chat.tap import Options, makeService
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
    "max-line",
    "fallback-encoding",
    "rate",
    "burst",
    "max-buffer",
    "idle-timeout",
    "max-connections",
]


CHAT = Tap(tap)
parse = CHAT.parse
started = CHAT.started


class OptionsTests(SynchronousTestCase):
    """L{Options} parses and validates C{twistd chat}'s command line."""

    def test_defaults(self) -> None:
        """With no arguments chat listens on TCP 12345 with the documented limits."""
        options = parse()
        self.assertEqual(options["listen"], defaultListen(12345))
        self.assertEqual(
            [options[name] for name in LONG_OPTIONS[3:]],
            [4096, None, 5.0, 20, 1048576, 3600.0, 10000],
        )

    def test_listening(self) -> None:
        """The shared C{--port}, C{--interface} and C{--listen} work as in echo."""
        self.assertEqual(parse("--port", "7")["listen"], defaultListen(7))
        self.assertEqual(parse("-i", "::1")["listen"], ["tcp6:12345:interface=\\:\\:1"])
        self.assertEqual(
            parse("--listen", "tcp:1", "--listen", "unix:/tmp/chat")["listen"],
            ["tcp:1", "unix:/tmp/chat"],
        )

    def test_values(self) -> None:
        """Every limit is parsed to its type."""
        options = parse(
            "--max-line=80",
            "--fallback-encoding=gbk",
            "--rate=0.5",
            "--burst=3",
            "--max-buffer=65536",
            "--idle-timeout=0",
            "--max-connections=2",
        )
        self.assertEqual(
            [options[name] for name in LONG_OPTIONS[3:]],
            [80, "gbk", 0.5, 3, 65536, 0.0, 2],
        )

    def test_badValues(self) -> None:
        """Out-of-range or malformed values are usage errors."""
        for arguments in [
            ["--port", "65536"],
            ["--max-line", "0"],
            ["--max-line", "long"],
            ["--fallback-encoding", "no-such-codec"],
            ["--fallback-encoding", "base64"],
            ["--rate", "0"],
            ["--rate", "inf"],
            ["--burst", "0"],
            ["--burst", "1.5"],
            ["--max-buffer", "-1"],
            ["--idle-timeout", "-1"],
            ["--max-connections", "0"],
        ]:
            self.assertRaises(UsageError, parse, *arguments)

    def test_unknownOption(self) -> None:
        """An option chat does not have is a usage error."""
        self.assertRaises(UsageError, parse, "--udp-port", "1")

    def test_helpDocumentsEveryOption(self) -> None:
        """C{twistd chat --help} names every option, the defaults and the port."""
        text = str(Options())
        for name in LONG_OPTIONS:
            self.assertIn(f"--{name}=", text)
        for default in ["4096", "5.0", "20", "1048576", "3600", "10000", "12345"]:
            self.assertIn(default, text)
        self.assertNotRegex(text, r"(?<!\.)\.\.(?!\.)", "a doubled full stop")


class MakeServiceTests(SynchronousTestCase):
    """L{makeService} listens where the options say, with the options' limits."""

    def test_defaultListener(self) -> None:
        """By default chat listens on TCP 12345 on all interfaces."""
        _, reactor = started()
        [(port, factory, _, interface)] = reactor.tcpServers
        self.assertEqual((port, interface), (12345, DEFAULT_INTERFACE))
        self.assertIsInstance(factory, ChatFactory)

    def test_everyListenerOneFactory(self) -> None:
        """Every listener serves one factory, so one set of rooms."""
        _, reactor = started("--listen", "tcp:0", "--listen", "unix:/tmp/chat.sock")
        factories = {server[1] for server in reactor.tcpServers + reactor.unixServers}
        self.assertEqual(len(factories), 1)

    def test_factoryConfigured(self) -> None:
        """The factory gets every limit and the reactor as its clock."""
        _, reactor = started(
            "--max-line=80",
            "--fallback-encoding=gbk",
            "--rate=0.5",
            "--burst=3",
            "--max-buffer=65536",
            "--idle-timeout=7",
            "--max-connections=2",
        )
        factory = reactor.tcpServers[0][1]
        self.assertEqual(
            [
                factory.maxLine,
                factory.fallbackEncoding,
                factory.rate,
                factory.burst,
                factory.maxBuffer,
                factory.idleTimeout,
                factory.connections.limit.maximum,
            ],
            [80, "gbk", 0.5, 3, 65536, 7, 2],
        )
        self.assertIs(factory.clock, reactor)

    def test_shutdownServiceFirst(self) -> None:
        """
        The goodbye service comes before the listeners, so that stopping,
        which goes last to first, stops the listeners before it.
        """
        service, _ = started("--listen", "tcp:0", "--listen", "tcp:1")
        children = list(service)
        self.assertIsInstance(children[0], ShutdownService)
        self.assertTrue(all(isinstance(child, Listener) for child in children[1:-4]))
        self.assertIsInstance(children[-4], MetricsSource)
        self.assertIsInstance(children[-3], HangupService)
        self.assertIsInstance(children[-1], SystemdNotifier)
        self.assertEqual(len(children), 7)

    def test_stopSaysGoodbye(self) -> None:
        """Stopping the service tells every client, closes, and stops listening."""
        service, reactor = started()
        factory = reactor.tcpServers[0][1]
        connected = [connect(factory) for _ in range(3)]
        for _, transport in connected:
            transport.clear()
        with capturedLogs() as events:
            done = service.stopService()
        for _, transport in connected:
            self.assertEqual(transport.value(), b"*** server shutting down\r\n")
            self.assertFalse(transport.connected)
        self.successResultOf(done)
        self.assertFalse(any(child.running for child in service))
        self.assertIn(
            "chat: shutting down, finishing 3 connection(s)",
            [formatEvent(event) for event in events],
        )

    def test_restart(self) -> None:
        """A service stopped and started again accepts connections again."""
        service, reactor = started()
        factory = reactor.tcpServers[0][1]
        service.stopService()
        self.assertIsNone(factory.buildProtocol(None))
        service.startService()
        _, transport = connect(factory)
        self.assertTrue(transport.connected)

    def test_badListenDescription(self) -> None:
        """A bad C{--listen} is a one-line exit message, not a traceback."""
        options = parse("--listen", "tpc:12345")
        exit = self.assertRaises(SystemExit, makeService, options, MemoryReactorClock())
        self.assertIn("chat: bad listen description 'tpc:12345'", exit.code)
