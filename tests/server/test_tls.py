"""
Tests for L{twisted_services.server.tls}, through
L{twisted_services.server.listeners.streamListeners}, which applies it to
every C{ssl:} listener: TLS settings checked at start-up, safe defaults, and
ALPN negotiation that never aborts a client.
"""

from __future__ import annotations

import os

from OpenSSL import SSL
from twisted.internet.address import IPv4Address
from twisted.internet.interfaces import (
    IHandshakeListener,
    IProtocolNegotiationFactory,
)
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.internet.ssl import Certificate, optionsForClientTLS
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import capturedLogs
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.failure import Failure
from twisted.test.iosim import connectedServerAndClient
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from tests.support.files import temporaryDirectory
from tests.support.listeners import assertBadDescription
from tests.support.tls import TestCA, makeCA, writePEM
from twisted_services.server.listeners import serviceWith, streamListeners


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
    directory = str(temporaryDirectory(testCase, "tls-"))
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

    def test_mismatchedKey(self) -> None:
        """A key that is not the certificate's is refused before listening."""
        ca, _, cert = tlsFiles(self)
        _, otherKey = ca.issue("localhost")
        key = writePEM(os.path.dirname(cert), "other.pem", otherKey)
        message = assertBadDescription(self, sslDescription(key, cert))
        self.assertIn("do not match", message)

    def test_unreadableKey(self) -> None:
        """A key file that is missing, a directory or not a key is refused."""
        _, key, cert = tlsFiles(self)
        directory = os.path.dirname(key)
        for badKey in [os.path.join(directory, "missing.pem"), directory, cert]:
            assertBadDescription(self, sslDescription(badKey, cert))

    def test_contextBuiltEarly(self) -> None:
        """
        A problem Twisted's parser lets through and only building the
        context meets (here bad DH parameters) is refused before listening,
        not at every handshake.
        """
        _, key, cert = tlsFiles(self)
        dh = writePEM(os.path.dirname(key), "dh.pem", b"not DH parameters\n")
        assertBadDescription(self, sslDescription(key, cert, f":dhParameters={dh}"))

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
