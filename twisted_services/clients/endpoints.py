"""
Where the terminal clients connect, and how they verify a TLS server.

Both clients take a C{SERVER} argument: C{HOST:PORT}, C{[IPV6]:PORT}, a bare
host (the client's default port), or a Twisted client endpoint description.
L{endpointDescription} turns it into a description; L{clientEndpoint} turns
that into an endpoint. A C{tls:HOST:PORT} server is reached through
C{wrapClientTLS(optionsForClientTLS(HOST, trustRoot), HostnameEndpoint)}: the
certificate chain is verified against the system's trust store or the
C{--ca} file, and HOST against the certificate with C{service_identity}.

Verification happens during the handshake, before any application data is
sent, but a client protocol is connected (C{connectionMade}) as soon as TCP
is: L{HandshakeWaiter} lets a client wait for the handshake before it
starts reading its input. L{connectFailureMessage} says in one line why a
connection or a verification failed.

C{ssl:} client descriptions are refused: Twisted's C{ssl:} client endpoint
does not check the host name (and without C{caCertsDir} not even the
chain), so it could connect silently to anyone.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from OpenSSL import SSL, crypto
from service_identity import VerificationError
from twisted.internet.abstract import isIPv6Address
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import (
    HostnameEndpoint,
    clientFromString,
    quoteStringArgument,
    wrapClientTLS,
)
from twisted.internet.interfaces import (
    IHandshakeListener,
    INegotiated,
    IProtocolFactory,
    IStreamClientEndpoint,
)
from twisted.internet.ssl import (
    Certificate,
    optionsForClientTLS,
    platformTrust,
    trustRootFromCertificates,
)
from twisted.python import usage
from twisted.python.failure import Failure
from zope.interface import implementer

if TYPE_CHECKING:
    # Twisted does not export the interface that its trust roots provide.
    from twisted.internet._sslverify import IOpenSSLTrustRoot

# Endpoint types whose descriptions may look like HOST:PORT ("unix:8080" is a
# UNIX socket named 8080, not host "unix"); anything else of that shape is
# taken for a host and a port.
ENDPOINT_TYPES = frozenset({"tcp", "ssl", "tls", "unix"})

_BRACKETED = re.compile(r"\[(?P<host>[^\]]+)\](?::(?P<port>[^:]*))?")
_HOST_PORT = re.compile(r"(?P<host>[^:\[\]]+)(?::(?P<port>[^:]*))?")
_PEM_CERTIFICATE = re.compile(
    rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL
)


def _port(text: str | None, argument: str, defaultPort: int | None) -> int:
    if text is None and defaultPort is not None:
        return defaultPort
    if text is None or not text.isdigit() or not 0 < int(text) < 65536:
        raise usage.UsageError(f"bad port in {argument!r}: expected 1-65535")
    return int(text)


def parseHostPort(argument: str, defaultPort: int | None) -> tuple[str, int] | None:
    """
    The C{(host, port)} of C{HOST:PORT}, C{[IPV6]:PORT}, or of a bare C{HOST}
    or IPv6 address (port C{defaultPort}, required if that is L{None});
    L{None} for anything else (such as C{type:...} descriptions).

    @raise usage.UsageError: for a bad or missing port.
    """
    if isIPv6Address(argument):
        if defaultPort is None:
            raise usage.UsageError(f"no port in {argument!r}")
        return argument, defaultPort
    bracketed = _BRACKETED.fullmatch(argument)
    if bracketed:
        return bracketed["host"], _port(bracketed["port"], argument, defaultPort)
    plain = _HOST_PORT.fullmatch(argument)
    if plain:
        return plain["host"], _port(plain["port"], argument, defaultPort)
    return None


def _prefix(description: str) -> str:
    return description.partition(":")[0].lower()


def endpointDescription(argument: str, defaultPort: int) -> str:
    """
    The client endpoint description for a C{SERVER} argument: C{HOST:PORT},
    C{[IPV6]:PORT} and a bare C{HOST} or IPv6 address (port C{defaultPort})
    become C{tcp:} descriptions; a description of one of L{ENDPOINT_TYPES}
    or with any other C{type:} prefix and more than one colon is returned
    unchanged for L{clientEndpoint} to judge.

    @raise usage.UsageError: for an empty argument or a bad port number.
    """
    if not argument.strip():
        raise usage.UsageError("no server given")
    if _prefix(argument) in ENDPOINT_TYPES and not isIPv6Address(argument):
        return argument
    hostPort = parseHostPort(argument, defaultPort)
    if hostPort is None:
        return argument
    host, port = hostPort
    return f"tcp:host={quoteStringArgument(host)}:port={port}"


def isTLS(description: str) -> bool:
    """Whether C{description} is a C{tls:} one (which C{--ca} applies to)."""
    return _prefix(description) == "tls"


class CAFileError(ValueError):
    """The C{--ca} file cannot be read or holds no usable certificate."""


def loadTrustRoot(path: str) -> IOpenSSLTrustRoot:
    """
    A trust root of every PEM certificate in the file at C{path} (one CA or a
    bundle).

    @raise CAFileError: if the file cannot be read or holds no certificate.
    """
    try:
        with open(path, "rb") as pem:
            data = pem.read()
    except OSError as error:
        raise CAFileError(
            f"cannot read CA file {path}: {error.strerror or error}"
        ) from None
    blocks = _PEM_CERTIFICATE.findall(data)
    if not blocks:
        raise CAFileError(f"CA file {path} holds no PEM certificate")
    try:
        certificates = [Certificate.loadPEM(block) for block in blocks]
    except crypto.Error as error:
        raise CAFileError(
            f"CA file {path} holds a bad certificate: {_sslReasons(error)}"
        ) from None
    return trustRootFromCertificates(certificates)


@implementer(IStreamClientEndpoint)
class TLSEndpoint:
    """
    Connects through C{wrapped} and speaks TLS over it, verifying the
    server's chain against C{trustRoot} and its identity against
    C{hostname} (a DNS name or an IP address).
    """

    def __init__(
        self,
        hostname: str,
        trustRoot: IOpenSSLTrustRoot,
        wrapped: IStreamClientEndpoint,
    ) -> None:
        self.hostname = hostname
        self.trustRoot = trustRoot
        self.wrapped = wrapped

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[Any]:
        """Connect C{protocolFactory}'s protocol over verified TLS."""
        options = optionsForClientTLS(self.hostname, trustRoot=self.trustRoot)
        return wrapClientTLS(options, self.wrapped).connect(protocolFactory)


def clientEndpoint(
    reactor: Any,
    description: str,
    caFile: str | None = None,
    defaultPort: int | None = None,
) -> IStreamClientEndpoint:
    """
    The endpoint for C{description} (as L{endpointDescription} returns it).

    C{tls:HOST:PORT} (also C{tls:[IPV6]:PORT}, and C{tls:HOST} with
    C{defaultPort}) is a L{TLSEndpoint} trusting the CA certificates in
    C{caFile}, or the platform's trust store without one. A C{tls:}
    description with keyword arguments goes to Twisted's own C{tls:} parser
    (when there is no C{caFile}); other descriptions to C{clientFromString}.

    @raise CAFileError: if C{caFile} cannot be used.
    @raise ValueError: if the description cannot be used (C{clientFromString}
        may also raise C{KeyError} or C{TypeError}).
    """
    prefix, _, rest = description.partition(":")
    kind = prefix.lower()
    if kind == "ssl":
        raise ValueError(
            "ssl: client endpoints do not verify the server's host name; "
            "use tls:HOST:PORT"
        )
    if kind != "tls":
        if caFile is not None:
            raise ValueError("--ca applies only to tls: servers")
        return clientFromString(reactor, description)
    if "=" in rest:
        if caFile is not None:
            raise ValueError("--ca needs the form tls:HOST:PORT")
        return clientFromString(reactor, description)
    try:
        hostPort = parseHostPort(rest, defaultPort) if rest else None
    except usage.UsageError as error:
        raise ValueError(str(error)) from None
    if hostPort is None:
        raise ValueError("expected tls:HOST:PORT")
    host, port = hostPort
    trustRoot = platformTrust() if caFile is None else loadTrustRoot(caFile)
    return TLSEndpoint(host, trustRoot, HostnameEndpoint(reactor, host, port))


@implementer(IHandshakeListener)
class HandshakeWaiter:
    """
    Mixed into a client protocol: L{secured} fires once the protocol may
    talk, that is at once on a plain connection and after the handshake on
    a TLS one, and fails with the reason if the connection is lost first
    (a failed verification, for one). Call L{waitForHandshake} from
    C{connectionMade} and L{connectionEnded} from C{connectionLost}.
    """

    secured: Deferred[None]

    def waitForHandshake(self, transport: object) -> None:
        """Start waiting, on C{transport} (the protocol's own)."""
        self.secured = Deferred()
        if not INegotiated.providedBy(transport):
            self.secured.callback(None)

    def handshakeCompleted(self) -> None:
        """The TLS handshake and the verification succeeded."""
        if not self.secured.called:
            self.secured.callback(None)

    def connectionEnded(self, reason: Failure) -> None:
        """The connection is gone: fail L{secured} if it had not fired."""
        if not self.secured.called:
            self.secured.errback(reason)


def oneLine(error: BaseException) -> str:
    """C{error}'s message on one line (its type's name if it has none)."""
    return " ".join(str(error).split()) or type(error).__name__


def _sslReasons(error: SSL.Error | crypto.Error) -> str:
    """The reasons in a pyOpenSSL error (a list of (lib, func, reason))."""
    details = error.args[0] if error.args else None
    if isinstance(details, list):
        reasons = [str(item[-1]) for item in details if isinstance(item, tuple)]
        if reasons:
            return "; ".join(reasons)
    return oneLine(error)


def connectFailureMessage(
    program: str, server: str, endpoint: object, error: BaseException
) -> str:
    """
    One line (with its newline) saying why connecting to C{server} through
    C{endpoint} failed: a failed TLS verification is named as such.
    """
    hostname = getattr(endpoint, "hostname", server)
    if isinstance(error, VerificationError):
        return (
            f"{program}: TLS verification failed for {hostname}: "
            f"the certificate is not valid for {hostname}\n"
        )
    if isinstance(error, SSL.Error):
        reasons = _sslReasons(error)
        if "certificate verify failed" in reasons:
            return (
                f"{program}: TLS verification failed for {hostname}: "
                f"the certificate is not trusted ({reasons})\n"
            )
        return f"{program}: TLS handshake with {hostname} failed: {reasons}\n"
    return f"{program}: cannot connect to {server}: {oneLine(error)}\n"
