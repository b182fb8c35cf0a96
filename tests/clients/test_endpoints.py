"""
Tests for L{twisted_services.clients.endpoints}: SERVER arguments become
descriptions, descriptions become endpoints, C{tls:} ones verified with the
C{--ca} file's certificates, and failures are explained in one line.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from OpenSSL import SSL
from service_identity import VerificationError
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import HostnameEndpoint, TCP4ClientEndpoint
from twisted.internet.error import ConnectionRefusedError as RefusedError
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from tests.support.tls import makeCA, writePEM
from twisted_services.clients.endpoints import (
    CAFileError,
    HandshakeWaiter,
    TLSEndpoint,
    clientEndpoint,
    connectFailureMessage,
    endpointDescription,
    isTLS,
    loadTrustRoot,
)


def temporaryDirectory(testCase: SynchronousTestCase) -> str:
    """A directory removed when C{testCase} ends."""
    directory = tempfile.mkdtemp()
    testCase.addCleanup(shutil.rmtree, directory, True)
    return directory


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
