"""
Tests for L{twisted_services.services.tap}: C{twistd services}'s options and
the combined service it builds, on a L{twisted_services.testing.UDPMemoryReactor}.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

from twisted.application.service import IService, MultiService
from twisted.internet import endpoints
from twisted.python.systemd import ListenFDs
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from tests.support.listeners import DEFAULT_INTERFACE, defaultListen
from tests.support.tap import Tap, pluginMaker
from twisted_services.chat import tap as chat
from twisted_services.chat.protocol import ChatFactory
from twisted_services.chat.web.guard import GuardedSiteFactory
from twisted_services.echo import tap as echo
from twisted_services.echo.protocol import EchoFactory
from twisted_services.http import tap as http
from twisted_services.http.protocol import HTTPFactory
from twisted_services.services import tap as services
from twisted_services.services.tap import Options, makeService
from twisted_services.systemd.notify import SystemdNotifier
from twisted_services.temperature import tap as temperature
from twisted_services.temperature.protocol import TemperatureProtocol
from twisted_services.testing import UDPMemoryReactor

SERVICES = ["echo", "chat", "http", "temperature"]


SERVICES_TAP = Tap(services)
parse = SERVICES_TAP.parse
started = SERVICES_TAP.started


def walk(service: IService) -> Iterator[IService]:
    """C{service} and every service under it, depth first."""
    yield service
    if isinstance(service, MultiService):
        for child in service:
            yield from walk(child)


def notifiers(service: IService) -> list[IService]:
    """The systemd notifiers anywhere in C{service}'s tree."""
    return [s for s in walk(service) if isinstance(s, SystemdNotifier)]


class OptionsTests(SynchronousTestCase):
    """L{Options} parses C{twistd services}, each service's part by its own."""

    def test_defaults(self) -> None:
        """
        With no arguments all four services run on their default ports, each
        with its own plugin's options and defaults.
        """
        parts = parse()["services"]
        self.assertEqual(list(parts), SERVICES)
        for name, tap in zip(SERVICES, [echo, chat, http, temperature], strict=True):
            self.assertIsInstance(parts[name], tap.Options)
        self.assertEqual(parts["echo"]["listen"], defaultListen(8888))
        self.assertEqual(parts["chat"]["listen"], defaultListen(12345))
        self.assertEqual(parts["http"]["listen"], defaultListen(8080))
        self.assertEqual(parts["temperature"]["port"], 1314)
        self.assertIsNone(parts["temperature"]["systemd-socket"])
        self.assertEqual(parts["chat"]["max-line"], 4096)

    def test_repeatableListeners(self) -> None:
        """C{--echo} and friends repeat, and replace only their service's default."""
        parts = parse(
            "--echo", "tcp:1", "--echo", "unix:/tmp/e.sock", "--http", "tcp:0"
        )["services"]
        self.assertEqual(parts["echo"]["listen"], ["tcp:1", "unix:/tmp/e.sock"])
        self.assertEqual(parts["http"]["listen"], ["tcp:0"])
        self.assertEqual(parts["chat"]["listen"], defaultListen(12345))

    def test_temperaturePort(self) -> None:
        """C{--temperature} is temperature's UDP port."""
        self.assertEqual(
            parse("--temperature", "0")["services"]["temperature"]["port"], 0
        )
        self.assertRaises(UsageError, parse, "--temperature", "65536")

    def test_temperatureSocket(self) -> None:
        """
        C{--temperature-socket} is temperature's C{--systemd-socket}, and not
        to be given with C{--temperature}.
        """
        part = parse("--temperature-socket", "temperature")["services"]["temperature"]
        self.assertEqual(part["systemd-socket"], "temperature")
        self.assertRaises(
            UsageError, parse, "--temperature", "1", "--temperature-socket", "t"
        )

    def test_turnedOff(self) -> None:
        """C{--no-X} leaves service X out, and only it."""
        for name in SERVICES:
            parts = parse(f"--no-{name}")["services"]
            self.assertEqual(list(parts), [n for n in SERVICES if n != name])

    def test_allTurnedOff(self) -> None:
        """Turning every service off is a usage error."""
        error = self.assertRaises(
            UsageError, parse, *(f"--no-{name}" for name in SERVICES)
        )
        self.assertIn("nothing to run", str(error))

    def test_turnedOffButConfigured(self) -> None:
        """Configuring a service that is turned off is a usage error naming both."""
        for arguments, named in [
            (["--no-chat", "--chat", "tcp:1"], "--chat"),
            (["--no-echo", "--echo-args", "--port 1"], "--echo-args"),
            (["--no-temperature", "--temperature", "1"], "--temperature"),
            (["--no-temperature", "--temperature-socket", "t"], "--temperature-socket"),
        ]:
            error = str(self.assertRaises(UsageError, parse, *arguments))
            self.assertIn(arguments[0], error)
            self.assertIn(named, error)

    def test_serviceArguments(self) -> None:
        """C{--X-args} is split as a shell would and parsed by X's own options."""
        parts = parse(
            "--chat-args",
            "--max-line 8192 --rate 10",
            "--http-args",
            "--message 'Hi there' --no-access-log",
            "--echo-args",
            "--udp-port=7",
            "--temperature",
            "0",
            "--temperature-args",
            "--interface ::1 --burst 2",
        )["services"]
        self.assertEqual((parts["chat"]["max-line"], parts["chat"]["rate"]), (8192, 10))
        self.assertEqual(parts["http"]["message"], "Hi there")
        self.assertTrue(parts["http"]["no-access-log"])
        self.assertEqual(parts["echo"]["udp-port"], 7)
        self.assertEqual(
            [parts["temperature"][k] for k in ("port", "interface", "burst")],
            [0, "::1", 2],
        )

    def test_serviceArgumentsListen(self) -> None:
        """
        Without C{--X}, C{--X-args} may set the listeners the single plugin's
        way; with it, they add to the ones given.
        """
        parts = parse(
            "--echo-args",
            "--port 7",
            "--chat",
            "tcp:1",
            "--chat-args",
            "--listen tcp:2",
        )["services"]
        self.assertEqual(parts["echo"]["listen"], defaultListen(7))
        self.assertEqual(parts["chat"]["listen"], ["tcp:1", "tcp:2"])

    def test_listenersGivenTwice(self) -> None:
        """
        C{--X} (or C{--temperature-socket}) with X's own C{--port} (or
        C{--systemd-socket}) in C{--X-args}, however spelt, would serve on
        both: a usage error naming both options.
        """
        for arguments, named in [
            (["--chat", "tcp:1", "--chat-args", "--port 2"], "--chat and --port"),
            (["--echo", "tcp:1", "--echo-args", "-p2"], "--echo and --port"),
            (["--http", "tcp:1", "--http-args", "--po=2"], "--http and --port"),
            (
                ["--temperature", "1", "--temperature-args", "--port 2"],
                "--temperature and --port",
            ),
            (
                ["--temperature-socket", "t", "--temperature-args", "-p 2"],
                "--temperature-socket and --port",
            ),
            (
                ["--temperature", "1", "--temperature-args", "--systemd-socket t"],
                "--temperature and --systemd-socket",
            ),
        ]:
            error = str(self.assertRaises(UsageError, parse, *arguments))
            self.assertIn(f"{named} in {arguments[2]} both replace", error)

    def test_listenersGivenOnce(self) -> None:
        """
        Each way alone still sets the listeners, and options of X-args that
        do not choose a port go with C{--X}.
        """
        parts = parse(
            *("--chat", "tcp:1", "--chat-args", "--max-line 100"),
            *("--echo-args", "--port 2"),
            *("--temperature", "3", "--temperature-args", "--interface ::1"),
        )["services"]
        self.assertEqual(parts["chat"]["listen"], ["tcp:1"])
        self.assertEqual(parts["echo"]["listen"], defaultListen(2))
        self.assertEqual(
            (parts["temperature"]["port"], parts["temperature"]["interface"]),
            (3, "::1"),
        )

    def test_serviceArgumentErrorsNameService(self) -> None:
        """An error in C{--X-args} is a usage error that starts with C{--X-args:}."""
        for option, value in [
            ("--chat-args", "--max-line 0"),
            ("--echo-args", "--rooms 1"),
            ("--http-args", "--message 'unclosed"),
            ("--temperature-args", "--listen udp:1314"),
        ]:
            error = self.assertRaises(UsageError, parse, option, value)
            self.assertTrue(str(error).startswith(f"{option}: "), str(error))

    def test_serviceValidation(self) -> None:
        """X's own checks apply to the listeners given here, naming C{--X-args}."""
        error = self.assertRaises(
            UsageError, parse, "--echo", "tcp:1", "--echo-args", "--interface ::1"
        )
        self.assertIn("--echo-args: --interface goes with --port", str(error))

    def test_helpDocumentsEveryOption(self) -> None:
        """C{twistd services --help} names every option and each default port."""
        text = str(Options())
        for name in SERVICES:
            for option in (name, f"no-{name}", f"{name}-args"):
                self.assertIn(f"--{option}", text)
        self.assertIn("--temperature-socket", text)
        for port in ("8888", "12345", "8080", "1314"):
            self.assertIn(port, text)


class MakeServiceTests(SynchronousTestCase):
    """L{makeService} builds each enabled service with its own plugin."""

    def test_defaults(self) -> None:
        """
        By default all four listen on their default ports, each its factory,
        and chat's page on 8081.
        """
        _, reactor = started()
        self.assertEqual(
            [
                (port, type(factory), interface)
                for port, factory, _, interface in reactor.tcpServers
            ],
            [
                (8888, EchoFactory, DEFAULT_INTERFACE),
                (12345, ChatFactory, DEFAULT_INTERFACE),
                (8081, GuardedSiteFactory, DEFAULT_INTERFACE),
                (8080, HTTPFactory, DEFAULT_INTERFACE),
            ],
        )
        [(port, protocol, interface)] = reactor.udpServers
        self.assertEqual((port, interface), (1314, DEFAULT_INTERFACE))
        self.assertIsInstance(protocol, TemperatureProtocol)

    def test_namedChildren(self) -> None:
        """Each service is a child named after it, in a fixed order."""
        service, _ = started("--no-http")
        self.assertEqual(
            [child.name for child in service if child.name is not None],
            ["echo", "chat", "temperature"],
        )
        self.assertIsInstance(service.getServiceNamed("chat"), MultiService)

    def test_onlyEnabled(self) -> None:
        """Services turned off do not listen."""
        _, reactor = started(
            "--no-echo", "--no-http", "--no-temperature", "--no-chat-web"
        )
        [(port, factory, _, _)] = reactor.tcpServers
        self.assertEqual(port, 12345)
        self.assertIsInstance(factory, ChatFactory)
        self.assertEqual(reactor.udpServers, [])

    def test_listeners(self) -> None:
        """The listeners given reach the reactor, for the service they name."""
        _, reactor = started(
            "--echo",
            "tcp:0:interface=127.0.0.1",
            "--echo",
            "tcp:1",
            "--chat",
            "tcp:2",
            "--no-http",
            "--temperature",
            "3",
        )
        self.assertEqual(
            [
                (port, type(factory), interface)
                for port, factory, _, interface in reactor.tcpServers
            ],
            [(0, EchoFactory, "127.0.0.1"), (1, EchoFactory, ""), (2, ChatFactory, "")],
        )
        self.assertEqual(reactor.udpServers[0][0], 3)

    def test_serviceOptionsReachFactories(self) -> None:
        """Each C{--X-args} configures X's factory, and only X's."""
        _, reactor = started(
            "--echo-args",
            "--idle-timeout 7",
            "--chat-args",
            "--max-line 8192 --rate 10",
            "--http-args",
            "--max-body 0 --no-access-log",
            "--no-chat-web",
        )
        echoFactory, chatFactory, httpFactory = (s[1] for s in reactor.tcpServers)
        self.assertEqual(echoFactory.idleTimeout, 7)
        self.assertEqual((chatFactory.maxLine, chatFactory.rate), (8192, 10))
        self.assertEqual(chatFactory.idleTimeout, 3600)
        self.assertEqual((httpFactory.maxBody, httpFactory.accessLog), (0, None))
        self.assertIs(chatFactory.clock, reactor)

    def test_temperatureOptionsReachProtocol(self) -> None:
        """C{--temperature-args} sets the temperature service's rate limits."""
        _, reactor = started("--temperature-args", "--rate 1 --burst 1")
        [(_, protocol, _)] = reactor.udpServers
        [transport] = reactor.udpTransports
        for _ in range(2):
            protocol.datagramReceived(b"100", ("127.0.2.1", 5000))
        self.assertEqual(transport.written, [(b"100 C = 212 F\n", ("127.0.2.1", 5000))])

    def test_temperatureSocket(self) -> None:
        """C{--temperature-socket} adopts the socket systemd passed by that name."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(sock.close)
        sock.bind(("127.0.0.1", 0))
        self.patch(
            endpoints._SystemdParser,
            "_sddaemon",
            ListenFDs([sock.fileno()], ("temperature",)),
        )
        _, reactor = started("--temperature-socket", "temperature")
        [(fd, _, protocol, _)] = reactor.adoptedPorts
        self.assertEqual(fd, sock.fileno())
        self.assertIsInstance(protocol, TemperatureProtocol)
        self.assertEqual(reactor.udpServers, [])

    def test_oneNotifier(self) -> None:
        """
        The tree holds one systemd notifier, the top's last child, so that
        READY=1 waits for every service; the single plugins' own are left out.
        """
        service, _ = started()
        self.assertEqual(notifiers(service), [list(service)[-1]])
        single = echo.makeService(echo.Options(), UDPMemoryReactor())
        self.assertEqual(len(notifiers(single)), 1)

    def test_badListenerNamesService(self) -> None:
        """A listener that cannot be parsed exits with a line naming its service."""
        options = parse("--chat", "tpc:1")
        exit = self.assertRaises(SystemExit, makeService, options, UDPMemoryReactor())
        self.assertIsInstance(exit.code, str)
        self.assertIn("chat: bad listen description 'tpc:1'", exit.code)

    def test_stopService(self) -> None:
        """Stopping the combined service stops every service's listeners."""
        service, reactor = started()
        service.stopService()
        self.assertFalse(any(s.running for s in walk(service)))
        self.assertTrue(all(t.stopped for t in reactor.udpTransports))


class ChatWebTests(SynchronousTestCase):
    """Where the combined plugin serves the chat page, if anywhere."""

    def test_default(self) -> None:
        """Chat on its default port: the page on TCP 8081 (IPv6 and IPv4)."""
        chatOptions = parse()["services"]["chat"]
        self.assertEqual(chatOptions["web"], defaultListen(8081))

    def test_chatWeb(self) -> None:
        """C{--chat-web} replaces the default, and repeats."""
        chatOptions = parse("--chat-web", "tcp:1", "--chat-web", "tcp:2")["services"]
        self.assertEqual(chatOptions["chat"]["web"], ["tcp:1", "tcp:2"])

    def test_noDefaultWhenChatPlaced(self) -> None:
        """
        Chat placed with C{--chat} (on systemd's socket, say) gets no page
        of its own accord, but does with C{--chat-web}.
        """
        placed = ("--chat", "systemd:domain=INET:name=chat")
        self.assertEqual(parse(*placed)["services"]["chat"]["web"], [])
        both = parse(*placed, "--chat-web", "tcp:1")["services"]["chat"]
        self.assertEqual(both["web"], ["tcp:1"])

    def test_noChatWeb(self) -> None:
        """C{--no-chat-web} serves no page, and conflicts with C{--chat-web}."""
        self.assertEqual(parse("--no-chat-web")["services"]["chat"]["web"], [])
        for off in ("--no-chat-web", "--no-chat"):
            with self.assertRaises(UsageError) as raised:
                parse(off, "--chat-web", "tcp:1")
            self.assertIn(f"{off} conflicts with --chat-web", str(raised.exception))


class PluginTests(SynchronousTestCase):
    """The dropin offers C{twistd services}."""

    def test_plugin(self) -> None:
        """The C{services} maker builds from this module."""
        maker = pluginMaker("services")
        self.assertIsInstance(maker.options(), services.Options)
        self.assertIs(maker.makeService, services.makeService)
        self.assertEqual(
            maker.description,
            "All four services in one process: echo, chat, http and temperature.",
        )
