"""
Tests for L{twisted_services.clients.endpoints}: SERVER arguments become
descriptions, descriptions become endpoints, C{tls:} ones verified with the
C{--ca} file's certificates, and failures are explained in one line.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile

from OpenSSL import SSL
from service_identity import VerificationError
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, ensureDeferred
from twisted.internet.endpoints import HostnameEndpoint, TCP4ClientEndpoint
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.error import ConnectionRefusedError as RefusedError
from twisted.internet.protocol import Protocol
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from tests.support.tls import makeCA, writePEM
from twisted_services.clients.endpoints import (
    CAFileError,
    HandshakeWaiter,
    ServerOptions,
    TLSEndpoint,
    clientEndpoint,
    connectFailureMessage,
    connectServer,
    endpointDescription,
    exitUnlessClosedCleanly,
    isDescription,
    isTLS,
    loadTrustRoot,
    oneLine,
    parseHostPort,
)


def temporaryDirectory(testCase: SynchronousTestCase) -> str:
    """A directory removed when C{testCase} ends."""
    directory = tempfile.mkdtemp()
    testCase.addCleanup(shutil.rmtree, directory, True)
    return directory


class ParseHostPortTests(SynchronousTestCase):
    """L{parseHostPort}: the one reading of a host and port for every client."""

    def test_hostAndPort(self) -> None:
        """HOST:PORT is that host and port."""
        self.assertEqual(parseHostPort("example.org:4000", 1), ("example.org", 4000))
        self.assertEqual(parseHostPort("127.0.0.1:1314", 1), ("127.0.0.1", 1314))

    def test_hostAlone(self) -> None:
        """A host alone, in any of its forms, is on the default port given."""
        for argument, host in [
            ("localhost", "localhost"),
            ("[::1]", "::1"),
            ("::1", "::1"),
            ("0:0::1", "0:0::1"),
        ]:
            self.assertEqual(parseHostPort(argument, 7), (host, 7))

    def test_bracketedIPv6(self) -> None:
        """[IPV6]:PORT is that address (a scoped one too) and port."""
        self.assertEqual(parseHostPort("[2001:db8::5]:9", 1), ("2001:db8::5", 9))
        self.assertEqual(parseHostPort("[fe80::1%eth0]:3", 1), ("fe80::1%eth0", 3))

    def test_blanksAround(self) -> None:
        """Blanks around the argument do not count."""
        self.assertEqual(parseHostPort(" h:1\t", 7), ("h", 1))

    def test_badPort(self) -> None:
        """A port that is not 1-65535 is named, with the argument as given."""
        for argument in ["h:0", "h:65536", "h:x", "h:", "h:+1", "[::1]:", "[::1]:x"]:
            with self.assertRaises(UsageError) as raised:
                parseHostPort(argument, 7)
            self.assertEqual(
                str(raised.exception), f"bad port in {argument!r}: expected 1-65535"
            )

    def test_noDefaultPort(self) -> None:
        """Without a default port, a host alone is a usage error."""
        for argument in ["h", "[::1]", "::1"]:
            with self.assertRaises(UsageError) as raised:
                parseHostPort(argument, None)
            self.assertEqual(str(raised.exception), f"no port in {argument!r}")
        self.assertEqual(parseHostPort("h:5", None), ("h", 5))

    def test_messages(self) -> None:
        """Each malformed form gets its own one-line explanation."""
        for argument, message in [
            ("", "bad server '': no host"),
            (" ", "bad server ' ': no host"),
            (":1314", "bad server ':1314': no host; did you mean localhost:1314?"),
            (":x", "bad server ':x': no host"),
            (
                "8888",
                "bad server '8888': a port without a host; "
                "did you mean localhost:8888?",
            ),
            ("99999", "bad server '99999': a port without a host"),
            ("[::1", "bad IPv6 address in '[::1'"),
            ("[nothost]:1", "bad IPv6 address in '[nothost]:1'"),
            ("[::1]x", "bad server '[::1]x': expected [IPV6]:PORT"),
            (
                "2001:db8::5:z",
                "bad server '2001:db8::5:z': write an IPv6 address as [ADDRESS]:PORT",
            ),
        ]:
            with self.assertRaises(UsageError) as raised:
                parseHostPort(argument, 7)
            self.assertEqual(str(raised.exception), message)


class IsDescriptionTests(SynchronousTestCase):
    """L{isDescription} tells endpoint descriptions from hosts and ports."""

    def test_descriptions(self) -> None:
        """Known endpoint types, and other prefixes before two colons, are."""
        for argument in [
            "tcp:h:1",
            "TLS:h:1",
            "unix:8080",
            "unix:/run/chat.sock",
            "ssl:h",
            "tor:example.onion:1",
        ]:
            self.assertTrue(isDescription(argument), argument)

    def test_hostsAndPorts(self) -> None:
        """Hosts with or without a port, bracketed or bare IPv6, are not."""
        for argument in ["h", "h:1", "[::1]", "[::1]:1", "::1", "[::1", ":1"]:
            self.assertFalse(isDescription(argument), argument)


class EndpointDescriptionTests(SynchronousTestCase):
    """L{endpointDescription} with a client's own default port."""

    def test_defaultPort(self) -> None:
        """A bare host or IPv6 address gets the default port given."""
        self.assertEqual(endpointDescription("h", 8888), "tcp:host=h:port=8888")
        self.assertEqual(endpointDescription("::1", 7), r"tcp:host=\:\:1:port=7")

    def test_tlsUnchanged(self) -> None:
        """C{tls:} descriptions are left for L{clientEndpoint}."""
        self.assertEqual(endpointDescription("tls:h:1", 8888), "tls:h:1")
        self.assertTrue(isTLS("TLS:h:1"))
        self.assertFalse(isTLS("tcp:host=h:port=1"))


class ClientEndpointTests(SynchronousTestCase):
    """L{clientEndpoint} turns a description into a (verifying) endpoint."""

    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        self.directory = temporaryDirectory(self)
        self.ca = makeCA("Client Test CA")
        self.caFile = writePEM(self.directory, "ca.pem", self.ca.certPEM)

    def test_tcp(self) -> None:
        """A C{tcp:} description goes to C{clientFromString}."""
        endpoint = clientEndpoint(self.reactor, "tcp:host=h:port=1")
        self.assertIsInstance(endpoint, TCP4ClientEndpoint)

    def test_tlsHostPort(self) -> None:
        """C{tls:HOST:PORT} is a L{TLSEndpoint} for HOST over a hostname endpoint."""
        endpoint = clientEndpoint(self.reactor, "tls:chat.example.org:6697")
        assert isinstance(endpoint, TLSEndpoint)
        self.assertEqual(endpoint.hostname, "chat.example.org")
        self.assertIsInstance(endpoint.wrapped, HostnameEndpoint)
        self.assertEqual(endpoint.wrapped._port, 6697)

    def test_tlsForms(self) -> None:
        """C{tls:[IPV6]:PORT} and C{tls:HOST} with a default port work too."""
        endpoint = clientEndpoint(self.reactor, "tls:[::1]:5")
        assert isinstance(endpoint, TLSEndpoint)
        self.assertEqual((endpoint.hostname, endpoint.wrapped._port), ("::1", 5))
        endpoint = clientEndpoint(self.reactor, "tls:h", defaultPort=8888)
        assert isinstance(endpoint, TLSEndpoint)
        self.assertEqual(endpoint.wrapped._port, 8888)

    def test_tlsBadPort(self) -> None:
        """A bad or missing port in a C{tls:} description is a L{ValueError}."""
        for description in ["tls:h:0", "tls:h:x", "tls:h", "tls:"]:
            self.assertRaises(ValueError, clientEndpoint, self.reactor, description)

    def test_tlsNotHostPort(self) -> None:
        """A C{tls:} description that is no host and port says what is expected."""
        for description in ["tls:", "tls: ", "tls:a:b:c", "tls:unix:1"]:
            with self.assertRaises(ValueError) as raised:
                clientEndpoint(self.reactor, description, defaultPort=1)
            self.assertEqual(str(raised.exception), "expected tls:HOST:PORT")

    def test_caTrustRoot(self) -> None:
        """With a CA file, the trust root holds that CA's certificate."""
        endpoint = clientEndpoint(self.reactor, "tls:h:1", self.caFile)
        assert isinstance(endpoint, TLSEndpoint)
        self.assertEqual(
            [c.to_cryptography() for c in endpoint.trustRoot._caCerts],
            [self.ca.certificate],
        )

    def test_caBundle(self) -> None:
        """Every certificate of a bundle is trusted."""
        other = makeCA("Other CA")
        bundle = writePEM(self.directory, "b.pem", self.ca.certPEM + other.certPEM)
        self.assertEqual(len(loadTrustRoot(bundle)._caCerts), 2)

    def test_badCAFile(self) -> None:
        """A missing, empty or broken CA file is a L{CAFileError} naming it."""
        missing = os.path.join(self.directory, "missing.pem")
        empty = writePEM(self.directory, "empty.pem", b"not a certificate\n")
        broken = writePEM(
            self.directory,
            "broken.pem",
            b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        for path in [missing, empty, broken]:
            with self.assertRaises(CAFileError) as raised:
                clientEndpoint(self.reactor, "tls:h:1", path)
            self.assertIn(path, str(raised.exception))
            self.assertNotIn("\n", str(raised.exception))

    def test_caOnlyForTLS(self) -> None:
        """C{--ca} with a plain or keyword C{tls:} description is refused."""
        self.assertRaises(
            ValueError, clientEndpoint, self.reactor, "tcp:h:1", self.caFile
        )
        self.assertRaises(
            ValueError,
            clientEndpoint,
            self.reactor,
            "tls:host=h:port=1",
            self.caFile,
        )

    def test_sslRefused(self) -> None:
        """C{ssl:} client endpoints, which skip host name checks, are refused."""
        with self.assertRaises(ValueError) as raised:
            clientEndpoint(self.reactor, "ssl:h:1")
        self.assertIn("tls:HOST:PORT", str(raised.exception))


class Waiter(HandshakeWaiter):
    """A bare L{HandshakeWaiter}."""


class HandshakeWaiterTests(SynchronousTestCase):
    """L{HandshakeWaiter.secured} fires when the client may talk."""

    def test_plain(self) -> None:
        """On a plain transport it fires at once."""
        waiter = Waiter()
        waiter.waitForHandshake(StringTransport())
        self.successResultOf(waiter.secured)

    def test_tls(self) -> None:
        """On a TLS transport it waits for the handshake, or fails with the loss."""
        from twisted.internet.interfaces import INegotiated
        from zope.interface import alsoProvides

        transport = StringTransport()
        alsoProvides(transport, INegotiated)
        waiter = Waiter()
        waiter.waitForHandshake(transport)
        self.assertNoResult(waiter.secured)
        waiter.handshakeCompleted()
        self.successResultOf(waiter.secured)
        failed = Waiter()
        failed.waitForHandshake(transport)
        failed.connectionEnded(Failure(RefusedError()))
        self.failureResultOf(failed.secured, RefusedError)


class ConnectFailureMessageTests(SynchronousTestCase):
    """L{connectFailureMessage} says in one line why connecting failed."""

    def test_hostMismatch(self) -> None:
        """A service_identity failure is a verification failure for the host."""
        endpoint = TLSEndpoint("localhost", None, None)  # type: ignore[arg-type]
        message = connectFailureMessage(
            "chat", "tls:localhost:1", endpoint, VerificationError(errors=[])
        )
        self.assertEqual(
            message,
            "chat: TLS verification failed for localhost: "
            "the certificate is not valid for localhost\n",
        )

    def test_untrusted(self) -> None:
        """An OpenSSL verify failure is a verification failure, reasons kept."""
        error = SSL.Error([("SSL routines", "", "certificate verify failed")])
        message = connectFailureMessage("echo", "tls:h:1", Deferred(), error)
        self.assertEqual(
            message,
            "echo: TLS verification failed for tls:h:1: "
            "the certificate is not trusted (certificate verify failed)\n",
        )

    def test_refused(self) -> None:
        """Anything else is "cannot connect"."""
        message = connectFailureMessage("echo", "h:1", None, RefusedError())
        self.assertTrue(message.startswith("echo: cannot connect to h:1: "))
        self.assertEqual(message.count("\n"), 1)


class UsageErrorTests(SynchronousTestCase):
    """Bad SERVER arguments are usage errors before any endpoint is made."""

    def test_badPort(self) -> None:
        """A port outside 1-65535 is a usage error."""
        self.assertRaises(UsageError, endpointDescription, "h:0", 1)


class OneLineTests(SynchronousTestCase):
    """L{oneLine} fits an error's message on one line."""

    def test_whitespace(self) -> None:
        """Line breaks and runs of blanks become single spaces."""
        self.assertEqual(oneLine(OSError("no\n  route\tto host ")), "no route to host")

    def test_noMessage(self) -> None:
        """An error without a message is named by its type."""
        self.assertEqual(oneLine(LookupError()), "LookupError")


class ExampleOptions(ServerOptions):
    """A client of a stream server on port 7."""

    defaultPort = 7


def parsed(*arguments: str) -> ExampleOptions:
    """L{ExampleOptions} parsed from C{arguments}."""
    options = ExampleOptions()
    options.parseOptions(list(arguments))
    return options


class ServerOptionsTests(SynchronousTestCase):
    """L{ServerOptions} reads C{[--ca FILE] SERVER} on the subclass's port."""

    def test_server(self) -> None:
        """SERVER is kept as given and made a description on the default port."""
        options = parsed("localhost")
        self.assertEqual(options["server"], "localhost")
        self.assertEqual(options["endpoint"], "tcp:host=localhost:port=7")
        self.assertIsNone(options["ca"])

    def test_oneServer(self) -> None:
        """Exactly one SERVER."""
        self.assertRaises(UsageError, parsed)
        self.assertRaises(UsageError, parsed, "a:1", "b:2")

    def test_caOnlyForTLS(self) -> None:
        """C{--ca} goes with a C{tls:} server, and only with one."""
        self.assertEqual(parsed("--ca", "ca.pem", "tls:h:1")["ca"], "ca.pem")
        with self.assertRaises(UsageError) as raised:
            parsed("--ca", "ca.pem", "h:1")
        self.assertEqual(
            str(raised.exception), "--ca applies only to a tls:HOST:PORT server"
        )


class Client(Protocol, HandshakeWaiter):
    """A client protocol that waits for the handshake."""

    def connectionMade(self) -> None:
        self.waitForHandshake(self.transport)


class ConnectServerTests(SynchronousTestCase):
    """L{connectServer} connects, or exits saying why not."""

    def connect(
        self, *arguments: str
    ) -> tuple[Deferred[None], MemoryReactorClock, Client, io.StringIO]:
        """Start L{connectServer} on a memory reactor."""
        reactor = MemoryReactorClock()
        protocol = Client()
        stderr = io.StringIO()
        connecting = ensureDeferred(
            connectServer(reactor, "example", parsed(*arguments), protocol, stderr)
        )
        return connecting, reactor, protocol, stderr

    def test_connected(self) -> None:
        """It returns once the connection is made, on the default port."""
        connecting, reactor, protocol, stderr = self.connect("127.0.0.1")
        host, port, factory = reactor.tcpClients[0][:3]
        self.assertEqual((host, port), ("127.0.0.1", 7))
        self.assertNoResult(connecting)
        built = factory.buildProtocol(IPv4Address("TCP", host, port))
        built.makeConnection(StringTransport())
        self.successResultOf(connecting)
        self.assertTrue(protocol.secured.called)
        self.assertEqual(stderr.getvalue(), "")

    def test_refused(self) -> None:
        """A failed connection exits 1 with one line naming the server."""
        connecting, reactor, _, stderr = self.connect("127.0.0.1:1")
        reactor.tcpClients[0][2].clientConnectionFailed(
            reactor.connectors[0], Failure(RefusedError())
        )
        self.assertEqual(self.failureResultOf(connecting, SystemExit).value.code, 1)
        self.assertRegex(
            stderr.getvalue(), r"^example: cannot connect to 127.0.0.1:1: .+\n$"
        )

    def test_badDescription(self) -> None:
        """A description Twisted cannot use exits 2, naming the server."""
        connecting, reactor, _, stderr = self.connect("nosuchtype:a:b")
        self.assertEqual(self.failureResultOf(connecting, SystemExit).value.code, 2)
        self.assertTrue(
            stderr.getvalue().startswith("example: bad server 'nosuchtype:a:b': ")
        )
        self.assertEqual(reactor.tcpClients, [])

    def test_badCAFile(self) -> None:
        """An unusable CA file exits 2 naming it, before connecting."""
        connecting, reactor, _, stderr = self.connect(
            "--ca", "/nonexistent.pem", "tls:h:1"
        )
        self.assertEqual(self.failureResultOf(connecting, SystemExit).value.code, 2)
        self.assertTrue(
            stderr.getvalue().startswith(
                "example: cannot read CA file /nonexistent.pem"
            )
        )
        self.assertEqual(reactor.tcpClients, [])


class ExitUnlessClosedCleanlyTests(SynchronousTestCase):
    """L{exitUnlessClosedCleanly} judges how a connection ended."""

    def test_clean(self) -> None:
        """A clean close returns, saying nothing."""
        stderr = io.StringIO()
        exitUnlessClosedCleanly("example", ConnectionDone(), stderr)
        self.assertEqual(stderr.getvalue(), "")

    def test_lost(self) -> None:
        """A connection lost otherwise exits 1, saying why on one line."""
        stderr = io.StringIO()
        with self.assertRaises(SystemExit) as raised:
            exitUnlessClosedCleanly("example", ConnectionLost("reset\nby peer"), stderr)
        self.assertEqual(raised.exception.code, 1)
        self.assertEqual(stderr.getvalue().count("\n"), 1)
        self.assertTrue(stderr.getvalue().startswith("example: connection lost: "))
