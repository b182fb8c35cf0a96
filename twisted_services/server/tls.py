"""
TLS (C{ssl:}) listeners are Twisted's own, with its defaults (TLS 1.2 or
later, no compression); L{prepareTLS} builds each one's OpenSSL context at
start-up, so a key or certificate OpenSSL rejects stops the process before it
listens, and makes ALPN negotiation tolerant (see L{selectProtocol}).
"""

from __future__ import annotations

from OpenSSL.SSL import NO_OVERLAPPING_PROTOCOLS, Connection
from twisted.internet.endpoints import SSL4ServerEndpoint
from twisted.internet.interfaces import (
    IProtocolNegotiationFactory,
    IStreamServerEndpoint,
)

from twisted_services.core.twistedprivate import sslContextFactoryOf


def selectProtocol(connection: Connection, offered: list[bytes]) -> object:
    """
    Choose the ALPN protocol for a TLS connection: the first protocol the
    served factory's L{IProtocolNegotiationFactory.acceptableProtocols} lists
    that the client offered, or none at all.

    Twisted's own selector answers "no overlap" with an empty protocol name,
    which OpenSSL turns into a fatal alert; so a factory that negotiates
    nothing (echo, chat) would fail every client that offers ALPN (curl,
    browsers). L{NO_OVERLAPPING_PROTOCOLS} lets the handshake go on without
    one.
    """
    wrapped = connection.get_app_data().factory.wrappedFactory
    negotiation = IProtocolNegotiationFactory(wrapped, None)
    acceptable = negotiation.acceptableProtocols() if negotiation else []
    for protocol in acceptable:
        if protocol in offered:
            return protocol
    return NO_OVERLAPPING_PROTOCOLS


def prepareTLS(endpoint: IStreamServerEndpoint) -> None:
    """
    For a TLS endpoint, build its OpenSSL context now, so that anything
    OpenSSL rejects stops start-up rather than every handshake, and install
    L{selectProtocol}.

    Twisted's C{ssl:} parser already refuses unreadable files and a key that
    does not match the certificate, but its L{CertificateOptions} builds the
    context (and so meets any other problem) lazily. C{getContext} caches the
    context it builds, so the callback set here is the one every connection
    uses; pyOpenSSL allows that only before the first connection is made.
    """
    if isinstance(endpoint, SSL4ServerEndpoint):
        context = sslContextFactoryOf(endpoint).getContext()
        context.set_alpn_select_callback(selectProtocol)
