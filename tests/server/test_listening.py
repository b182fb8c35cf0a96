"""
Tests for L{twisted_services.server.options},
L{twisted_services.server.listeners} and L{twisted_services.server.tls}: option
coercion, the shared listening options, and the services that listen on them.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from OpenSSL import SSL
from twisted.application.service import MultiService
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.internet.defer import Deferred
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import (
    IHandshakeListener,
    IProtocolNegotiationFactory,
)
from twisted.internet.protocol import (
    DatagramProtocol,
    Factory,
    Protocol,
    connectionDone,
)
from twisted.internet.ssl import Certificate, optionsForClientTLS
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import (
    LegacyLogObserverWrapper,
    LogLevel,
    capturedLogs,
    formatEvent,
    globalLogPublisher,
)
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.failure import Failure
from twisted.python.usage import UsageError
from twisted.test.iosim import connectedServerAndClient
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from tests.support.tls import TestCA, makeCA, writePEM
from twisted_services.server.listeners import (
    Listener,
    datagramListener,
    serviceWith,
    streamListeners,
)
from twisted_services.server.options import (
    ListenOptions,
    nonNegativeFloat,
    portNumber,
    positiveFloat,
    positiveInt,
    tcpDescription,
)
from twisted_services.testing import FakeDatagramTransport, attachDatagram


class DemoOptions(ListenOptions):
    """Listening options for a service whose default port is 1234."""

    defaultPort = 1234


def parse(*arguments: str) -> DemoOptions:
    """L{DemoOptions} parsed from C{arguments}."""
    options = DemoOptions()
    options.parseOptions(list(arguments))
    return options


class FakePort:
    """An L{IListeningPort} stand-in that records being stopped."""

    def __init__(self, address: object) -> None:
        self.address = address
        self.stopped = 0

    def getHost(self) -> object:
        return self.address

    def stopListening(self) -> None:
        self.stopped += 1


class RecordingListen:
    """A C{listen} callable for L{Listener} that returns a new L{FakePort}."""

    def __init__(self, address: object = None) -> None:
        self.address = address or IPv4Address("TCP", "127.0.0.1", 43210)
        self.ports: list[FakePort] = []

    def __call__(self) -> FakePort:
        port = FakePort(self.address)
        self.ports.append(port)
        return port


class UDPMemoryReactor(MemoryReactorClock):
    """A L{MemoryReactorClock} that also fakes C{listenUDP}."""

    def __init__(self) -> None:
        super().__init__()
        self.udpServers: list[tuple[int, DatagramProtocol, str]] = []

    def listenUDP(
        self,
        port: int,
        protocol: DatagramProtocol,
        interface: str = "",
        maxPacketSize: int = 8192,
    ) -> FakeDatagramTransport:
        self.udpServers.append((port, protocol, interface))
        return attachDatagram(protocol, FakeDatagramTransport(interface or "0.0.0.0"))


def listenFailure() -> CannotListenError:
    """The error a server endpoint raises for a port already in use."""
    return CannotListenError("", 8888, OSError(98, "Address already in use"))


@implementer(IHandshakeListener)
class HandshakeRecorder(Protocol):
    """Records whether its TLS handshake completed, and why it was lost."""

    def __init__(self) -> None:
        self.handshakes = 0
        self.lostReason: Failure | None = None

    def handshakeCompleted(self) -> None:
        self.handshakes += 1

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.lostReason = reason


@implementer(IProtocolNegotiationFactory)
class HTTPishFactory(Factory):
    """A factory that negotiates C{http/1.1}, as the http service's does."""

    protocol = HandshakeRecorder

    def acceptableProtocols(self) -> list[bytes]:
        return [b"http/1.1"]


def tlsFiles(testCase: SynchronousTestCase) -> tuple[TestCA, str, str]:
    """A fresh CA, and a key and certificate it issued for C{localhost}."""
    directory = tempfile.mkdtemp(prefix="tls-")
    testCase.addCleanup(shutil.rmtree, directory, True)
    ca = makeCA()
    certPEM, keyPEM = ca.issue("localhost")
    return (
        ca,
        writePEM(directory, "key.pem", keyPEM),
        writePEM(directory, "cert.pem", certPEM),
    )


def sslDescription(key: str, cert: str, extra: str = "") -> str:
    """An C{ssl:} description on any port with C{key} and C{cert}."""
    return f"ssl:0:privateKey={key}:certKey={cert}{extra}"


def handshake(
    reactor: MemoryReactorClock, ca: TestCA, offered: list[bytes]
) -> tuple[HandshakeRecorder, HandshakeRecorder, object]:
    """
    Hand-shake in memory with the first TLS server C{reactor} was asked to
    start, as a client that trusts C{ca} and offers ALPN C{offered}.

    @return: the client's and server's wrapped protocols and the client's
        TLS protocol (for its C{negotiatedProtocol}).
    """
    _, serverFactory, contextFactory, _, _ = reactor.sslServers[0]
    clientOptions = optionsForClientTLS(
        "localhost",
        Certificate.loadPEM(ca.certPEM),
        acceptableProtocols=offered or None,
    )
    address = IPv4Address("TCP", "127.0.0.1", 443)
    client, server, pump = connectedServerAndClient(
        lambda: TLSMemoryBIOFactory(contextFactory, False, serverFactory).buildProtocol(
            address
        ),
        lambda: TLSMemoryBIOFactory(
            clientOptions, True, Factory.forProtocol(HandshakeRecorder)
        ).buildProtocol(address),
    )
    pump.flush()
    return client.wrappedProtocol, server.wrappedProtocol, client


class CoercionTests(SynchronousTestCase):
    """The option coercers accept what they document and refuse the rest."""

    def test_portNumber(self) -> None:
        """Port numbers run from 0 to 65535."""
        self.assertEqual([portNumber("0"), portNumber("65535")], [0, 65535])
        for bad in ("-1", "65536", "http", "", "1.5"):
            self.assertRaises(ValueError, portNumber, bad)

    def test_positiveInt(self) -> None:
        """Positive integers start at 1."""
        self.assertEqual(positiveInt("1"), 1)
        for bad in ("0", "-3", "two", "1.0"):
            self.assertRaises(ValueError, positiveInt, bad)

    def test_nonNegativeFloat(self) -> None:
        """Non-negative numbers include 0 but not infinity or NaN."""
        self.assertEqual([nonNegativeFloat("0"), nonNegativeFloat("2.5")], [0, 2.5])
        for bad in ("-0.1", "inf", "nan", "soon"):
            self.assertRaises(ValueError, nonNegativeFloat, bad)

    def test_positiveFloat(self) -> None:
        """Positive numbers exclude 0, infinity and NaN."""
        self.assertEqual(positiveFloat("0.5"), 0.5)
        for bad in ("0", "-1", "inf", "nan", "lots"):
            self.assertRaises(ValueError, positiveFloat, bad)

    def test_coerceDocs(self) -> None:
        """Each coercer documents its range for C{--help}."""
        for coercer in (portNumber, positiveInt, nonNegativeFloat, positiveFloat):
            self.assertTrue(coercer.coerceDoc)


class TCPDescriptionTests(SynchronousTestCase):
    """L{tcpDescription} turns C{--port}/C{--interface} into an endpoint string."""

    def test_allInterfaces(self) -> None:
        """Without an interface the description is plain C{tcp:PORT}."""
        self.assertEqual(tcpDescription(8888, None), "tcp:8888")
        self.assertEqual(tcpDescription(8888, ""), "tcp:8888")

    def test_ipv4Interface(self) -> None:
        """An IPv4 interface becomes the C{interface} argument of C{tcp:}."""
        self.assertEqual(tcpDescription(0, "127.0.0.1"), "tcp:0:interface=127.0.0.1")

    def test_ipv6Interface(self) -> None:
        """An IPv6 interface selects C{tcp6:} with its colons escaped."""
        self.assertEqual(tcpDescription(8888, "::1"), "tcp6:8888:interface=\\:\\:1")


class ListenOptionsTests(SynchronousTestCase):
    """L{ListenOptions} collects every endpoint description to listen on."""

    def test_defaultPort(self) -> None:
        """With no options the service listens on its default TCP port."""
        self.assertEqual(parse()["listen"], ["tcp:1234"])

    def test_port(self) -> None:
        """C{--port} replaces the default port."""
        self.assertEqual(parse("--port", "0")["listen"], ["tcp:0"])
        self.assertEqual(parse("-p", "80")["listen"], ["tcp:80"])

    def test_interface(self) -> None:
        """C{--interface} applies to the default port too."""
        self.assertEqual(
            parse("--interface", "127.0.0.1")["listen"],
            ["tcp:1234:interface=127.0.0.1"],
        )

    def test_ipv6Interface(self) -> None:
        """An IPv6 C{--interface} listens with C{tcp6:}."""
        self.assertEqual(
            parse("--port", "80", "-i", "::")["listen"], ["tcp6:80:interface=\\:\\:"]
        )

    def test_repeatedListen(self) -> None:
        """Every C{--listen} is used, in order, instead of the default port."""
        options = parse("--listen", "tcp:1", "--listen", "unix:/tmp/s")
        self.assertEqual(options["listen"], ["tcp:1", "unix:/tmp/s"])

    def test_portAndListen(self) -> None:
        """C{--port} and C{--listen} together listen on both."""
        options = parse("--listen", "unix:/tmp/s", "--port", "9", "-i", "::1")
        self.assertEqual(options["listen"], ["tcp6:9:interface=\\:\\:1", "unix:/tmp/s"])

    def test_interfaceWithOnlyListen(self) -> None:
        """C{--interface} without C{--port} next to C{--listen} is an error."""
        self.assertRaises(UsageError, parse, "--listen", "tcp:1", "--interface", "::1")

    def test_badPort(self) -> None:
        """A port outside 0-65535 is a usage error."""
        self.assertRaises(UsageError, parse, "--port", "65536")
        self.assertRaises(UsageError, parse, "--port", "eighty")

    def test_instancesIndependent(self) -> None:
        """Two option objects do not share their list of listeners."""
        parse("--listen", "tcp:1")
        self.assertEqual(parse()["listen"], ["tcp:1234"])


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

    def test_badDescription(self) -> None:
        """An unparseable description is a one-line exit message naming it."""
        for description in [
            "bogus:1",
            "tcp:notaport",
            "ssl:443:privateKey=/nonexistent",
        ]:
            exit = self.assertRaises(
                SystemExit,
                streamListeners,
                "demo",
                ["tcp:0", description],
                Factory(),
                MemoryReactorClock(),
            )
            self.assertIsInstance(exit.code, str)
            self.assertTrue(
                exit.code.startswith(f"demo: bad listen description {description!r}: "),
                exit.code,
            )
            self.assertNotIn("\n", exit.code)


class TLSListenerTests(SynchronousTestCase):
    """
    L{streamListeners} checks C{ssl:} listeners at start-up and makes their
    ALPN negotiation tolerant.
    """

    def listen(self, description: str, factory: Factory) -> MemoryReactorClock:
        """Start listening on C{description}; return the reactor it used."""
        reactor = MemoryReactorClock()
        with capturedLogs():
            serviceWith(
                streamListeners("demo", [description], factory, reactor)
            ).startService()
        return reactor

    def assertRefused(self, description: str) -> str:
        """C{description} is refused with a one-line exit message naming it."""
        exit = self.assertRaises(
            SystemExit,
            streamListeners,
            "demo",
            ["tcp:0", description],
            Factory(),
            MemoryReactorClock(),
        )
        self.assertIsInstance(exit.code, str)
        self.assertTrue(
            exit.code.startswith(f"demo: bad listen description {description!r}: "),
            exit.code,
        )
        self.assertNotIn("\n", exit.code)
        return exit.code

    def test_mismatchedKey(self) -> None:
        """A key that is not the certificate's is refused before listening."""
        ca, _, cert = tlsFiles(self)
        _, otherKey = ca.issue("localhost")
        key = writePEM(os.path.dirname(cert), "other.pem", otherKey)
        message = self.assertRefused(sslDescription(key, cert))
        self.assertIn("do not match", message)

    def test_unreadableKey(self) -> None:
        """A key file that is missing, a directory or not a key is refused."""
        _, key, cert = tlsFiles(self)
        directory = os.path.dirname(key)
        for badKey in [os.path.join(directory, "missing.pem"), directory, cert]:
            self.assertRefused(sslDescription(badKey, cert))

    def test_contextBuiltEarly(self) -> None:
        """
        A problem Twisted's parser lets through and only building the
        context meets (here bad DH parameters) is refused before listening,
        not at every handshake.
        """
        _, key, cert = tlsFiles(self)
        dh = writePEM(os.path.dirname(key), "dh.pem", b"not DH parameters\n")
        self.assertRefused(sslDescription(key, cert, f":dhParameters={dh}"))

    def test_defaults(self) -> None:
        """The context refuses TLS before 1.2 and compression."""
        _, key, cert = tlsFiles(self)
        reactor = self.listen(sslDescription(key, cert), Factory())
        context = reactor.sslServers[0][2].getContext()
        # set_options returns the options now set; adding none reads them.
        options = context.set_options(0)
        for option in [SSL.OP_NO_TLSv1, SSL.OP_NO_TLSv1_1, SSL.OP_NO_COMPRESSION]:
            self.assertTrue(options & option, option)

    def test_alpnWithoutNegotiation(self) -> None:
        """
        A factory that negotiates nothing still completes the handshake of
        a client that offers ALPN, with no protocol selected.
        """
        ca, key, cert = tlsFiles(self)
        reactor = self.listen(
            sslDescription(key, cert), Factory.forProtocol(HandshakeRecorder)
        )
        client, server, tls = handshake(reactor, ca, [b"h2", b"http/1.1"])
        self.assertEqual((client.handshakes, server.handshakes), (1, 1))
        self.assertIsNone(client.lostReason)
        self.assertIsNone(tls.negotiatedProtocol)

    def test_alpnNegotiated(self) -> None:
        """
        An L{IProtocolNegotiationFactory} gets the first of its protocols the
        client offered; a client offering none of them still connects.
        """
        ca, key, cert = tlsFiles(self)
        reactor = self.listen(sslDescription(key, cert), HTTPishFactory())
        client, _, tls = handshake(reactor, ca, [b"h2", b"http/1.1"])
        self.assertEqual(client.handshakes, 1)
        self.assertEqual(tls.negotiatedProtocol, b"http/1.1")
        client, _, tls = handshake(reactor, ca, [b"h2"])
        self.assertEqual(client.handshakes, 1)
        self.assertIsNone(tls.negotiatedProtocol)


class ServiceWithTests(SynchronousTestCase):
    """L{serviceWith} groups services so they start and stop together."""

    def test_children(self) -> None:
        """The result is a L{MultiService} parenting every given service."""
        children = [
            Listener("demo", "tcp:0", RecordingListen(), MemoryReactorClock())
            for _ in range(2)
        ]
        parent = serviceWith(children)
        self.assertIsInstance(parent, MultiService)
        # Then the systemd notifier (see tests/test_notify.py).
        self.assertEqual(list(parent)[:-1], children)
        parent.startService()
        self.assertTrue(all(child.running for child in children))


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

    def test_allInterfaces(self) -> None:
        """With no interface the description is plain C{udp:PORT}."""
        listener = datagramListener(
            "demo", 1314, "", DatagramProtocol(), UDPMemoryReactor()
        )
        self.assertEqual(listener.description, "udp:1314")
