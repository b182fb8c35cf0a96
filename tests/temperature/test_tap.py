"""
Tests for L{twisted_services.temperature.tap}: C{twistd temperature}'s options
and the service it builds, on a L{twisted_services.testing.UDPMemoryReactor}.
"""

from __future__ import annotations

import socket

from twisted.internet import endpoints
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.python.systemd import ListenFDs
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from tests.support.listeners import DEFAULT_INTERFACE
from tests.support.tap import Tap, pluginMaker
from twisted_services.temperature import tap as temperature
from twisted_services.temperature.protocol import TemperatureProtocol
from twisted_services.temperature.tap import Options, makeService
from twisted_services.testing import UDPMemoryReactor

LONG_OPTIONS = [
    "port",
    "interface",
    "rate",
    "burst",
    "max-sources",
    "systemd-socket",
]


TEMPERATURE = Tap(temperature)
parse = TEMPERATURE.parse
started = TEMPERATURE.started


class OptionsTests(SynchronousTestCase):
    """L{Options} parses and validates C{twistd temperature}'s command line."""

    def test_defaults(self) -> None:
        """With no arguments: UDP 1314 on all IPv4 interfaces, documented limits."""
        options = parse()
        self.assertEqual(
            [options[name] for name in LONG_OPTIONS], [1314, None, 20, 40, 10000, None]
        )

    def test_values(self) -> None:
        """Every option is parsed, the numbers to numbers."""
        options = parse(
            "--port=0",
            "--interface=::",
            "--rate=1.5",
            "--burst=2",
            "--max-sources=3",
            "--systemd-socket=temperature",
        )
        self.assertEqual(
            [options[name] for name in LONG_OPTIONS],
            [0, "::", 1.5, 2, 3, "temperature"],
        )

    def test_shortOptions(self) -> None:
        """C{-p} and C{-i} are C{--port} and C{--interface}."""
        options = parse("-p", "7", "-i", "127.0.0.1")
        self.assertEqual((options["port"], options["interface"]), (7, "127.0.0.1"))

    def test_badValues(self) -> None:
        """Out-of-range or malformed numbers are usage errors."""
        for arguments in [
            ["--port", "65536"],
            ["--port", "-1"],
            ["--port", "udp"],
            ["--rate", "0"],
            ["--rate", "nan"],
            ["--rate", "inf"],
            ["--burst", "0"],
            ["--burst", "1.5"],
            ["--max-sources", "0"],
        ]:
            self.assertRaises(UsageError, parse, *arguments)

    def test_noEndpointDescriptions(self) -> None:
        """UDP has no endpoint descriptions, so there is no C{--listen}."""
        self.assertRaises(UsageError, parse, "--listen", "udp:1314")

    def test_helpDocumentsEveryOption(self) -> None:
        """C{twistd temperature --help} names every option and the default port."""
        text = str(Options())
        for name in LONG_OPTIONS:
            self.assertIn(f"--{name}=", text)
        self.assertIn("1314", text)
        self.assertIn("LISTEN_FDNAMES", text)
        self.assertNotRegex(text, r"(?<!\.)\.\.(?!\.)", "a doubled full stop")


# The description of the default listener on this host.
DEFAULT_UDP = "udp:1314" + (
    f":interface={DEFAULT_INTERFACE}" if DEFAULT_INTERFACE else ""
)


class MakeServiceTests(SynchronousTestCase):
    """L{makeService} listens where the options say, with the options' limits."""

    def test_defaultListener(self) -> None:
        """By default the converter listens on UDP 1314 on all IPv4 interfaces."""
        service, reactor = started()
        [(port, protocol, interface)] = reactor.udpServers
        self.assertEqual((port, interface), (1314, DEFAULT_INTERFACE))
        self.assertIsInstance(protocol, TemperatureProtocol)
        self.assertEqual(reactor.tcpServers, [])
        # The listener, the metrics source, then the SIGHUP service, the heap
        # freezer and the systemd notifier serviceWith adds.
        self.assertEqual(len(list(service)), 5)

    def test_portAndInterface(self) -> None:
        """C{--port} and C{--interface} reach the reactor, IPv6 included."""
        _, reactor = started("--port", "0", "--interface", "::")
        [(port, _, interface)] = reactor.udpServers
        self.assertEqual((port, interface), (0, "::"))

    def test_listenerLogsAddress(self) -> None:
        """Starting logs the address bound, as every service does."""
        with capturedLogs() as events:
            started("--port", "1314", "--interface", "0.0.0.0")
        self.assertIn(
            "temperature listening on udp:0.0.0.0:1314",
            [formatEvent(event) for event in events],
        )

    def test_serves(self) -> None:
        """The listening protocol converts, replying to the sender."""
        _, reactor = started()
        [(_, protocol, _)] = reactor.udpServers
        [transport] = reactor.udpTransports
        protocol.datagramReceived(b"100\n", ("127.0.2.1", 5000))
        self.assertEqual(transport.written, [(b"100 C = 212 F\n", ("127.0.2.1", 5000))])

    def test_limits(self) -> None:
        """C{--rate} and C{--burst} limit replies per source address."""
        _, reactor = started("--rate", "1", "--burst", "2")
        [(_, protocol, _)] = reactor.udpServers
        [transport] = reactor.udpTransports
        for port in range(5000, 5003):
            protocol.datagramReceived(b"100", ("127.0.2.1", port))
        self.assertEqual(len(transport.written), 2)
        reactor.advance(1)
        protocol.datagramReceived(b"100", ("127.0.2.1", 5003))
        self.assertEqual(len(transport.written), 3)

    def test_maxSources(self) -> None:
        """C{--max-sources} bounds the table: the oldest source is forgotten."""
        _, reactor = started("--rate", "1", "--burst", "1", "--max-sources", "2")
        [(_, protocol, _)] = reactor.udpServers
        [transport] = reactor.udpTransports
        for host in ["127.0.2.1", "127.0.2.2", "127.0.2.3", "127.0.2.1"]:
            protocol.datagramReceived(b"100", (host, 5000))
        self.assertEqual(len(transport.written), 4)

    def test_ownPort(self) -> None:
        """Datagrams from the listening port's own number go unanswered."""
        _, reactor = started("--port", "1314")
        [(_, protocol, _)] = reactor.udpServers
        [transport] = reactor.udpTransports
        protocol.datagramReceived(b"212 F\n", ("127.0.2.1", 1314))
        self.assertEqual(transport.written, [])

    def test_stopService(self) -> None:
        """Stopping the service stops listening and leaves no timer."""
        service, reactor = started()
        [(_, protocol, _)] = reactor.udpServers
        protocol.datagramReceived(b"100", ("127.0.2.1", 53))
        service.stopService()
        self.assertFalse(any(child.running for child in service))
        [transport] = reactor.udpTransports
        self.assertTrue(transport.stopped)

    def test_portInUse(self) -> None:
        """A port in use exits with status 1 after one critical log line."""
        message = TEMPERATURE.failedStart(self, "--port", "1314")
        self.assertTrue(
            message.startswith(f"temperature: cannot listen on {DEFAULT_UDP}: "),
            message,
        )


class SystemdSocketTests(SynchronousTestCase):
    """C{--systemd-socket} adopts a socket systemd passed instead of binding."""

    def passSocket(
        self, kind: socket.SocketKind = socket.SOCK_DGRAM, name: str = "temperature"
    ) -> socket.socket:
        """
        Pretend systemd passed a socket named C{name}, bound on loopback,
        by replacing the reading the C{systemd:} endpoint parser made.
        """
        sock = socket.socket(socket.AF_INET, kind)
        self.addCleanup(sock.close)
        sock.bind(("127.0.0.1", 0))
        self.patch(
            endpoints._SystemdParser, "_sddaemon", ListenFDs([sock.fileno()], (name,))
        )
        return sock

    def test_byName(self) -> None:
        """The socket named by C{--systemd-socket} is adopted; nothing is bound."""
        sock = self.passSocket()
        _, reactor = started("--systemd-socket", "temperature", "--port", "9")
        [(fd, family, protocol, _)] = reactor.adoptedPorts
        self.assertEqual((fd, family), (sock.fileno(), socket.AF_INET))
        self.assertIsInstance(protocol, TemperatureProtocol)
        self.assertEqual(reactor.udpServers, [])

    def test_byIndex(self) -> None:
        """An index picks the socket by position among those passed."""
        sock = self.passSocket()
        _, reactor = started("--systemd-socket", "0")
        [(fd, _, _, _)] = reactor.adoptedPorts
        self.assertEqual(fd, sock.fileno())

    def test_serves(self) -> None:
        """The adopted socket converts, and knows its own port."""
        self.passSocket()
        _, reactor = started("--systemd-socket", "temperature")
        [(_, _, protocol, _)] = reactor.adoptedPorts
        [transport] = reactor.udpTransports
        protocol.datagramReceived(b"0K", ("127.0.2.1", 5000))
        protocol.datagramReceived(b"0K", ("127.0.2.1", 1315))
        self.assertEqual(
            transport.written, [(b"0 K = -273.15 C\n", ("127.0.2.1", 5000))]
        )

    def test_logsAddress(self) -> None:
        """The adopted socket's address is logged like a bound one."""
        self.passSocket()
        with capturedLogs() as events:
            started("--systemd-socket", "temperature")
        self.assertIn(
            "temperature listening on udp:0.0.0.0:1315",
            [formatEvent(event) for event in events],
        )

    def test_restart(self) -> None:
        """Stopped and started again, the service adopts the same socket again."""
        sock = self.passSocket()
        service, reactor = started("--systemd-socket", "temperature")
        service.stopService()
        service.startService()
        self.assertEqual(
            [port[0] for port in reactor.adoptedPorts], [sock.fileno()] * 2
        )

    def test_unknownSocket(self) -> None:
        """A socket systemd did not pass is a one-line exit message."""
        self.passSocket()
        options = parse("--systemd-socket", "dns")
        exit = self.assertRaises(SystemExit, makeService, options, UDPMemoryReactor())
        self.assertIsInstance(exit.code, str)
        self.assertTrue(
            exit.code.startswith("temperature: bad --systemd-socket 'dns': "),
            exit.code,
        )
        self.assertIn("temperature", exit.code.split(": ", 2)[2])
        self.assertNotIn("\n", exit.code)

    def test_nothingPassed(self) -> None:
        """Without socket activation the exit message says nothing was passed."""
        self.patch(endpoints._SystemdParser, "_sddaemon", ListenFDs([]))
        options = parse("--systemd-socket", "0")
        exit = self.assertRaises(SystemExit, makeService, options, UDPMemoryReactor())
        self.assertIn("systemd passed no sockets", exit.code)

    def test_notUDP(self) -> None:
        """A passed TCP socket cannot be served: one critical line, exit 1."""
        sock = self.passSocket(socket.SOCK_STREAM)
        service = makeService(
            parse("--systemd-socket", "temperature"), UDPMemoryReactor()
        )
        with capturedLogs() as events:
            exit = self.assertRaises(SystemExit, service.privilegedStartService)
        self.assertEqual(exit.code, 1)
        [event] = events
        self.assertEqual(event["log_level"], LogLevel.critical)
        self.assertEqual(
            formatEvent(event),
            f"temperature: cannot listen on systemd socket 'temperature' "
            f"(descriptor {sock.fileno()}): descriptor {sock.fileno()} is not a "
            "UDP socket (AF_INET, SOCK_STREAM)",
        )


class PluginTests(SynchronousTestCase):
    """The dropin's C{temperature} maker names this module."""

    def test_plugin(self) -> None:
        """C{twistd temperature} builds its options and service from this module."""
        maker = pluginMaker("temperature")
        self.assertIsInstance(maker.options(), temperature.Options)
        self.assertIs(maker.makeService, temperature.makeService)
        self.assertEqual(
            maker.description,
            "UDP temperature converter (Celsius, Fahrenheit, Kelvin), "
            "safe against reflection.",
        )
