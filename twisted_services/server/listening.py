"""
The listening options every TCP service shares (C{--port}, C{--interface},
C{--listen}), and the services that listen on them.

Each listener logs the address it actually bound, so C{--port 0} is usable by
tests and scripts. A listener that cannot be parsed or bound ends the process
with a one-line error and exit status 1 instead of a traceback.

TLS (C{ssl:}) listeners are Twisted's own, with its defaults (TLS 1.2 or
later, no compression); L{streamListeners} builds each one's OpenSSL context at
start-up, so a key or certificate OpenSSL rejects stops the process before it
listens, and makes ALPN negotiation tolerant (see L{_selectProtocol}).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from OpenSSL.SSL import NO_OVERLAPPING_PROTOCOLS, Connection
from twisted.application.service import IService, MultiService, Service
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.endpoints import (
    SSL4ServerEndpoint,
    quoteStringArgument,
    serverFromString,
)
from twisted.internet.interfaces import (
    IListeningPort,
    IProtocolFactory,
    IProtocolNegotiationFactory,
    IReactorCore,
    IReactorUDP,
    IStreamServerEndpoint,
)
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger
from twisted.python import usage
from twisted.python.failure import Failure

from twisted_services.core.addresses import describeAddress
from twisted_services.systemd.notify import SystemdNotifier


def portNumber(value: str) -> int:
    """Coerce an option to a port number, 0 (any free port) to 65535."""
    port = int(value)
    if not 0 <= port <= 65535:
        raise ValueError(f"{value} is not a port number (0-65535)")
    return port


portNumber.coerceDoc = "A port number, 0-65535."  # type: ignore[attr-defined]


def positiveInt(value: str) -> int:
    """Coerce an option to an integer of at least 1."""
    number = int(value)
    if number < 1:
        raise ValueError(f"{value} is not a positive whole number")
    return number


positiveInt.coerceDoc = "A whole number, at least 1."  # type: ignore[attr-defined]


def nonNegativeFloat(value: str) -> float:
    """Coerce an option to a number of seconds, 0 or more."""
    number = float(value)
    if not number >= 0 or number == float("inf"):
        raise ValueError(f"{value} is not a finite number, 0 or more")
    return number


nonNegativeFloat.coerceDoc = "A number, 0 or more."  # type: ignore[attr-defined]


def positiveFloat(value: str) -> float:
    """Coerce an option to a finite number above 0."""
    number = float(value)
    if not number > 0 or number == float("inf"):
        raise ValueError(f"{value} is not a finite number above 0")
    return number


positiveFloat.coerceDoc = "A number above 0."  # type: ignore[attr-defined]


def idleTimeoutParameter(default: float) -> list[object]:
    """The C{--idle-timeout} option every TCP service has, with its default."""
    return [
        "idle-timeout",
        None,
        default,
        "Close a connection after this many seconds without data from "
        "the client (0: never).",
        nonNegativeFloat,
    ]


def maxConnectionsParameter(whenFull: str) -> list[object]:
    """
    The C{--max-connections} option every TCP service has; C{whenFull} says
    what happens to a connection past the limit.
    """
    return [
        "max-connections",
        None,
        10000,
        f"Accept at most this many connections at once; {whenFull}.",
        positiveInt,
    ]


def tcpDescription(port: int, interface: str | None) -> str:
    """The endpoint description for TCP C{port} on C{interface} (IPv6 allowed)."""
    if not interface:
        return f"tcp:{port}"
    kind = "tcp6" if ":" in interface else "tcp"
    return f"{kind}:{port}:interface={quoteStringArgument(interface)}"


class ListenOptions(usage.Options):
    """
    C{--port}, C{--interface} and the repeatable C{--listen}, for a service
    whose default port is L{defaultPort}. After parsing, C{self["listen"]}
    holds every endpoint description to listen on.
    """

    defaultPort: int

    optParameters = [
        ["port", "p", None, "Listen on this TCP port (0: any free port)", portNumber],
        [
            "interface",
            "i",
            None,
            "With --port or the default port: the address to listen on "
            "(default: all IPv4 interfaces; IPv6 addresses allowed).",
        ],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["listen"] = []

    def opt_listen(self, description: str) -> None:
        self["listen"].append(description)

    # One line: usage.Options prints an opt_ docstring's line breaks verbatim.
    opt_listen.__doc__ = (
        "Listen on a Twisted server endpoint description, e.g. tcp:8888, "
        "tcp6:8888:interface=\\:\\:1, unix:/run/echo.sock, "
        "ssl:8443:privateKey=key.pem:certKey=cert.pem or "
        "systemd:domain=INET:index=0. Repeatable: every listener is used."
    )

    def postOptions(self) -> None:
        if self["port"] is not None or not self["listen"]:
            port = self["port"] if self["port"] is not None else self.defaultPort
            self["listen"].insert(0, tcpDescription(port, self["interface"]))
        elif self["interface"]:
            raise usage.UsageError("--interface goes with --port, not with --listen")


class Listener(Service):
    """
    Listens while running, through a C{listen} callable that returns the
    port (or a L{Deferred} of it), and logs the address bound.
    """

    _log = Logger()

    def __init__(
        self,
        serviceName: str,
        description: str,
        listen: Callable[[], IListeningPort | Deferred[IListeningPort]],
        reactor: IReactorCore,
    ) -> None:
        self._reactor = reactor
        self.serviceName = serviceName
        self.description = description
        self._listen = listen
        self.port: IListeningPort | None = None
        self._listening: Deferred[IListeningPort | None] | None = None

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        failedNow: list[Failure] = []

        def failed(failure: Failure) -> None:
            if self._listening is None:
                failedNow.append(failure)
            else:
                self._failedLater(failure)

        # Twisted's server endpoints listen synchronously, so a port in use
        # can end startup here with a one-line message instead of a traceback.
        listening = maybeDeferred(self._listen).addCallbacks(self._bound, failed)
        if failedNow:
            self._logCannotListen(failedNow[0])
            raise SystemExit(1)
        self._listening = listening

    def startService(self) -> None:
        super().startService()
        if self._listening is None:
            self.privilegedStartService()

    def stopService(self) -> Deferred[None] | None:
        super().stopService()
        # Forget the last start, so that starting again listens again.
        self._listening = None
        port, self.port = self.port, None
        if port is not None:
            return maybeDeferred(port.stopListening)
        return None

    def _bound(self, port: IListeningPort) -> IListeningPort:
        self.port = port
        self._log.info(
            "{service} listening on {address}",
            service=self.serviceName,
            address=describeAddress(port.getHost()),
        )
        return port

    def _failedLater(self, failure: Failure) -> None:
        self._logCannotListen(failure)
        self._reactor.stop()

    def _logCannotListen(self, failure: Failure) -> None:
        # Not a "message" field: Twisted's legacy-log bridge overwrites that
        # key in the shared event, blanking the line for later observers.
        self._log.critical(
            "{service}: cannot listen on {description}: {error}",
            service=self.serviceName,
            description=self.description,
            error=failure.getErrorMessage() or failure.type.__name__,
        )


def _selectProtocol(connection: Connection, offered: list[bytes]) -> object:
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


def _prepareTLS(endpoint: IStreamServerEndpoint) -> None:
    """
    For a TLS endpoint, build its OpenSSL context now, so that anything
    OpenSSL rejects stops start-up rather than every handshake, and install
    L{_selectProtocol}.

    Twisted's C{ssl:} parser already refuses unreadable files and a key that
    does not match the certificate, but its L{CertificateOptions} builds the
    context (and so meets any other problem) lazily. C{getContext} caches the
    context it builds, so the callback set here is the one every connection
    uses; pyOpenSSL allows that only before the first connection is made.
    """
    if isinstance(endpoint, SSL4ServerEndpoint):
        context = endpoint._sslContextFactory.getContext()
        context.set_alpn_select_callback(_selectProtocol)


def streamListeners(
    serviceName: str,
    descriptions: Sequence[str],
    factory: IProtocolFactory,
    reactor: IReactorCore,
) -> list[IService]:
    """
    One L{Listener} per endpoint description, all serving C{factory}.

    @raise SystemExit: with a one-line message, for a description that Twisted
        cannot parse, or a TLS one whose key and certificate cannot be read,
        do not match, or are refused by OpenSSL.
    """
    listeners: list[IService] = []
    for description in descriptions:
        try:
            endpoint = serverFromString(reactor, description)
            _prepareTLS(endpoint)
        except Exception as error:
            # Endpoint parsers raise anything from ValueError to SSL errors.
            raise SystemExit(
                f"{serviceName}: bad listen description {description!r}: "
                f"{error or type(error).__name__}"
            ) from None
        listeners.append(
            Listener(
                serviceName,
                description,
                lambda e=endpoint: e.listen(factory),
                reactor,
            )
        )
    return listeners


def serviceWith(children: Sequence[IService], notify: bool = True) -> MultiService:
    """
    A L{MultiService} that starts and stops C{children} together.

    @param notify: also add a L{SystemdNotifier} as the last child, so that
        under systemd C{READY=1} is sent once every child has started (and
        C{STOPPING=1} before any stops). A service nested in another one
        that has its notifier passes C{False}: one notifier per process.
    """
    parent = MultiService()
    for child in children:
        child.setServiceParent(parent)
    if notify:
        SystemdNotifier().setServiceParent(parent)
    return parent


def datagramListener(
    serviceName: str,
    port: int,
    interface: str,
    protocol: DatagramProtocol,
    reactor: IReactorUDP,
) -> Listener:
    """
    A L{Listener} for UDP C{port} on C{interface} (C{""}: all IPv4
    addresses; C{"::"}: IPv6 too). UDP has no endpoint descriptions, so this
    is the datagram counterpart of L{streamListeners}.
    """
    return Listener(
        serviceName,
        f"udp:{port}" + (f":interface={interface}" if interface else ""),
        lambda: reactor.listenUDP(port, protocol, interface=interface),
        reactor,
    )
