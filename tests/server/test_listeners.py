"""
Tests for L{twisted_services.server.listeners}: the services that listen on
endpoint descriptions and UDP ports, log what they bound, and group them.
"""

from __future__ import annotations

import traceback

from twisted.application.service import MultiService
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.defer import Deferred
from twisted.internet.error import CannotListenError
from twisted.internet.protocol import DatagramProtocol, Factory, Protocol
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import (
    LegacyLogObserverWrapper,
    LogLevel,
    capturedLogs,
    formatEvent,
    globalLogPublisher,
)
from twisted.trial.unittest import SynchronousTestCase

from tests.support.listeners import (
    DEFAULT_INTERFACE,
    FakePort,
    RecordingListen,
    assertBadDescription,
    fakeListener,
)
from twisted_services.server.hangup import HangupService
from twisted_services.server.heap import StartupHeapFreezer
from twisted_services.server.listeners import (
    Listener,
    datagramListener,
    describeListeners,
    serviceWith,
    streamListeners,
)
from twisted_services.systemd.notify import SystemdNotifier
from twisted_services.testing import UDPMemoryReactor


def listenFailure() -> CannotListenError:
    """The error a server endpoint raises for a port already in use."""
    return CannotListenError("", 8888, OSError(98, "Address already in use"))


class ListenerTests(SynchronousTestCase):
    """L{Listener} listens while running and logs the address it bound."""

    def test_listensOnStart(self) -> None:
        """Starting the service listens once and keeps the port."""
        listen = RecordingListen()
        listener = Listener("demo", "tcp:0", listen, MemoryReactorClock())
        listener.privilegedStartService()
        listener.startService()
        self.assertEqual(len(listen.ports), 1)
        self.assertIs(listener.port, listen.ports[0])
        self.assertTrue(listener.running)

    def test_startServiceAlone(self) -> None:
        """C{startService} without C{privilegedStartService} listens too."""
        listen = RecordingListen()
        listener = Listener("demo", "tcp:0", listen, MemoryReactorClock())
        listener.startService()
        self.assertEqual(len(listen.ports), 1)

    def test_logsBoundAddress(self) -> None:
        """The log names the service and the address actually bound."""
        listen = RecordingListen(IPv4Address("TCP", "127.0.0.1", 43210))
        listener = Listener("demo", "tcp:0", listen, MemoryReactorClock())
        with capturedLogs() as events:
            listener.startService()
        self.assertEqual(
            [formatEvent(event) for event in events],
            ["demo listening on tcp:127.0.0.1:43210"],
        )

    def test_logsBoundUnixAddress(self) -> None:
        """A UNIX socket listener logs its path."""
        listen = RecordingListen(UNIXAddress("/run/demo.sock"))
        listener = Listener("demo", "unix:/run/demo.sock", listen, MemoryReactorClock())
        with capturedLogs() as events:
            listener.startService()
        self.assertEqual(
            formatEvent(events[0]), "demo listening on unix:/run/demo.sock"
        )

    def test_stopStopsListening(self) -> None:
        """Stopping the service stops the port."""
        listen = RecordingListen()
        listener = Listener("demo", "tcp:0", listen, MemoryReactorClock())
        listener.startService()
        listener.stopService()
        self.assertEqual(listen.ports[0].stopped, 1)
        self.assertIsNone(listener.port)
        self.assertFalse(listener.running)

    def test_restartListensAgain(self) -> None:
        """A stopped listener listens again when started again."""
        listen = RecordingListen()
        listener = Listener("demo", "tcp:0", listen, MemoryReactorClock())
        listener.startService()
        listener.stopService()
        listener.startService()
        self.assertEqual(len(listen.ports), 2)
        self.assertIs(listener.port, listen.ports[1])

    def test_synchronousFailureExits(self) -> None:
        """A port in use ends startup with exit status 1 and one critical line."""

        def listen() -> FakePort:
            raise listenFailure()

        listener = Listener("demo", "tcp:8888", listen, MemoryReactorClock())
        with capturedLogs() as events:
            exit = self.assertRaises(SystemExit, listener.privilegedStartService)
        self.assertEqual(exit.code, 1)
        self.assertEqual(len(events), 1)
        self.assertEqual(events[0]["log_level"], LogLevel.critical)
        message = formatEvent(events[0])
        self.assertTrue(
            message.startswith("demo: cannot listen on tcp:8888: "), message
        )
        self.assertIn("Address already in use", message)
        self.assertNotIn("\n", message)

    def test_failureReachesDaemonParent(self) -> None:
        """
        The exit is also an C{Exception}, which daemon-mode twistd reports
        down its status pipe as one short line: C{ClassName: reason}.
        """

        def listen() -> FakePort:
            raise listenFailure()

        listener = Listener("demo", "tcp:8888", listen, MemoryReactorClock())
        with capturedLogs():
            exit = self.assertRaises(SystemExit, listener.privilegedStartService)
        self.assertIsInstance(exit, Exception)
        line = traceback.format_exception_only(type(exit), exit)[-1].strip()
        self.assertEqual(
            line,
            "StartupFailed: demo: cannot listen on tcp:8888: Address already in use",
        )

    def test_failureLineSurvivesLegacyObservers(self) -> None:
        """The critical line keeps its text when a legacy log observer sees it first."""
        legacy = LegacyLogObserverWrapper(lambda event: None)
        globalLogPublisher.addObserver(legacy)
        self.addCleanup(globalLogPublisher.removeObserver, legacy)

        def listen() -> FakePort:
            raise listenFailure()

        listener = Listener("demo", "tcp:8888", listen, MemoryReactorClock())
        with capturedLogs() as events:
            self.assertRaises(SystemExit, listener.privilegedStartService)
        self.assertIn("demo: cannot listen on tcp:8888: ", formatEvent(events[0]))

    def test_laterFailureStopsReactor(self) -> None:
        """A listen that fails later logs one critical line and stops the reactor."""
        listening: Deferred[FakePort] = Deferred()
        reactor = MemoryReactorClock()
        listener = Listener("demo", "systemd:x", lambda: listening, reactor)
        listener.startService()
        with capturedLogs() as events:
            listening.errback(listenFailure())
        self.assertTrue(reactor.hasStopped)
        self.assertEqual(len(events), 1)
        self.assertEqual(events[0]["log_level"], LogLevel.critical)
        self.assertIn("demo: cannot listen on systemd:x: ", formatEvent(events[0]))

    def test_laterSuccess(self) -> None:
        """A listen that succeeds later keeps the port and logs its address."""
        listening: Deferred[FakePort] = Deferred()
        listener = Listener("demo", "tcp:0", lambda: listening, MemoryReactorClock())
        listener.startService()
        self.assertIsNone(listener.port)
        port = FakePort(IPv6Address("TCP", "::1", 5))
        with capturedLogs() as events:
            listening.callback(port)
        self.assertIs(listener.port, port)
        self.assertEqual(formatEvent(events[0]), "demo listening on tcp:[::1]:5")


class StreamListenersTests(SynchronousTestCase):
    """L{streamListeners} makes one L{Listener} per endpoint description."""

    def test_onePerDescription(self) -> None:
        """Every description is listened on with the one factory."""
        reactor = MemoryReactorClock()
        factory = Factory.forProtocol(Protocol)
        service = serviceWith(
            streamListeners(
                "demo",
                ["tcp:0", "tcp6:0:interface=\\:\\:1", "unix:/tmp/d"],
                factory,
                reactor,
            )
        )
        service.startService()
        self.assertEqual(
            [(port, interface) for port, _, _, interface in reactor.tcpServers],
            [(0, ""), (0, "::1")],
        )
        self.assertEqual([server[0] for server in reactor.unixServers], ["/tmp/d"])
        self.assertTrue(all(server[1] is factory for server in reactor.tcpServers))

    def test_backlog(self) -> None:
        """
        Every listener gets the backlog asked for, 1024 by default, unless
        its description gives its own.
        """
        reactor = MemoryReactorClock()
        factory = Factory.forProtocol(Protocol)
        descriptions = ["tcp:0", "tcp:1:backlog=7", "unix:/tmp/d"]
        serviceWith(
            streamListeners("demo", descriptions, factory, reactor), notify=False
        ).startService()
        self.assertEqual(
            [
                (port, backlog, interface)
                for port, _, backlog, interface in reactor.tcpServers
            ],
            [(0, 1024, ""), (1, 7, "")],
        )
        self.assertEqual(reactor.unixServers[0][2], 1024)
        reactor = MemoryReactorClock()
        serviceWith(
            streamListeners("demo", ["tcp:0"], factory, reactor, backlog=4096),
            notify=False,
        ).startService()
        self.assertEqual(reactor.tcpServers[0][2], 4096)

    def test_unixSocketInMissingDirectory(self) -> None:
        """
        A UNIX socket in a directory that does not exist says so, instead
        of Twisted's lock-file errno.
        """
        [listener] = streamListeners(
            "demo",
            ["unix:/nonexistent-dir/demo.sock"],
            Factory.forProtocol(Protocol),
            MemoryReactorClock(),
        )
        with capturedLogs() as events:
            exit = self.assertRaises(SystemExit, listener.privilegedStartService)
        self.assertEqual(exit.code, 1)
        self.assertEqual(
            formatEvent(events[-1]),
            "demo: cannot listen on unix:/nonexistent-dir/demo.sock: "
            "directory /nonexistent-dir does not exist",
        )

    def test_missingSystemdSocket(self) -> None:
        """
        A C{systemd:name=} description whose socket systemd did not pass
        says so, naming what was passed, instead of a bare C{'echo'}.
        """
        message = assertBadDescription(self, "systemd:domain=INET6:name=echo")
        self.assertIn(
            "no socket named 'echo' was passed by systemd; LISTEN_FDNAMES", message
        )

    def test_badDescription(self) -> None:
        """An unparseable description is a one-line exit message naming it."""
        for description in [
            "bogus:1",
            "tcp:notaport",
            "ssl:443:privateKey=/nonexistent",
        ]:
            assertBadDescription(self, description)


class ServiceWithTests(SynchronousTestCase):
    """
    L{serviceWith} groups services so they start and stop together, with a
    systemd notifier last.
    """

    def test_children(self) -> None:
        """The result is a L{MultiService} parenting every given service."""
        children = [fakeListener("demo") for _ in range(2)]
        parent = serviceWith(children)
        self.assertIsInstance(parent, MultiService)
        self.assertEqual(list(parent)[:-3], children)
        parent.startService()
        self.assertTrue(all(child.running for child in children))

    def test_notifierLast(self) -> None:
        """
        The SIGHUP service, the heap freezer and the notifier are added
        after the children.
        """
        echo = fakeListener("echo", IPv4Address("TCP", "0.0.0.0", 8888))
        children = list(serviceWith([echo]))
        self.assertEqual(children[0], echo)
        self.assertIsInstance(children[1], HangupService)
        self.assertIsInstance(children[2], StartupHeapFreezer)
        self.assertIsInstance(children[3], SystemdNotifier)
        self.assertEqual(len(children), 4)

    def test_withoutNotifier(self) -> None:
        """C{notify=False} adds none, for services nested in another."""
        echo = fakeListener("echo", IPv4Address("TCP", "0.0.0.0", 8888))
        self.assertEqual(list(serviceWith([echo], notify=False)), [echo])


class DescribeListenersTests(SynchronousTestCase):
    """L{describeListeners} summarizes the whole service tree in one line."""

    def test_nested(self) -> None:
        """Listeners in nested services, in order, from any node of the tree."""
        echo = serviceWith(
            [fakeListener("echo", IPv4Address("TCP", "0.0.0.0", 8888))], notify=False
        )
        http = serviceWith(
            [fakeListener("http", IPv6Address("TCP", "::", 8080))], notify=False
        )
        root = serviceWith([echo, http], notify=False)
        root.startService()
        self.assertEqual(
            describeListeners(next(iter(http))),
            "serving echo on tcp:0.0.0.0:8888, http on tcp:[::]:8080",
        )

    def test_nothingBound(self) -> None:
        """A tree with no bound listener is just running."""
        self.assertEqual(describeListeners(MultiService()), "running")


class DatagramListenerTests(SynchronousTestCase):
    """L{datagramListener} listens on UDP through the reactor."""

    def test_listensUDP(self) -> None:
        """The protocol is listened on the given port and interface."""
        reactor = UDPMemoryReactor()
        protocol = DatagramProtocol()
        protocol.noisy = False
        listener = datagramListener("demo", 1314, "::", protocol, reactor)
        with capturedLogs() as events:
            listener.startService()
        self.assertEqual(reactor.udpServers, [(1314, protocol, "::")])
        self.assertEqual(listener.description, "udp:1314:interface=::")
        self.assertIn("demo listening on udp:", formatEvent(events[0]))

    def test_default(self) -> None:
        """
        With no interface the listener serves C{::} (IPv4 senders too) on a
        host with IPv6, all IPv4 addresses otherwise.
        """
        reactor = UDPMemoryReactor()
        protocol = DatagramProtocol()
        protocol.noisy = False
        listener = datagramListener("demo", 1314, "", protocol, reactor)
        listener.startService()
        self.assertEqual(reactor.udpServers, [(1314, protocol, DEFAULT_INTERFACE)])

    def test_ipv4Only(self) -> None:
        """C{0.0.0.0} keeps to IPv4."""
        reactor = UDPMemoryReactor()
        protocol = DatagramProtocol()
        protocol.noisy = False
        listener = datagramListener("demo", 1314, "0.0.0.0", protocol, reactor)
        listener.startService()
        self.assertEqual(reactor.udpServers, [(1314, protocol, "0.0.0.0")])
        self.assertEqual(listener.description, "udp:1314:interface=0.0.0.0")
