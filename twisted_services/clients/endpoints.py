"""
Where the terminal clients connect, and how they verify a TLS server.

The echo and chat clients take a C{SERVER} argument: C{HOST:PORT},
C{[IPV6]:PORT}, a bare host (the client's default port), or a Twisted client
endpoint description; L{ServerOptions} reads it. L{parseHostPort} is how
every client (the temperature one too) reads a host and port.
L{endpointDescription} turns the argument into a description;
L{clientEndpoint} turns that into an endpoint, and L{connectServer} connects
through it. A C{tls:HOST:PORT} server is reached through
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
from typing import TYPE_CHECKING, Any, TextIO

from OpenSSL import SSL, crypto
from service_identity import VerificationError
from twisted.internet.abstract import isIPv6Address
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import (
    HostnameEndpoint,
    clientFromString,
    connectProtocol,
    quoteStringArgument,
    wrapClientTLS,
)
from twisted.internet.error import ConnectionDone
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

from twisted_services.clients.runner import ClientOptions

if TYPE_CHECKING:
    # Twisted does not export the interface that its trust roots provide.
    from twisted.internet._sslverify import IOpenSSLTrustRoot

# Endpoint types whose descriptions may look like HOST:PORT ("unix:8080" is a
# UNIX socket named 8080, not host "unix"); anything else of that shape is
# taken for a host and a port.
ENDPOINT_TYPES = frozenset({"tcp", "ssl", "tls", "unix"})

_PEM_CERTIFICATE = re.compile(
    rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL
)


def _port(text: str, argument: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise usage.UsageError(f"bad port in {argument!r}: expected 1-65535")
    return int(text)


def _defaultPort(argument: str, defaultPort: int | None) -> int:
    if defaultPort is None:
        raise usage.UsageError(f"no port in {argument!r}")
    return defaultPort


def parseHostPort(argument: str, defaultPort: int | None) -> tuple[str, int]:
    """
    The C{(host, port)} of C{HOST:PORT} or C{[IPV6]:PORT}, or of a host
    alone (C{HOST}, C{[IPV6]} or a bare IPv6 address) on C{defaultPort};
    blanks around the argument do not count. Every client reads its server
    this way: the temperature client its C{--server}, the others their
    SERVER when it is not an endpoint description (see L{isDescription}).

    @raise usage.UsageError: for an empty host, a bad port (or a missing
        one if C{defaultPort} is L{None}), a bracketed host that is not an
        IPv6 address, an IPv6 address with a port but without brackets, or
        a number alone (a port without its host: the message suggests
        C{localhost:PORT}).
    """
    text = argument.strip()
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or not isIPv6Address(host):
            raise usage.UsageError(f"bad IPv6 address in {argument!r}")
        if not rest:
            return host, _defaultPort(argument, defaultPort)
        if not rest.startswith(":"):
            raise usage.UsageError(f"bad server {argument!r}: expected [IPV6]:PORT")
        return host, _port(rest[1:], argument)
    if text.count(":") > 1:
        if isIPv6Address(text):
            return text, _defaultPort(argument, defaultPort)
        raise usage.UsageError(
            f"bad server {argument!r}: write an IPv6 address as [ADDRESS]:PORT"
        )
    host, colon, port = text.partition(":")
    if not host:
        raise usage.UsageError(
            f"bad server {argument!r}: no host{_localhostHint(port)}"
        )
    if host.isdigit() and not colon:
        # The resolver would take "8888" for the IPv4 address 0.0.34.184.
        raise usage.UsageError(
            f"bad server {argument!r}: a port without a host{_localhostHint(host)}"
        )
    if colon:
        return host, _port(port, argument)
    return host, _defaultPort(argument, defaultPort)


def _localhostHint(port: str) -> str:
    """C{"; did you mean localhost:PORT?"} if C{port} is a port number."""
    if port.isdigit() and 0 < int(port) < 65536:
        return f"; did you mean localhost:{port}?"
    return ""


def _prefix(description: str) -> str:
    return description.partition(":")[0].lower()


def isDescription(argument: str) -> bool:
    """
    Whether a C{SERVER} argument is an endpoint description rather than a
    host and port: one of L{ENDPOINT_TYPES}, or any other C{type:} prefix
    followed by more than one colon. Neither a bracketed host nor an IPv6
    address is a description.
    """
    text = argument.strip()
    if text.startswith("[") or isIPv6Address(text):
        return False
    return _prefix(text) in ENDPOINT_TYPES or text.count(":") > 1


def endpointDescription(argument: str, defaultPort: int) -> str:
    """
    The client endpoint description for a C{SERVER} argument: a host and
    port as L{parseHostPort} reads them becomes a C{tcp:} description; an
    endpoint description (L{isDescription}) is returned unchanged for
    L{clientEndpoint} to judge.

    @raise usage.UsageError: for an empty argument or a bad host and port.
    """
    if not argument.strip():
        raise usage.UsageError("no server given")
    if isDescription(argument):
        return argument
    host, port = parseHostPort(argument, defaultPort)
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
    if not rest.strip() or isDescription(rest):
        raise ValueError("expected tls:HOST:PORT")
    try:
        host, port = parseHostPort(rest, defaultPort)
    except usage.UsageError as error:
        raise ValueError(str(error)) from None
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


class ServerOptions(ClientOptions):
    """
    The command line of a client of one stream server, C{[--ca FILE] SERVER}:
    C{options["server"]} is SERVER as given and C{options["endpoint"]} its
    description (L{endpointDescription}, on the subclass's L{defaultPort}).
    """

    defaultPort: int
    optParameters = [
        [
            "ca",
            None,
            None,
            "Trust the CA certificate(s) in this PEM file, instead of the "
            "system's, for a tls: server.",
        ],
    ]

    def parseArgs(self, server: str) -> None:
        """The one positional argument: where the server is."""
        self["server"] = server
        self["endpoint"] = endpointDescription(server, self.defaultPort)

    def postOptions(self) -> None:
        """C{--ca} without a C{tls:} server would silently go unencrypted."""
        if self["ca"] is not None and not isTLS(self["endpoint"]):
            raise usage.UsageError("--ca applies only to a tls:HOST:PORT server")


async def connectServer(
    reactor: Any,
    program: str,
    options: ServerOptions,
    protocol: HandshakeWaiter,
    stderr: TextIO,
) -> None:
    """
    Connect C{protocol} to the server C{options} name, and wait until it may
    talk (after the handshake, over TLS).

    @raise SystemExit: after one line on C{stderr} saying why: status 2 for
        an unusable server or CA file, 1 when connecting or verifying fails.
    """
    try:
        endpoint = clientEndpoint(
            reactor, options["endpoint"], options["ca"], options.defaultPort
        )
    except CAFileError as error:
        stderr.write(f"{program}: {error}\n")
        raise SystemExit(2) from None
    except (ValueError, KeyError, TypeError) as error:
        stderr.write(f"{program}: bad server {options['server']!r}: {oneLine(error)}\n")
        raise SystemExit(2) from None
    try:
        await connectProtocol(endpoint, protocol)  # type: ignore[arg-type]
        await protocol.secured
    except Exception as error:
        stderr.write(connectFailureMessage(program, options["server"], endpoint, error))
        raise SystemExit(1) from None


def exitUnlessClosedCleanly(
    program: str, reason: BaseException, stderr: TextIO
) -> None:
    """
    Return if the connection ended with a clean close (C{reason} is a
    L{ConnectionDone}); otherwise say why it was lost and exit with status 1.
    """
    if isinstance(reason, ConnectionDone):
        return
    stderr.write(f"{program}: connection lost: {oneLine(reason)}\n")
    raise SystemExit(1)
